import type { DkimKeyConfig } from '../config/schema.js';
import type { DnsResolver } from '../policy/types.js';
import { errorMessage } from '../util/errors.js';
import { readDkimKey } from './dkimKeys.js';
import { dkimRecordName, parseDkimRecord, publishedKeyMatches } from './dnsRecord.js';

/** What DNS says about one configured key. */
export type PublicationStatus =
  | 'matches'
  | 'different-key'
  | 'not-published'
  | 'revoked'
  | 'several-records'
  | 'invalid-record'
  | 'lookup-failed'
  | 'key-unreadable';

export interface PublicationCheck {
  domain: string;
  selector: string;
  /** SELECTOR._domainkey.DOMAIN */
  name: string;
  active: boolean;
  /** Unknown when the key file could not be read. */
  algorithm: string | undefined;
  status: PublicationStatus;
  /** What was found or what failed, for the operator. */
  detail: string;
  /** An active key that receivers cannot verify: `postern dkim check` fails. */
  problem: boolean;
}

/** Answers meaning "no such record" rather than "could not ask" (Node's dns error codes). */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/**
 * Looks up each key's record (RFC 6376 section 3.6.2.2: a TXT record at
 * SELECTOR._domainkey.DOMAIN, its strings joined) and compares it with the key configured.
 */
export async function checkPublishedKeys(keys: readonly DkimKeyConfig[], resolve: DnsResolver): Promise<PublicationCheck[]> {
  return Promise.all(keys.map((key) => checkOne(key, resolve)));
}

async function checkOne(config: DkimKeyConfig, resolve: DnsResolver): Promise<PublicationCheck> {
  const name = dkimRecordName(config.selector, config.domain);
  const base = { domain: config.domain, selector: config.selector, name, active: config.active };
  const result = (status: PublicationStatus, detail: string, algorithm: string | undefined): PublicationCheck => ({
    ...base,
    algorithm,
    status,
    detail,
    problem: config.active && status !== 'matches',
  });

  let ours;
  try {
    ours = readDkimKey(config);
  } catch (err) {
    return result('key-unreadable', errorMessage(err), undefined);
  }

  let answer: unknown;
  try {
    answer = await resolve(name, 'TXT');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && NO_RECORD.has(code)) return result('not-published', `no TXT record at ${name}`, ours.algorithm);
    return result('lookup-failed', `the DNS lookup of ${name} failed (${code ?? errorMessage(err)})`, ours.algorithm);
  }
  const records = (Array.isArray(answer) ? answer : []).map((strings) => (Array.isArray(strings) ? strings.join('') : String(strings)));
  // Other TXT records at the name (a site verification string) are not DKIM's concern.
  const dkimRecords = records.filter((text) => /(^|;)\s*(v\s*=\s*DKIM1|p\s*=)/.test(text));
  if (dkimRecords.length === 0) return result('not-published', `${name} has TXT records, but none is a DKIM key record`, ours.algorithm);
  if (dkimRecords.length > 1) {
    // RFC 6376 section 3.6.2.2 leaves the result undefined; verifiers differ in which one they use.
    return result('several-records', `${name} has ${dkimRecords.length} DKIM records; publish exactly one`, ours.algorithm);
  }
  const published = parseDkimRecord(dkimRecords[0]!);
  switch (published.kind) {
    case 'revoked':
      return result('revoked', 'the record has an empty p=: the key is revoked', ours.algorithm);
    case 'invalid':
      return result('invalid-record', `the record is not a valid DKIM key record: ${published.reason}`, ours.algorithm);
    case 'key':
      if (publishedKeyMatches(published, ours)) return result('matches', 'published and matches the configured key', ours.algorithm);
      return result(
        'different-key',
        published.algorithm !== ours.algorithm
          ? `published, but as a k=${published.algorithm} key; the configured key is ${ours.algorithm}`
          : 'published, but with a different key than the configured one',
        ours.algorithm,
      );
  }
}
