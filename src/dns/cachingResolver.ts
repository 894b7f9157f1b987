import type { DnsResolver } from '../policy/types.js';
import type { Clock } from '../util/clock.js';
import { cachesAnswers, ttlCachingResolver } from './ttlCache.js';

/**
 * For resolvers that give no TTL (node:dns hides it for most types), answers are kept a fixed
 * time instead: 5 minutes for records, 1 minute for "no such name / no such record" (RFC 2308
 * negative caching, kept short so a newly published record is seen soon). Temporary failures
 * (timeouts, refusals) are not cached: the next message asks again.
 */
export const POSITIVE_TTL_MS = 5 * 60_000;
export const NEGATIVE_TTL_MS = 60_000;

/**
 * `resolver` with each (name, type) answer remembered as above, read against `clock`, and
 * questions asked while one is being answered sharing its query. A resolver that already keeps
 * answers for their real TTL (createResolver in resolver.ts) is returned as it is: a second
 * cache in front of it would hold answers past the TTL their publisher set.
 */
export function cachingResolver(resolver: DnsResolver, clock: Clock): DnsResolver {
  if (cachesAnswers(resolver)) return resolver;
  const lookup = async (name: string, rrtype: string) => ({ records: await resolver(name, rrtype), ttlSeconds: POSITIVE_TTL_MS / 1000 });
  return ttlCachingResolver(lookup, clock, { defaultNegativeTtlMs: NEGATIVE_TTL_MS });
}
