import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DkimKeyConfig } from '../../src/config/schema.js';
import type { DkimAlgorithm } from '../../src/dkim/dkimKeys.js';
import { generateDkimKey } from '../../src/dkim/keyGeneration.js';

/**
 * Which DKIM signing the Postern under test does: none, one RSA-2048 key, one Ed25519 key, or
 * both at once (dual signing, RFC 8463 section 4: one signature per algorithm on every message).
 */
export type BenchDkim = 'none' | 'rsa' | 'ed25519' | 'dual';

export const BENCH_DKIM_MODES: readonly BenchDkim[] = ['none', 'rsa', 'ed25519', 'dual'];

/** The key algorithms a mode signs with, RSA first (the order the keyring signs in). */
export function algorithmsFor(mode: BenchDkim): DkimAlgorithm[] {
  switch (mode) {
    case 'none':
      return [];
    case 'rsa':
      return ['rsa'];
    case 'ed25519':
      return ['ed25519'];
    case 'dual':
      return ['rsa', 'ed25519'];
  }
}

/** How the report names a mode: the RSA key size is part of what was measured. */
export function describeBenchDkim(mode: BenchDkim): string {
  switch (mode) {
    case 'none':
      return 'none';
    case 'rsa':
      return 'RSA-2048';
    case 'ed25519':
      return 'Ed25519';
    case 'dual':
      return 'dual (RSA-2048 + Ed25519)';
  }
}

/**
 * Generates a fresh key per algorithm (RSA at the 2048 bits `postern dkim keygen` defaults to)
 * into `dir` as PKCS#8 PEM files, and returns the `dkim.keys` entries that sign mail From
 * `domain` with them. Fresh keys each run: nothing secret is kept in the repository.
 */
export async function writeBenchDkimKeys(dir: string, domain: string, algorithms: readonly DkimAlgorithm[]): Promise<DkimKeyConfig[]> {
  const keys: DkimKeyConfig[] = [];
  for (const algorithm of algorithms) {
    const generated = await generateDkimKey(algorithm);
    const keyFile = join(dir, `dkim-${algorithm}.pem`);
    await writeFile(keyFile, generated.pem, { mode: 0o600 });
    keys.push({ domain, selector: `bench-${algorithm}`, keyFile, active: true });
  }
  return keys;
}

/** The `dkim:` section of a Postern configuration file for these keys. */
export function dkimConfigLines(keys: readonly DkimKeyConfig[]): string[] {
  if (keys.length === 0) return [];
  return [
    'dkim:',
    '  keys:',
    ...keys.map((key) => `    - { domain: ${key.domain}, selector: ${key.selector}, keyFile: ${JSON.stringify(key.keyFile)} }`),
  ];
}
