import type { Clock } from '../util/clock.js';
import { createPacketResolver } from './packetResolver.js';
import { ttlCachingResolver, type CachedDnsResolver, type TtlCacheOptions } from './ttlCache.js';

export interface ResolverOptions {
  /** Servers as node:dns writes them ("192.0.2.1", "127.0.0.1:5353", "[::1]:53"); default the system's. */
  servers?: readonly string[];
  clock: Clock;
  /** How long to wait for each attempt's answer; default 5 s. */
  timeoutMs?: number;
  /** How many times each server is asked; default 2. */
  tries?: number;
  cache?: TtlCacheOptions;
}

/**
 * The resolver the gateway runs with: questions asked over DNS directly, answers kept for
 * their TTL (negative ones for their SOA's, RFC 2308), in node:dns's record shapes and error
 * codes. One instance is shared by delivery and the policy rules so each answer is asked once.
 */
export function createResolver(options: ResolverOptions): CachedDnsResolver {
  const lookup = createPacketResolver({ servers: options.servers, timeoutMs: options.timeoutMs, tries: options.tries });
  return ttlCachingResolver(lookup, options.clock, options.cache);
}
