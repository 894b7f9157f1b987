import type { DnsResolver } from '../policy/types.js';
import type { Clock } from '../util/clock.js';
import type { TtlResolver } from './packetResolver.js';

/**
 * Answers kept for as long as their publisher allows. Bounds keep a TTL from doing harm:
 * - at least 5 s, so a TTL of 0 (RFC 1035 section 3.2.1: "do not cache") still lets a burst of
 *   messages to one domain share one answer;
 * - at most a day for records, and an hour for negative answers (RFC 2308 section 5 suggests
 *   one to three hours; a record published after a typo should be seen within the hour);
 * - a negative answer without an SOA to say how long it holds is kept a minute.
 * Temporary failures (timeouts, SERVFAIL, REFUSED, unreachable servers) are not kept: the next
 * question asks again.
 */
export interface TtlCacheOptions {
  minTtlMs?: number;
  maxTtlMs?: number;
  maxNegativeTtlMs?: number;
  defaultNegativeTtlMs?: number;
  /** Entries beyond this are dropped oldest first, so a flood of sender domains cannot grow memory. */
  maxEntries?: number;
}

export const DEFAULT_TTL_CACHE_OPTIONS: Readonly<Required<TtlCacheOptions>> = Object.freeze({
  minTtlMs: 5_000,
  maxTtlMs: 24 * 60 * 60_000,
  maxNegativeTtlMs: 60 * 60_000,
  defaultNegativeTtlMs: 60_000,
  maxEntries: 10_000,
});

/** NXDOMAIN and NODATA: answers about the name (RFC 2308), as worth keeping as records. */
const NEGATIVE_CODES = new Set(['ENOTFOUND', 'ENODATA']);

/** What is kept of a negative answer: enough to throw an error like the first one. */
interface CachedFailure {
  code: string;
  message: string;
  syscall: unknown;
  hostname: unknown;
}

type CacheEntry = { expiresAt: number; records: unknown } | { expiresAt: number; failure: CachedFailure };

/** Marks a resolver that already caches, so wrapping it again (see cachingResolver.ts) adds nothing. */
export const CACHES_ANSWERS: unique symbol = Symbol('postern.dns.cachesAnswers');

export type CachedDnsResolver = DnsResolver & { readonly [CACHES_ANSWERS]: true };

export function cachesAnswers(resolver: DnsResolver): resolver is CachedDnsResolver {
  return (resolver as Partial<CachedDnsResolver>)[CACHES_ANSWERS] === true;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function negativeTtlSecondsOf(error: unknown): number | undefined {
  const ttl = (error as { negativeTtlSeconds?: unknown } | null)?.negativeTtlSeconds;
  return typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0 ? ttl : undefined;
}

/** Questions are the same whatever the case of the name (RFC 4343) and with or without the root dot. */
function cacheKey(name: string, rrtype: string): string {
  return `${rrtype.toUpperCase()} ${name.toLowerCase().replace(/\.$/, '')}`;
}

/**
 * `lookup` behind a cache keyed by (type, name) and read against `clock`, in the plain
 * DnsResolver shape every consumer takes. Callers asking a question while it is being
 * answered share the one query. Each caller gets its own copy of the records and a fresh error
 * object: consumers sort answers in place, and mailauth writes its verdict onto the error.
 */
export function ttlCachingResolver(lookup: TtlResolver, clock: Clock, options: TtlCacheOptions = {}): CachedDnsResolver {
  const settings = { ...DEFAULT_TTL_CACHE_OPTIONS, ...options };
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<CacheEntry>>();

  function remember(key: string, entry: CacheEntry): void {
    cache.delete(key);
    while (cache.size >= settings.maxEntries) {
      const oldest = cache.keys().next();
      if (oldest.done) break;
      cache.delete(oldest.value);
    }
    cache.set(key, entry);
  }

  function served(entry: CacheEntry): unknown {
    if ('records' in entry) return structuredClone(entry.records);
    const { code, message, syscall, hostname } = entry.failure;
    throw Object.assign(new Error(message), { code, syscall, hostname });
  }

  async function ask(key: string, name: string, rrtype: string): Promise<CacheEntry> {
    try {
      const { records, ttlSeconds } = await lookup(name, rrtype);
      const entry = { expiresAt: clock.now() + clamp(ttlSeconds * 1000, settings.minTtlMs, settings.maxTtlMs), records };
      remember(key, entry);
      return entry;
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (typeof code !== 'string' || !NEGATIVE_CODES.has(code)) throw error;
      const ttlSeconds = negativeTtlSecondsOf(error);
      const ttlMs = ttlSeconds === undefined ? settings.defaultNegativeTtlMs : clamp(ttlSeconds * 1000, settings.minTtlMs, settings.maxNegativeTtlMs);
      const { syscall, hostname } = error as { syscall?: unknown; hostname?: unknown };
      const entry = { expiresAt: clock.now() + ttlMs, failure: { code, message: (error as Error).message, syscall, hostname } };
      remember(key, entry);
      return entry;
    }
  }

  const resolver = async (name: string, rrtype: string): Promise<unknown> => {
    const key = cacheKey(name, rrtype);
    const hit = cache.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt > clock.now()) return served(hit);
      cache.delete(key);
    }
    let pending = inFlight.get(key);
    if (pending === undefined) {
      pending = ask(key, name, rrtype).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return served(await pending);
  };
  return Object.assign(resolver, { [CACHES_ANSWERS]: true as const });
}
