import type { LookupAddress, LookupOptions } from 'node:dns';
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { DnsResolver } from '../policy/types.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { normalizeHostName, parseMtaStsPolicy, policyIdFromTxtRecords, type MtaStsPolicy } from './mtaStsPolicy.js';

export { mxMatchesPolicy, parseMtaStsPolicy, type MtaStsMode, type MtaStsPolicy } from './mtaStsPolicy.js';

/**
 * MTA-STS (RFC 8461) discovery, fetching and caching for outbound delivery: which policy, if
 * any, is in force for a recipient domain. Parsing and MX matching are in mtaStsPolicy.ts.
 */

export interface MtaStsOptions {
  resolver: DnsResolver;
  clock: Clock;
  logger: Logger;
  /** Port of the policy host's HTTPS server; 443 except in tests. */
  httpsPort?: number;
  /** Extra PEM CA certificates to trust besides the system's (private PKI, tests). */
  ca?: string | Buffer;
  /** Fetch timeout, default 10 s (RFC 8461 section 3.3 suggests a short one). */
  timeoutMs?: number;
  /**
   * After a failed fetch, how long not to try the same policy id of the same domain again;
   * 5 minutes by default, as RFC 8461 section 3.3 suggests, so a broken policy host is not
   * asked (and waited for) on every delivery attempt. 0 retries on the next call.
   */
  fetchRetryMs?: number;
  /** At most this many domains' policies are cached; the oldest go first. 10000 by default. */
  maxCachedDomains?: number;
}

/** Section 3.3 suggests 64 kilobytes as the largest policy body worth reading. */
export const POLICY_BODY_LIMIT_BYTES = 64 * 1024;
const POLICY_PATH = '/.well-known/mta-sts.txt';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_FETCH_RETRY_MS = 5 * 60_000;
const DEFAULT_MAX_CACHED_DOMAINS = 10_000;
const NO_SUCH_RECORD = new Set(['ENOTFOUND', 'ENODATA']);

interface CachedPolicy {
  policy: MtaStsPolicy;
  /** Fetch time + max_age (section 3.2); the policy is not applied from then on. */
  expiresAt: number;
}

interface FailedFetch {
  id: string;
  retryAt: number;
}

export class MtaStsResolver {
  private readonly resolver: DnsResolver;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly httpsPort: number;
  private readonly ca: Array<string | Buffer> | undefined;
  private readonly timeoutMs: number;
  private readonly fetchRetryMs: number;
  private readonly maxCachedDomains: number;
  private readonly cache = new Map<string, CachedPolicy>();
  private readonly failures = new Map<string, FailedFetch>();
  private readonly inFlight = new Map<string, Promise<MtaStsPolicy | undefined>>();

  constructor(options: MtaStsOptions) {
    this.resolver = options.resolver;
    this.clock = options.clock;
    this.logger = options.logger;
    this.httpsPort = options.httpsPort ?? 443;
    // `ca` replaces Node's trusted roots rather than adding to them, so the bundled roots are
    // listed alongside the extra certificates.
    this.ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetchRetryMs = options.fetchRetryMs ?? DEFAULT_FETCH_RETRY_MS;
    this.maxCachedDomains = options.maxCachedDomains ?? DEFAULT_MAX_CACHED_DOMAINS;
    if (!Number.isInteger(this.httpsPort) || this.httpsPort < 1 || this.httpsPort > 65_535) {
      throw new RangeError(`MTA-STS HTTPS port must be from 1 to 65535, got ${this.httpsPort}`);
    }
    if (!(this.timeoutMs > 0)) throw new RangeError(`MTA-STS fetch timeout must be positive, got ${this.timeoutMs}`);
  }

  /**
   * The policy in force for a recipient domain, or undefined when it has none (or none could
   * be had; RFC 8461 section 5). Never rejects. Concurrent calls for one domain share one
   * discovery, so a burst of messages to a domain fetches its policy once.
   */
  policyFor(domain: string): Promise<MtaStsPolicy | undefined> {
    const policyDomain = normalizeHostName(domain);
    // An address literal or an empty domain has no DNS name to publish a policy under.
    if (policyDomain === '' || isIP(policyDomain) !== 0 || policyDomain.startsWith('[')) return Promise.resolve(undefined);
    const running = this.inFlight.get(policyDomain);
    if (running !== undefined) return running;
    const discovery = this.discover(policyDomain)
      .catch((err: unknown) => {
        this.logger.warn({ domain: policyDomain, err: errorMessage(err) }, 'MTA-STS discovery failed; delivering without a policy');
        return undefined;
      })
      .finally(() => this.inFlight.delete(policyDomain));
    this.inFlight.set(policyDomain, discovery);
    return discovery;
  }

  /** RFC 8461 section 5.1, "Policy Application Control Flow", and section 3.3 on caching. */
  private async discover(domain: string): Promise<MtaStsPolicy | undefined> {
    const id = await this.currentPolicyId(domain);
    const cached = this.validCachedPolicy(domain);

    if (id === undefined) {
      // Section 3.1: a missing TXT record alone does not remove a cached policy; section 5.1:
      // with no live policy but a valid cached one, the cached one applies.
      if (cached !== undefined) this.logger.debug({ domain, id: cached.id, mode: cached.mode }, 'MTA-STS: no usable TXT record; applying the cached policy');
      return cached;
    }
    if (cached !== undefined && cached.id === id) {
      this.logger.debug({ domain, id, mode: cached.mode }, 'MTA-STS: cached policy is current');
      return cached;
    }
    const failed = this.failures.get(domain);
    if (failed !== undefined && failed.id === id && failed.retryAt > this.clock.now()) {
      this.logger.debug({ domain, id }, 'MTA-STS: policy fetch failed recently; not trying again yet');
      return cached;
    }

    try {
      const policy: MtaStsPolicy = { id, ...(await this.fetchPolicy(domain)) };
      // Every caller gets this same object from the cache: none may change it for the others.
      Object.freeze(policy.mx);
      Object.freeze(policy);
      this.remember(domain, policy);
      this.failures.delete(domain);
      this.logger.debug({ domain, id, mode: policy.mode, mx: policy.mx, maxAgeSeconds: policy.maxAgeSeconds }, 'MTA-STS: fetched policy');
      return policy;
    } catch (err) {
      this.failures.delete(domain);
      this.failures.set(domain, { id, retryAt: this.clock.now() + this.fetchRetryMs });
      trimOldest(this.failures, this.maxCachedDomains);
      if (cached !== undefined) {
        // Section 3.3: an update that cannot be fetched leaves the valid cached policy in force.
        this.logger.warn({ domain, id, cachedId: cached.id, err: errorMessage(err) }, 'MTA-STS policy fetch failed; applying the cached policy');
        return cached;
      }
      // Section 3.3: no policy can be fetched and none is cached: deliver as without MTA-STS.
      this.logger.warn({ domain, id, err: errorMessage(err) }, 'MTA-STS policy fetch failed; delivering without a policy');
      return undefined;
    }
  }

  /** The id of the domain's one valid `_mta-sts` TXT record, or undefined (section 3.1). */
  private async currentPolicyId(domain: string): Promise<string | undefined> {
    const name = `_mta-sts.${domain}`;
    let records: unknown;
    try {
      records = await this.resolver(name, 'TXT');
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && NO_SUCH_RECORD.has(code)) {
        this.logger.debug({ domain }, 'MTA-STS: no TXT record');
      } else {
        this.logger.debug({ domain, err: errorMessage(err) }, 'MTA-STS: TXT lookup failed');
      }
      return undefined;
    }
    const id = policyIdFromTxtRecords(records);
    this.logger.debug({ domain, id }, id === undefined ? 'MTA-STS: no single valid v=STSv1 TXT record' : 'MTA-STS: TXT record found');
    return id;
  }

  private validCachedPolicy(domain: string): MtaStsPolicy | undefined {
    const entry = this.cache.get(domain);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.clock.now()) return entry.policy;
    this.cache.delete(domain);
    return undefined;
  }

  private remember(domain: string, policy: MtaStsPolicy): void {
    this.cache.delete(domain);
    this.cache.set(domain, { policy, expiresAt: this.clock.now() + policy.maxAgeSeconds * 1000 });
    trimOldest(this.cache, this.maxCachedDomains);
  }

  private async fetchPolicy(domain: string): Promise<Omit<MtaStsPolicy, 'id'>> {
    const text = await fetchPolicyText({
      policyHost: `mta-sts.${domain}`,
      port: this.httpsPort,
      ca: this.ca,
      timeoutMs: this.timeoutMs,
      lookup: lookupThrough(this.resolver),
    });
    return parseMtaStsPolicy(text);
  }
}

interface PolicyFetch {
  policyHost: string;
  port: number;
  ca: Array<string | Buffer> | undefined;
  timeoutMs: number;
  lookup: LookupFunction;
}

/**
 * GET https://<policyHost>/.well-known/mta-sts.txt as section 3.3 requires: the certificate
 * verified for the policy host, no redirects followed, only 200 with text/plain, no HTTP
 * cache, and a bounded body and time.
 */
function fetchPolicyText(fetch: PolicyFetch): Promise<string> {
  const url = `https://${fetch.policyHost}${fetch.port === 443 ? '' : `:${fetch.port}`}${POLICY_PATH}`;
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== undefined) {
        req.destroy();
        reject(new Error(`Cannot fetch MTA-STS policy ${url}: ${err.message}`, { cause: err }));
      } else {
        resolve(text!);
      }
    };

    const req = request(
      {
        host: fetch.policyHost,
        port: fetch.port,
        path: POLICY_PATH,
        method: 'GET',
        // The address comes from the injected resolver, never the system's; the TLS name
        // checked is still the policy host's (RFC 6125, section 3.3).
        lookup: fetch.lookup,
        servername: fetch.policyHost,
        rejectUnauthorized: true,
        ...(fetch.ca === undefined ? {} : { ca: fetch.ca }),
        // A private agent per fetch: no pooled socket made with other trust settings is reused.
        agent: false,
        headers: { accept: 'text/plain', 'cache-control': 'no-cache' },
      },
      (res) => readPolicyResponse(res, finish),
    );
    const timer = setTimeout(() => finish(new Error(`no answer within ${fetch.timeoutMs} ms`)), fetch.timeoutMs);
    req.on('error', (err) => finish(err));
    req.end();
  });
}

function readPolicyResponse(res: IncomingMessage, finish: (err: Error | undefined, text?: string) => void): void {
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    res.resume();
    const redirect = status >= 300 && status < 400 ? ' (redirects are not followed, RFC 8461 section 3.3)' : '';
    finish(new Error(`answered HTTP ${status}${redirect}`));
    return;
  }
  // Section 3.3: the media type must be text/plain; parameters such as charset may follow.
  const contentType = res.headers['content-type'] ?? '';
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'text/plain') {
    res.resume();
    finish(new Error(`answered Content-Type ${JSON.stringify(contentType)}, not text/plain`));
    return;
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > POLICY_BODY_LIMIT_BYTES) {
    finish(new Error(`policy body of ${declared} bytes exceeds ${POLICY_BODY_LIMIT_BYTES}`));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > POLICY_BODY_LIMIT_BYTES) {
      finish(new Error(`policy body exceeds ${POLICY_BODY_LIMIT_BYTES} bytes`));
      return;
    }
    chunks.push(chunk);
  });
  res.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
  res.on('error', (err) => finish(err));
}

/**
 * A `lookup` for node:net that asks the injected resolver instead of the system's: A records
 * first, then AAAA, so the connection goes where the configured DNS says.
 */
function lookupThrough(resolver: DnsResolver): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const family = familyNumber(options.family);
    addressesOf(resolver, hostname, family).then(
      (addresses) => {
        if (options.all === true) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function familyNumber(family: LookupOptions['family']): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

async function addressesOf(resolver: DnsResolver, hostname: string, family: 0 | 4 | 6): Promise<LookupAddress[]> {
  const queries: Array<[rrtype: 'A' | 'AAAA', family: 4 | 6]> = [];
  if (family !== 6) queries.push(['A', 4]);
  if (family !== 4) queries.push(['AAAA', 6]);
  const answers = await Promise.allSettled(queries.map(([rrtype]) => resolver(hostname, rrtype)));

  const addresses: LookupAddress[] = [];
  let failure: unknown;
  answers.forEach((answer, index) => {
    const wanted = queries[index]![1];
    if (answer.status === 'rejected') {
      const code = (answer.reason as { code?: unknown } | null)?.code;
      if (!(typeof code === 'string' && NO_SUCH_RECORD.has(code))) failure ??= answer.reason;
      return;
    }
    for (const address of addressList(answer.value)) {
      if (isIP(address) === wanted) addresses.push({ address, family: wanted });
    }
  });
  if (addresses.length > 0) return addresses;
  if (failure !== undefined) throw failure;
  throw Object.assign(new Error(`${hostname} has no ${queries.map(([rrtype]) => rrtype).join(' or ')} record`), {
    code: 'ENOTFOUND',
    hostname,
  });
}

/** A/AAAA answers as strings (Node's default) or as { address } objects (with ttl: true). */
function addressList(records: unknown): string[] {
  if (!Array.isArray(records)) return [];
  return records.flatMap((record: unknown) => {
    if (typeof record === 'string') return [record];
    const address = (record as { address?: unknown } | null)?.address;
    return typeof address === 'string' ? [address] : [];
  });
}

/** Drops the oldest entries (Map insertion order) until at most `max` remain. */
function trimOldest<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}
