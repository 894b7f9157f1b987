import { isIP, isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import type { DnsResolver } from '../policy/types.js';

/**
 * Where mail for a domain goes when it is delivered directly: the MX hosts of the domain in
 * the order to try, each with its addresses (RFC 5321 section 5.1), or why there are none.
 *
 * The outcome speaks the language of delivery: a permanent failure bounces the recipients, a
 * temporary one defers them; the enhanced status codes are RFC 3463's (and RFC 7505's 5.1.10
 * for a null MX).
 */

export interface MxHost {
  /** The exchange name as published (lower case, no trailing dot), or the domain itself for the implicit MX, or the IP for an address literal. */
  name: string;
  preference: number;
  /** IPv4 addresses first, then IPv6, each as resolved. Never empty. */
  addresses: string[];
  /** True when no MX exists and the domain's own A/AAAA records stand in (RFC 5321 section 5.1). */
  implicit: boolean;
}

export type MxLookupResult =
  /** `hosts` in the order to try. */
  | { ok: true; hosts: MxHost[] }
  /** `reply`: a sentence for logs and bounces, e.g. "example.invalid: domain does not exist (NXDOMAIN)". */
  | { ok: false; permanent: boolean; enhancedCode: string; reply: string };

export interface MxLookupOptions {
  resolver: DnsResolver;
  /** [0,1) randomness for shuffling equal preferences; Math.random unless a test pins it. */
  random?: () => number;
  /** Addresses tried per domain at most, over all hosts (Postfix's smtp_mx_address_limit). */
  maxAddresses?: number;
}

/**
 * Ten addresses: enough for a primary and a backup MX that each publish a few IPv4 and IPv6
 * addresses, while a domain publishing hundreds cannot hold a delivery worker for hours.
 */
export const DEFAULT_MAX_ADDRESSES = 10;

/** RFC 3463: 5.1.2 bad destination system address (no such domain, not a domain name). */
const NO_SUCH_DOMAIN = '5.1.2';
/** RFC 7505 (with reply code 556, RFC 7504): the domain accepts no mail. */
const NULL_MX = '5.1.10';
/** RFC 3463: 5.4.4 unable to route (MX hosts exist, none has an address). */
const UNABLE_TO_ROUTE = '5.4.4';
/** RFC 3463: 4.4.3 directory server failure (DNS could not answer now). */
const DNS_TEMPORARY = '4.4.3';

/**
 * One DNS answer. Three resolver error codes are answers rather than failures to get one: the
 * name does not exist (ENOTFOUND, NXDOMAIN), it has no record of the type asked (ENODATA), or it
 * is not a name that fits in a query (EBADNAME; asking again will not change that). Anything
 * else, known or not (ETIMEOUT, ESERVFAIL, ECONNREFUSED, EREFUSED, EBADRESP...), may go away:
 * temporary.
 */
type DnsAnswer<T> =
  | { kind: 'records'; records: T[] }
  | { kind: 'nxdomain' }
  | { kind: 'nodata' }
  | { kind: 'badname' }
  | { kind: 'temporary'; code: string };

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.message : String(err);
}

async function query<T>(resolver: DnsResolver, name: string, rrtype: string, parse: (records: unknown) => T[]): Promise<DnsAnswer<T>> {
  let raw: unknown;
  try {
    raw = await resolver(name, rrtype);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
    if (code === 'ENODATA') return { kind: 'nodata' };
    if (code === 'EBADNAME') return { kind: 'badname' };
    return { kind: 'temporary', code };
  }
  const records = parse(raw);
  // An empty answer is NODATA; Node reports it as ENODATA, other resolvers may not.
  return records.length === 0 ? { kind: 'nodata' } : { kind: 'records', records };
}

interface MxRecord {
  exchange: string;
  preference: number;
}

/** Node's MX shape is `{ exchange, priority }`; records of any other shape are dropped. */
function parseMx(raw: unknown): MxRecord[] {
  if (!Array.isArray(raw)) return [];
  const records: MxRecord[] = [];
  for (const record of raw) {
    if (typeof record !== 'object' || record === null) continue;
    const { exchange, priority } = record as { exchange?: unknown; priority?: unknown };
    if (typeof exchange !== 'string' || typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0) continue;
    records.push({ exchange: stripTrailingDot(exchange.toLowerCase()), preference: priority });
  }
  return records;
}

function parseAddresses(isFamily: (address: string) => boolean): (raw: unknown) => string[] {
  return (raw) => (Array.isArray(raw) ? raw.filter((address): address is string => typeof address === 'string' && isFamily(address)) : []);
}

function stripTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function temporary(reply: string): MxLookupResult {
  return { ok: false, permanent: false, enhancedCode: DNS_TEMPORARY, reply };
}

function permanent(enhancedCode: string, reply: string): MxLookupResult {
  return { ok: false, permanent: true, enhancedCode, reply };
}

/**
 * An address literal in place of a domain (RFC 5321 section 4.1.3): `[192.0.2.1]` or
 * `[IPv6:2001:db8::1]`. Returns null when `domain` is not bracketed, a failure when it is
 * bracketed yet not an address this gateway can reach (a malformed address, or a
 * General-address-literal with a tag other than IPv6).
 */
function addressLiteral(domain: string): MxLookupResult | null {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return null;
  const inner = domain.slice(1, -1);
  let address: string | null = null;
  if (/^ipv6:/i.test(inner)) {
    const candidate = inner.slice('ipv6:'.length).toLowerCase();
    if (isIPv6(candidate)) address = candidate;
  } else if (isIPv4(inner)) {
    address = inner;
  }
  if (address === null) return permanent(NO_SUCH_DOMAIN, `${domain}: not a valid address literal`);
  return { ok: true, hosts: [{ name: address, preference: 0, addresses: [address], implicit: false }] };
}

/**
 * The name to query: lower case, without the trailing dot of a fully qualified name, in its
 * A-label form for an internationalised domain (RFC 5890; DNS holds only A-labels). Null when
 * it cannot be a domain name: an empty label, a label over 63 octets or a name over 253
 * (RFC 1035 section 2.3.4), or a name the URL host parser reads as an IPv4 address
 * ("1.2.3", "0x7f.1"): a top-level label is never numeric, and an address must be written
 * as a literal in brackets.
 */
function queryName(domain: string): string | null {
  const ascii = domainToASCII(stripTrailingDot(domain.trim()));
  if (ascii === '' || ascii.length > 253 || isIP(ascii) !== 0) return null;
  if (ascii.split('.').some((label) => label.length === 0 || label.length > 63)) return null;
  return ascii;
}

/** Fisher-Yates with the injected randomness. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/**
 * RFC 5321 section 5.1: lowest preference first, and hosts of equal preference in random order
 * ("SHOULD randomize") so that senders spread their load over them. An exchange listed twice
 * keeps its lowest preference.
 */
function orderExchanges(records: MxRecord[], random: () => number): MxRecord[] {
  const best = new Map<string, number>();
  for (const { exchange, preference } of records) {
    const known = best.get(exchange);
    if (known === undefined || preference < known) best.set(exchange, preference);
  }
  const byPreference = new Map<number, string[]>();
  for (const [exchange, preference] of best) {
    const group = byPreference.get(preference) ?? [];
    group.push(exchange);
    byPreference.set(preference, group);
  }
  return [...byPreference.keys()]
    .sort((a, b) => a - b)
    // Sorting by name before shuffling makes the order depend on `random` alone, not on the
    // order the DNS server happened to list the records in.
    .flatMap((preference) => shuffle((byPreference.get(preference) ?? []).sort(), random).map((exchange) => ({ exchange, preference })));
}

interface HostAddresses {
  addresses: string[];
  /** Why there are none, for the reply of the final failure; empty when there are some. */
  problem: string;
  temporaryFailure: boolean;
}

/**
 * A and AAAA of a name, asked in parallel. Addresses found in either count even when the
 * other query failed: a host reachable over one family is a host to try.
 */
async function resolveAddresses(resolver: DnsResolver, name: string): Promise<HostAddresses> {
  const [a, aaaa] = await Promise.all([query(resolver, name, 'A', parseAddresses(isIPv4)), query(resolver, name, 'AAAA', parseAddresses(isIPv6))]);
  const addresses = [...(a.kind === 'records' ? a.records : []), ...(aaaa.kind === 'records' ? aaaa.records : [])];
  if (addresses.length > 0) return { addresses, problem: '', temporaryFailure: false };
  const failed = [a, aaaa].find((answer): answer is { kind: 'temporary'; code: string } => answer.kind === 'temporary');
  if (failed) return { addresses, problem: `A/AAAA lookup failed temporarily (${failed.code})`, temporaryFailure: true };
  if (a.kind === 'nxdomain' && aaaa.kind === 'nxdomain') return { addresses, problem: 'does not exist (NXDOMAIN)', temporaryFailure: false };
  if (a.kind === 'badname' || aaaa.kind === 'badname') return { addresses, problem: 'not a valid domain name', temporaryFailure: false };
  return { addresses, problem: 'has no A or AAAA records', temporaryFailure: false };
}

/**
 * Keeps the hosts in order and their addresses in order, drops an address already listed by an
 * earlier host (two MX names for one server need not be tried twice), and stops at `limit`
 * addresses in all. A host left without addresses is dropped, so none is ever empty.
 */
export function limitAddresses(hosts: MxHost[], limit: number): MxHost[] {
  const seen = new Set<string>();
  const kept: MxHost[] = [];
  for (const host of hosts) {
    const addresses: string[] = [];
    for (const address of host.addresses) {
      if (seen.size >= limit) break;
      if (seen.has(address)) continue;
      seen.add(address);
      addresses.push(address);
    }
    if (addresses.length > 0) kept.push({ ...host, addresses });
    if (seen.size >= limit) break;
  }
  return kept;
}

/**
 * The implicit MX (RFC 5321 section 5.1): with no MX records, the domain itself is the one host,
 * at its own A and AAAA addresses.
 */
async function implicitMx(resolver: DnsResolver, domain: string, limit: number): Promise<MxLookupResult> {
  const found = await resolveAddresses(resolver, domain);
  if (found.addresses.length > 0) {
    return { ok: true, hosts: limitAddresses([{ name: domain, preference: 0, addresses: found.addresses, implicit: true }], limit) };
  }
  if (found.temporaryFailure) return temporary(`${domain}: no MX records, and the ${found.problem}`);
  return permanent(NO_SUCH_DOMAIN, `${domain}: domain has no MX, A or AAAA records`);
}

/**
 * Every exchange resolved at once. An exchange that is itself an IP address breaks RFC 5321
 * (section 5.1: the answer is a domain name) but is unambiguous; like Postfix, it is taken as
 * its own address rather than bouncing mail over a publisher's slip.
 */
async function resolveExchanges(resolver: DnsResolver, domain: string, exchanges: MxRecord[], limit: number): Promise<MxLookupResult> {
  const resolved = await Promise.all(
    exchanges.map(async ({ exchange, preference }) => {
      const found: HostAddresses = isIP(exchange) !== 0 ? { addresses: [exchange], problem: '', temporaryFailure: false } : await resolveAddresses(resolver, exchange);
      return { host: { name: exchange, preference, addresses: found.addresses, implicit: false }, found };
    }),
  );
  const usable = resolved.filter(({ found }) => found.addresses.length > 0).map(({ host }) => host);
  if (usable.length > 0) return { ok: true, hosts: limitAddresses(usable, limit) };
  // RFC 5321 section 5.1: MX records none of which is usable MUST be reported as an error,
  // never replaced by the implicit MX.
  const reasons = resolved.map(({ host, found }) => `${host.name} ${found.problem}`).join('; ');
  if (resolved.some(({ found }) => found.temporaryFailure)) return temporary(`no MX host of ${domain} has an address yet: ${reasons}`);
  return permanent(UNABLE_TO_ROUTE, `no MX host of ${domain} has an address: ${reasons}`);
}

/**
 * The hosts to deliver mail for `domain` to, in the order to try; or a failure, permanent
 * (bounce) or temporary (defer), with its enhanced status code and a sentence for the bounce.
 * Never rejects for a DNS outcome; a bad `maxAddresses` is a RangeError.
 */
export async function lookupMx(domain: string, options: MxLookupOptions): Promise<MxLookupResult> {
  const limit = options.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`maxAddresses must be a positive integer, got ${limit}`);
  const random = options.random ?? Math.random;
  const { resolver } = options;

  const literal = addressLiteral(domain.trim());
  if (literal) return literal;

  const name = queryName(domain);
  if (name === null) return permanent(NO_SUCH_DOMAIN, `${domain}: not a valid domain name`);

  const mx = await query(resolver, name, 'MX', parseMx);
  switch (mx.kind) {
    case 'nxdomain':
      return permanent(NO_SUCH_DOMAIN, `${name}: domain does not exist (NXDOMAIN)`);
    case 'badname':
      return permanent(NO_SUCH_DOMAIN, `${name}: not a valid domain name`);
    case 'temporary':
      return temporary(`${name}: MX lookup failed temporarily (${mx.code})`);
    case 'nodata':
      return implicitMx(resolver, name, limit);
    case 'records': {
      // RFC 7505 section 3: an MX whose exchange is the root ("0 ." in a zone file) says the
      // domain takes no mail; delivery fails at once, with no fall back to A/AAAA. Beside real
      // MX records (which section 3 forbids publishing) it is ignored and the real ones used.
      const real = mx.records.filter((record) => record.exchange !== '');
      if (real.length === 0) return permanent(NULL_MX, `${name}: domain accepts no mail (null MX, RFC 7505)`);
      return resolveExchanges(resolver, name, orderExchanges(real, random), limit);
    }
  }
}
