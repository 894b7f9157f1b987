import type { DnsResolver } from '../policy/types.js';
import type { Clock } from '../util/clock.js';

/**
 * Node's resolver gives no TTL for TXT answers, so the cache keeps every answer for a fixed
 * time instead: 5 minutes for records, 1 minute for "no such name / no such record" (RFC 2308
 * negative caching, kept short so a newly published record is seen soon). Temporary failures
 * (timeouts, refusals) are not cached: the next message asks again.
 */
export const POSITIVE_TTL_MS = 5 * 60_000;
export const NEGATIVE_TTL_MS = 60_000;
/** Entries beyond this are dropped oldest first, so a flood of sender domains cannot grow memory. */
const MAX_CACHE_ENTRIES = 10_000;

const NEGATIVE_CODES = new Set(['ENOTFOUND', 'ENODATA']);

type CacheEntry = { expiresAt: number; records: unknown } | { expiresAt: number; code: string; message: string };

/**
 * `resolver` with each (name, type) answer remembered as above, read against `clock`. Callers
 * asking the same question while it is being answered share the one query: a burst of
 * messages to one domain asks its MX once.
 */
export function cachingResolver(resolver: DnsResolver, clock: Clock): DnsResolver {
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<unknown>>();

  function remember(key: string, entry: CacheEntry): void {
    cache.delete(key);
    if (cache.size >= MAX_CACHE_ENTRIES) {
      const now = clock.now();
      for (const [oldKey, old] of cache) if (old.expiresAt <= now) cache.delete(oldKey);
      const oldest = cache.keys().next();
      if (cache.size >= MAX_CACHE_ENTRIES && !oldest.done) cache.delete(oldest.value);
    }
    cache.set(key, entry);
  }

  return async (name, rrtype) => {
    const key = `${rrtype.toUpperCase()} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit !== undefined && hit.expiresAt > clock.now()) {
      if ('records' in hit) return hit.records;
      // A fresh error each time: mailauth writes its verdict onto the error it is given.
      throw Object.assign(new Error(hit.message), { code: hit.code });
    }
    const pending = inFlight.get(key);
    if (pending) return pending;
    const query = (async () => {
      try {
        const records = await resolver(name, rrtype);
        remember(key, { expiresAt: clock.now() + POSITIVE_TTL_MS, records });
        return records;
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (typeof code === 'string' && NEGATIVE_CODES.has(code)) {
          remember(key, { expiresAt: clock.now() + NEGATIVE_TTL_MS, code, message: (error as Error).message });
        }
        throw error;
      } finally {
        inFlight.delete(key);
      }
    })();
    inFlight.set(key, query);
    return query;
  };
}

