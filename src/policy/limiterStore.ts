import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../util/logger.js';
import type { LimiterStore } from './types.js';

/**
 * The counters behind every rate limit, in this process's memory or in Redis so that several
 * replicas share one limit.
 *
 * Windows are fixed, as rate-limiter-flexible keeps them: a key's window starts with its
 * first count and ends `windowMs` later, when the count starts again from zero. The library
 * counts in whole seconds, so a window is rounded up to a whole number of seconds (at least
 * 1). One limiter is kept per (limit, window) pair, created on first use. The count of a key
 * in a window is one count whatever the limit: callers keep their keys apart (a rule puts its
 * instance name in the key).
 *
 * Redis keys are `postern:rl:<window seconds>s:<key>`; each expires with its window, so Redis
 * holds no more than the keys counted in the longest window.
 *
 * When Redis cannot be reached, each replica counts in its own memory (rate-limiter-flexible's
 * insurance limiter, with the same limit and window) rather than refusing or admitting every
 * message: a limit that holds per replica for a while beats either. The switch is logged once
 * each way and reported through `onFallback` (for a metric). Counts made in memory stay there;
 * once Redis is back, counting continues from what Redis held.
 */

export type LimiterStoreOptions =
  | { store: 'memory' }
  | {
      store: 'redis';
      /** A client the caller owns (and closes); the store never quits it. */
      redis: Redis;
      logger: Logger;
      /** Called when counting moves to memory ('fallback') and back to Redis ('recovered'). */
      onFallback?(state: 'fallback' | 'recovered'): void;
    };

export interface ClosableLimiterStore extends LimiterStore {
  /** Forget the limiters (and their memory counts). The Redis client stays open: its owner closes it. */
  close(): Promise<void>;
}

export const KEY_PREFIX = 'postern:rl:';

/**
 * The longest window: the memory counters expire keys with setTimeout, which holds at most
 * 2^31-1 ms (about 24.8 days) and fires at once for anything longer.
 */
export const MAX_WINDOW_MS = 24 * 86_400_000;

export function createLimiterStore(options: LimiterStoreOptions): ClosableLimiterStore {
  return options.store === 'memory' ? new CachedLimiters((settings) => new RateLimiterMemory(settings)) : redisStore(options);
}

interface LimiterSettings {
  keyPrefix: string;
  points: number;
  duration: number;
}

/** One limiter per (limit, window), built on first use; `observe` watches each call (Redis only). */
class CachedLimiters implements ClosableLimiterStore {
  private limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly build: (settings: LimiterSettings) => RateLimiterAbstract,
    private readonly observe?: { start(): unknown; end(call: unknown): void },
  ) {}

  async consume(key: string, points: number, limit: number, windowMs: number): Promise<{ allowed: boolean; resetAt: number }> {
    checkArguments(key, points, limit, windowMs);
    const seconds = Math.max(1, Math.ceil(windowMs / 1000));
    const id = `${limit}/${seconds}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = this.build({ keyPrefix: `${KEY_PREFIX}${seconds}s`, points: limit, duration: seconds });
      this.limiters.set(id, limiter);
    }
    // The options object travels with the call into the insurance limiter, if the call gets
    // that far; its identity tells the observer which store answered this very call.
    const call = this.observe?.start() ?? {};
    try {
      const counted = await limiter.consume(key, points, call as Record<string, unknown>);
      this.observe?.end(call);
      return { allowed: true, resetAt: Date.now() + counted.msBeforeNext };
    } catch (err) {
      // Past the limit, rate-limiter-flexible rejects with the counter's state, not an Error.
      if (!(err instanceof RateLimiterRes)) throw err;
      this.observe?.end(call);
      return { allowed: false, resetAt: Date.now() + err.msBeforeNext };
    }
  }

  async close(): Promise<void> {
    this.limiters = new Map();
  }
}

/** RateLimiterMemory that tells, for each call, that it stood in for Redis. */
class InsuranceLimiter extends RateLimiterMemory {
  constructor(
    settings: LimiterSettings,
    private readonly used: (call: unknown) => void,
  ) {
    super(settings);
  }

  override consume(key: string | number, points?: number, options?: { [key: string]: unknown }): Promise<RateLimiterRes> {
    this.used(options);
    return super.consume(key, points, options);
  }
}

function redisStore(options: Extract<LimiterStoreOptions, { store: 'redis' }>): ClosableLimiterStore {
  const { redis, logger, onFallback } = options;
  const servedFromMemory = new WeakSet<object>();
  let onRedis = true;
  // Calls are numbered as they start. Only a call started after the last switch may switch
  // back: one that was already on its way to Redis when Redis went down (or that fell back
  // just before Redis returned) says nothing about the state now, and would make the logs flap.
  let started = 0;
  let lastSwitch = 0;

  const observe = {
    start: () => ({ seq: ++started }),
    end(call: unknown) {
      const { seq } = call as { seq: number };
      const fromMemory = servedFromMemory.has(call as object);
      if (fromMemory === !onRedis || seq <= lastSwitch) return;
      onRedis = !fromMemory;
      lastSwitch = started;
      if (fromMemory) {
        logger.warn({ component: 'rate-limit', redisStatus: redis.status }, 'rate limits fall back to memory: Redis unreachable');
      } else {
        logger.info({ component: 'rate-limit' }, 'rate limits back on Redis');
      }
      onFallback?.(fromMemory ? 'fallback' : 'recovered');
    },
  };

  return new CachedLimiters(
    (settings) =>
      new RateLimiterRedis({
        ...settings,
        storeClient: redis,
        // Straight to memory while the client is not connected, instead of waiting in the
        // client's queue while it reconnects: the SMTP client is waiting for its reply.
        rejectIfRedisNotReady: true,
        insuranceLimiter: new InsuranceLimiter(settings, (call) => {
          if (typeof call === 'object' && call !== null) servedFromMemory.add(call);
        }),
      }),
    observe,
  );
}

function checkArguments(key: string, points: number, limit: number, windowMs: number): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('A rate-limit key must be a non-empty string');
  if (!Number.isSafeInteger(points) || points < 0) throw new RangeError(`Rate-limit points must be a whole number of at least 0, not ${points}`);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`A rate limit must be a whole number of at least 1, not ${limit}`);
  if (!Number.isFinite(windowMs) || windowMs <= 0 || windowMs > MAX_WINDOW_MS) {
    throw new RangeError(`A rate-limit window must be more than 0 ms and at most 24 days, not ${windowMs} ms`);
  }
}
