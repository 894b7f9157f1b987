import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DkimKeyConfig } from '../../src/config/schema.js';
import { parseDkimPrivateKey } from '../../src/dkim/dkimKeys.js';
import { dkimRecordName, dkimRecordText, splitTxtStrings } from '../../src/dkim/dnsRecord.js';

/** A directory for key files; remove() deletes it. */
export async function keyDirectory(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-dkim-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh PKCS#8 PEM private key. */
export function newKeyPem(type: 'rsa' | 'ed25519' | 'ec', bits = 2048): string {
  const pair =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: bits })
      : type === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Writes `pem` to dir/name (mode 0600) and returns the path. */
export async function writeKeyFile(dir: string, name: string, pem: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, pem, { mode: 0o600 });
  return path;
}

/** Replaces a key file the way an operator or Kubernetes does: a new file renamed over the old one. */
export async function replaceKeyFile(path: string, pem: string): Promise<void> {
  const temp = `${path}.new`;
  await writeFile(temp, pem, { mode: 0o600 });
  await rename(temp, path);
}

/** A `dkim.keys` entry. */
export function keyConfig(domain: string, selector: string, keyFile: string, active = true): DkimKeyConfig {
  return { domain, selector, keyFile, active };
}

/** The TXT record (as dnsServer's strings of at most 255 octets) publishing the public half of `pem`. */
export function publishedRecord(selector: string, domain: string, pem: string): Record<string, string[][]> {
  const key = parseDkimPrivateKey(pem, 'test key');
  return { [dkimRecordName(selector, domain)]: [splitTxtStrings(dkimRecordText(key.algorithm, key.publicKeyValue))] };
}
