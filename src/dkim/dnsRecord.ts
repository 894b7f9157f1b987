import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * The DNS side of a DKIM key: the TXT record a domain publishes at
 * SELECTOR._domainkey.DOMAIN (RFC 6376 section 3.6.2), and reading one back to compare.
 */

export type DkimAlgorithm = 'rsa' | 'ed25519';

/** A TXT character-string holds at most 255 octets (RFC 1035 section 3.3); longer records are several strings. */
export const MAX_TXT_STRING = 255;

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it (RFC 8410). */
const ED25519_SPKI_PREFIX_LENGTH = 12;

/**
 * The p= value for a public key: for RSA the base64 of the DER SubjectPublicKeyInfo (RFC 6376
 * section 3.6.1), for Ed25519 the base64 of the raw 32-byte key (RFC 8463 section 4.2).
 */
export function publicKeyDnsValue(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  if (publicKey.asymmetricKeyType === 'ed25519') return der.subarray(ED25519_SPKI_PREFIX_LENGTH).toString('base64');
  if (publicKey.asymmetricKeyType === 'rsa') return der.toString('base64');
  throw new RangeError(`A DKIM key must be RSA or Ed25519, not ${publicKey.asymmetricKeyType ?? 'unknown'}`);
}

/** "v=DKIM1; k=rsa; p=..." for the key. */
export function dkimRecordText(algorithm: DkimAlgorithm, publicKeyValue: string): string {
  return `v=DKIM1; k=${algorithm}; p=${publicKeyValue}`;
}

/** The record split into character-strings of at most 255 octets; a verifier joins them with nothing between (RFC 6376 section 3.6.2.2). */
export function splitTxtStrings(text: string, max = MAX_TXT_STRING): string[] {
  if (max < 1) throw new RangeError(`TXT string length must be at least 1, got ${max}`);
  const strings: string[] = [];
  for (let at = 0; at < text.length; at += max) strings.push(text.slice(at, at + max));
  return strings.length > 0 ? strings : [''];
}

/** The owner name of a key's record: SELECTOR._domainkey.DOMAIN (RFC 6376 section 3.6.2.1). */
export function dkimRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** The record as a zone file line, ready to paste: `S._domainkey.D. IN TXT ( "..." "..." )`. */
export function zoneFileLine(selector: string, domain: string, text: string): string {
  const strings = splitTxtStrings(text).map((s) => `"${s}"`);
  return `${dkimRecordName(selector, domain)}. IN TXT ( ${strings.join(' ')} )`;
}

/** A published record, read as RFC 6376 section 3.6.1 defines its tags. */
export type PublishedKey =
  | { kind: 'key'; algorithm: string; publicKeyValue: string }
  /** An empty p= means the key has been revoked (RFC 6376 section 3.6.1). */
  | { kind: 'revoked' }
  | { kind: 'invalid'; reason: string };

/** Reads one TXT record (its strings already joined). */
export function parseDkimRecord(text: string): PublishedKey {
  const tags = new Map<string, string>();
  // tag-list (RFC 6376 section 3.2): tag=value pairs separated by ';', white space around ignored.
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) return { kind: 'invalid', reason: `"${part.trim()}" is not tag=value` };
    const tag = part.slice(0, eq).trim();
    if (tags.has(tag)) return { kind: 'invalid', reason: `tag ${tag} appears twice` };
    tags.set(tag, part.slice(eq + 1).trim());
  }
  const version = tags.get('v');
  if (version !== undefined && version !== 'DKIM1') return { kind: 'invalid', reason: `v=${version} is not DKIM1` };
  const p = tags.get('p');
  if (p === undefined) return { kind: 'invalid', reason: 'the record has no p= tag' };
  const publicKeyValue = p.replace(/\s+/g, '');
  if (publicKeyValue === '') return { kind: 'revoked' };
  return { kind: 'key', algorithm: (tags.get('k') ?? 'rsa').toLowerCase(), publicKeyValue };
}

/**
 * Does a published key equal ours? RSA keys are compared as keys, not text, since a record may
 * hold the bare RSAPublicKey instead of the SubjectPublicKeyInfo and the same key still verifies.
 */
export function publishedKeyMatches(published: { algorithm: string; publicKeyValue: string }, ours: { algorithm: DkimAlgorithm; publicKeyValue: string }): boolean {
  if (published.algorithm !== ours.algorithm) return false;
  if (published.publicKeyValue === ours.publicKeyValue) return true;
  if (ours.algorithm !== 'rsa') return false;
  const der = Buffer.from(published.publicKeyValue, 'base64');
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      const key = createPublicKey({ key: der, format: 'der', type });
      return publicKeyDnsValue(key) === ours.publicKeyValue;
    } catch {
      // not this encoding; try the next
    }
  }
  return false;
}
