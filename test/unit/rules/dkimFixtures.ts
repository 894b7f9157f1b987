import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';

/**
 * DKIM keys and signed messages for the rule tests, made with mailauth's signer and keys from
 * node:crypto: the verifying side then meets real signatures, not strings that look like them.
 */

export interface TestKey {
  domain: string;
  selector: string;
  privateKey: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** The DNS name of the public key record. */
  name: string;
  /** The TXT record as Node's resolver returns it: one record, split into strings of at most 255 characters. */
  txt: string[][];
}

function splitTxt(record: string): string[][] {
  const strings: string[] = [];
  for (let at = 0; at < record.length; at += 255) strings.push(record.slice(at, at + 255));
  return [strings];
}

export function rsaKey(domain: string, selector = 'sel', modulusLength = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    domain,
    selector,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    algorithm: 'rsa-sha256',
    name: `${selector}._domainkey.${domain}`,
    txt: splitTxt(`v=DKIM1; k=rsa; p=${p}`),
  };
}

export function ed25519Key(domain: string, selector = 'ed'): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // RFC 8463 section 4.2: p= is the bare 32-byte public key, the tail of its SPKI encoding.
  const p = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  return {
    domain,
    selector,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    algorithm: 'ed25519-sha256',
    name: `${selector}._domainkey.${domain}`,
    txt: splitTxt(`v=DKIM1; k=ed25519; p=${p}`),
  };
}

/** The zone entries that publish `keys`. */
export function keyRecords(...keys: TestKey[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [`${key.name} TXT`, key.txt]));
}

/** `raw` (LF or CRLF) with a DKIM-Signature field per key prepended, signed a minute before `at` (x= from `expiresAt`). */
export async function signMessage(raw: string, keys: TestKey[], options: { at?: number; maxBodyLength?: number; expiresAt?: number } = {}): Promise<string> {
  const message = raw.replace(/\r?\n/g, '\r\n');
  const result = await dkimSign(message, {
    signTime: new Date((options.at ?? Date.UTC(2026, 0, 1)) - 60_000),
    ...(options.expiresAt !== undefined && { expires: new Date(options.expiresAt) }),
    signatureData: keys.map((key) => ({
      signingDomain: key.domain,
      selector: key.selector,
      privateKey: key.privateKey,
      algorithm: key.algorithm,
      canonicalization: 'relaxed/relaxed',
      ...(options.maxBodyLength !== undefined && { maxBodyLength: options.maxBodyLength }),
    })),
  } as never);
  if (result.errors.length > 0) throw new Error(`signing failed: ${result.errors.map(String).join('; ')}`);
  return result.signatures + message;
}
