import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../util/clock.js';

interface Entry {
  /** The stored hash the password was verified against: a changed password misses the cache. */
  passwordHash: string;
  /** HMAC of the password under a key that exists only in this process's memory. */
  proof: Buffer;
  expiresAt: number;
}

/**
 * Remembers recent successful logins so a client that logs in for every message (most
 * application mailers do: one connection, one AUTH, one message) does not pay a full scrypt
 * derivation (~100 ms of CPU and 32 MiB) each time. This is Dovecot's auth_cache idea.
 *
 * Only successes are cached: a wrong password always costs the full derivation and counts
 * towards the lockout, so guessing stays as slow as ever. What is kept is not the password
 * but an HMAC of it under a random key generated at start and never written anywhere; an
 * entry stops matching when the user's stored hash changes (password changed, user removed
 * and re-added) and after `ttlMs`.
 */
export class VerifiedLoginCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
    /** Bounds memory if a huge users file is logged into by everyone at once. */
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** True when this exact password was verified for this user and stored hash within the TTL. */
  matches(username: string, passwordHash: string, password: string): boolean {
    if (!this.enabled) return false;
    const entry = this.entries.get(username);
    if (!entry) return false;
    if (entry.expiresAt <= this.clock.now() || entry.passwordHash !== passwordHash) {
      this.entries.delete(username);
      return false;
    }
    return timingSafeEqual(entry.proof, this.proofOf(password));
  }

  remember(username: string, passwordHash: string, password: string): void {
    if (!this.enabled) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(username)) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.delete(username);
    this.entries.set(username, { passwordHash, proof: this.proofOf(password), expiresAt: this.clock.now() + this.ttlMs });
  }

  private proofOf(password: string): Buffer {
    return createHmac('sha256', this.key).update(password, 'utf8').digest();
  }
}
