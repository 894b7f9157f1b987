import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';

/**
 * Failed-login lockout, counted per client IP and per user name.
 *
 * After `failures` failed logins within `windowMs` (counted from the first failure, as
 * rate-limiter-flexible's fixed window does), that IP or that user name is locked for
 * `durationMs` from the failure that reached the limit. While locked, a login is refused
 * before its password is even looked at, so a locked attacker learns nothing more.
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
  /** Failed logins allowed within the window; the next attempt is refused. */
  failures: number;
  windowMs: number;
  durationMs: number;
  redis?: Redis;
}

export type LockState = { locked: false } | { locked: true; retryAfterMs: number };

const KEY_PREFIX = 'postern:auth';

export class LoginLockout {
  private readonly counters: RateLimiterAbstract;
  private readonly failures: number;
  private readonly durationSeconds: number;

  constructor(options: LoginLockoutOptions) {
    if (!Number.isInteger(options.failures) || options.failures < 1) {
      throw new RangeError(`Lockout failures must be a whole number of at least 1, not ${options.failures}`);
    }
    this.failures = options.failures;
    this.durationSeconds = wholeSeconds(options.durationMs, 'duration');
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

  /** Whether a login from `ip` as `user` must be refused now, and for how long. */
  async check(ip: string, user: string): Promise<LockState> {
    const states = await Promise.all([this.counters.get(ipKey(ip)), this.counters.get(userKey(user))]);
    const waits = states.filter((state) => this.isLocked(state)).map((state) => state!.msBeforeNext);
    return waits.length > 0 ? { locked: true, retryAfterMs: Math.max(...waits) } : { locked: false };
  }

  /** Count a failed login against the IP and the user name; lock whichever reached the limit. */
  async recordFailure(ip: string, user: string): Promise<void> {
    await Promise.all(
      [ipKey(ip), userKey(user)].map(async (key) => {
        const counted = await this.counters.penalty(key, 1);
        if (counted.consumedPoints >= this.failures) await this.counters.block(key, this.durationSeconds);
      }),
    );
  }

  /**
   * Forget the user name's failures after a successful login. The IP's count stays: one valid
   * account must not wipe the record of an attacker guessing others from the same address.
   */
  async recordSuccess(user: string): Promise<void> {
    await this.counters.delete(userKey(user));
  }

  private isLocked(state: RateLimiterRes | null): boolean {
    return state !== null && state.consumedPoints >= this.failures && state.msBeforeNext > 0;
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
