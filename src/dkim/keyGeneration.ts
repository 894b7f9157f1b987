import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { MIN_RSA_BITS, parseDkimPrivateKey, type DkimAlgorithm } from './dkimKeys.js';

const generate = promisify(generateKeyPair) as (
  type: 'rsa' | 'ed25519',
  options?: { modulusLength: number; publicExponent: number },
) => Promise<{ privateKey: KeyObject; publicKey: KeyObject }>;

/** Larger RSA keys no longer fit a DNS answer comfortably and take minutes to generate. */
export const MAX_RSA_BITS = 8192;

export interface GeneratedDkimKey {
  algorithm: DkimAlgorithm;
  bits: number | undefined;
  /** PKCS#8 PEM, what `keyFile` holds. */
  pem: string;
  /** The p= value of its DNS record. */
  publicKeyValue: string;
}

/** A new DKIM signing key: RSA of `bits` (2048 by default, RFC 8301) or Ed25519 (RFC 8463). */
export async function generateDkimKey(algorithm: DkimAlgorithm, bits?: number): Promise<GeneratedDkimKey> {
  if (algorithm === 'ed25519' && bits !== undefined) throw new RangeError('--bits applies to RSA keys only; an Ed25519 key is always 256 bits');
  const modulusLength = bits ?? MIN_RSA_BITS;
  if (algorithm === 'rsa' && (!Number.isInteger(modulusLength) || modulusLength < MIN_RSA_BITS || modulusLength > MAX_RSA_BITS)) {
    throw new RangeError(`An RSA DKIM key must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, not ${modulusLength}`);
  }
  const { privateKey } = algorithm === 'rsa' ? await generate('rsa', { modulusLength, publicExponent: 0x10001 }) : await generate('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  // Read back through the same checks the gateway applies, so what is written is what loads.
  const parsed = parseDkimPrivateKey(pem, 'the generated key');
  return { algorithm: parsed.algorithm, bits: parsed.bits, pem, publicKeyValue: parsed.publicKeyValue };
}
