import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import { systemClock, type Clock } from '../util/clock.js';

/**
 * Failed-login lockout, counted per client IP and per user name.
 *
 * Every login attempt is counted before its password is checked (begin), not after it has
 * failed: checking first and counting afterwards lets a client send many guesses at once,
 * all of which pass the check while the ~100 ms password verifications are still running.
 * With the count taken up front, the (failures + 1)-th attempt within `windowMs` (counted
 * from the first attempt, as rate-limiter-flexible's fixed window does) is refused however
 * many arrive together. A failed attempt keeps its point and, once an IP or a user name has
 * `failures` of them, locks it for `durationMs` from that failure (failed). A successful one
 * gives the IP its point back and clears the user name's count (succeeded), so logging in
 * correctly never uses up a client's allowance. While locked, a login is refused before its
 * password is even looked at, so a locked attacker learns nothing more.
 *
 * Both counters exist because each alone is weak: per IP alone lets a botnet try one password
 * per address against one account; per user alone lets one address walk through every
 * account. The price of the per-user counter is that an attacker can lock a known user out
 * for `durationMs`; that user's clients get a temporary 454 and retry.
 *
 * rate-limiter-flexible counts in whole seconds, so window and duration are rounded up to a
 * whole number of seconds, at least 1.
 *
 * With a Redis client, the counters live in Redis (keys `postern:auth:ip:<address>` and
 * `postern:auth:user:<name>`) so every replica sees the same lockouts. If Redis is not
 * reachable, each replica falls back to counting in its own memory rather than failing every
 * login or letting every guess through.
 */

export interface LoginLockoutOptions {
  /** Failed (or still unanswered) logins allowed within the window; the next attempt is refused. */
  failures: number;
  windowMs: number;
  durationMs: number;
  redis?: Redis;
  /** Told once each time a lock begins, on an IP or a user name; for metrics. Must not throw. */
  onLock?: (scope: LockScope) => void;
  /** When "now" is, to tell a new lock from one still in force (default: the system clock). */
  clock?: Clock;
}

export type LockScope = 'ip' | 'user';

export type LockState = { locked: false } | { locked: true; retryAfterMs: number };

const KEY_PREFIX = 'postern:auth';

export class LoginLockout {
  private readonly counters: RateLimiterAbstract;
  private readonly failures: number;
  private readonly durationSeconds: number;
  private readonly onLock: ((scope: LockScope) => void) | undefined;
  private readonly clock: Clock;
  /**
   * Keys this process locked, until when. Failures that arrived together can each find the
   * count at the limit and each block the key; only the first of them begins a lock.
   */
  private readonly lockedUntil = new Map<string, number>();

  constructor(options: LoginLockoutOptions) {
    if (!Number.isInteger(options.failures) || options.failures < 1) {
      throw new RangeError(`Lockout failures must be a whole number of at least 1, not ${options.failures}`);
    }
    this.failures = options.failures;
    this.durationSeconds = wholeSeconds(options.durationMs, 'duration');
    this.onLock = options.onLock;
    this.clock = options.clock ?? systemClock;
    const settings = { keyPrefix: KEY_PREFIX, points: options.failures, duration: wholeSeconds(options.windowMs, 'window') };
    this.counters = options.redis
      ? new RateLimiterRedis({
          ...settings,
          storeClient: options.redis,
          // Fail over to memory at once instead of queueing behind a reconnecting client.
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory(settings),
        })
      : new RateLimiterMemory(settings);
  }

  /**
   * Count a login attempt from `ip` as `user` against both, before its password is checked,
   * and say whether it must be refused: it is when either count is past `failures` (or the
   * key is blocked), until the longer of the locks ends. A refused attempt stays counted
   * too; that only matters for the other key, which a real guess would have counted against
   * just the same.
   */
  async begin(ip: string, user: string): Promise<LockState> {
    const counted = await Promise.all([this.counters.penalty(ipKey(ip), 1), this.counters.penalty(userKey(user), 1)]);
    const waits = counted.filter((state) => this.isLocked(state)).map((state) => state.msBeforeNext);
    return waits.length > 0 ? { locked: true, retryAfterMs: Math.max(...waits) } : { locked: false };
  }

  /**
   * The attempt begun for `ip` and `user` failed: its points stay counted, and whichever of
   * the two has now reached `failures` is locked for the lockout duration.
   */
  async failed(ip: string, user: string): Promise<void> {
    await Promise.all(
      (
        [
          ['ip', ipKey(ip)],
          ['user', userKey(user)],
        ] as const
      ).map(async ([scope, key]) => {
        const state = await this.counters.get(key);
        if (state === null || state.consumedPoints < this.failures) return;
        this.noteLock(scope, key);
        await this.counters.block(key, this.durationSeconds);
      }),
    );
  }

  /** Reports a lock on `key` unless this process began one that still holds. */
  private noteLock(scope: LockScope, key: string): void {
    if (!this.onLock) return;
    const now = this.clock.now();
    if ((this.lockedUntil.get(key) ?? 0) > now) return;
    for (const [other, until] of this.lockedUntil) if (until <= now) this.lockedUntil.delete(other);
    this.lockedUntil.set(key, now + this.durationSeconds * 1000);
    this.onLock(scope);
  }

  /**
   * The attempt begun for `ip` and `user` succeeded: the IP gets back the point begin() took,
   * and the user name's count is forgotten. The IP's earlier failures stay: one valid account
   * must not wipe the record of an attacker guessing others from the same address.
   */
  async succeeded(ip: string, user: string): Promise<void> {
    const key = ipKey(ip);
    await Promise.all([
      this.counters.reward(key, 1).then(async (state) => {
        // The window ended while the password was checked: the refund landed in a fresh
        // window as a negative count, which would be a free guess. Bring it back to zero.
        if (state.consumedPoints < 0) await this.counters.penalty(key, -state.consumedPoints);
      }),
      this.counters.delete(userKey(user)),
    ]);
  }

  /** Past the allowance: a count above `failures`, or a block (which sets the count to failures + 1). */
  private isLocked(state: RateLimiterRes): boolean {
    return state.consumedPoints > this.failures && state.msBeforeNext > 0;
  }
}

/** IPv4 clients reach a dual-stack listener as ::ffff:a.b.c.d; count them under one key either way. */
function ipKey(ip: string): string {
  const lowered = ip.toLowerCase();
  return `ip:${lowered.startsWith('::ffff:') && lowered.includes('.') ? lowered.slice(7) : lowered}`;
}

/** Lowercased, so guessing Alice, ALICE and alice counts as guessing one account. */
function userKey(user: string): string {
  return `user:${user.toLowerCase()}`;
}

function wholeSeconds(ms: number, what: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`Lockout ${what} must be a positive duration, not ${ms} ms`);
  return Math.max(1, Math.ceil(ms / 1000));
}
