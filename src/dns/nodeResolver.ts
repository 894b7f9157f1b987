import { promises as dns } from 'node:dns';
import type { DnsResolver } from '../policy/types.js';

/**
 * The DNS resolver rules and mailauth use, in mailauth's shape: `resolve(name, rrtype)`
 * resolving to the records as Node's resolver returns them, rejecting with Node's codes
 * (ENOTFOUND, ENODATA, ETIMEOUT...). `servers` overrides the system's resolvers (tests point it
 * at a DNS server on loopback).
 */
export function createNodeResolver(options: { servers?: readonly string[]; timeoutMs?: number } = {}): DnsResolver {
  const resolver = new dns.Resolver({ timeout: options.timeoutMs ?? 5000, tries: 2 });
  if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
  return (name, rrtype) => resolver.resolve(name, rrtype) as Promise<unknown>;
}
