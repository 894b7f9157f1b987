import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DKIMResult, DNSResolver } from 'mailauth';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { createNodeResolver } from '../../src/dns/nodeResolver.js';
import type { DnsServer } from './dnsServer.js';

/** One signature's verdict. */
export interface DkimVerdict {
  domain: string;
  selector: string;
  algorithm: string;
  valid: boolean;
  error: string | null;
}

/**
 * Debian's python3-dkim lives in the system interpreter's dist-packages, which another python3
 * earlier on PATH (pyenv, a virtualenv) does not see. POSTERN_TEST_PYTHON overrides.
 */
function systemPython(): string {
  if (process.env.POSTERN_TEST_PYTHON) return process.env.POSTERN_TEST_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/**
 * Every DKIM-Signature of `message`, top first, as dkimpy (python3-dkim) judges it, keys
 * fetched from `dns` (the dnsmasq of test/helpers/dnsServer.ts).
 */
export async function verifyWithDkimpy(message: Buffer | string, dns: DnsServer): Promise<DkimVerdict[]> {
  const child = spawn(systemPython(), [join(import.meta.dirname, 'dkimVerifier.py'), '--server', '127.0.0.1', '--port', String(dns.port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`python3 could not be started (apt-get install python3-dkim): ${err.message}`)));
    child.once('close', (code) => resolve(code));
  });
  child.stdin.on('error', () => undefined); // a verifier that died early is reported below
  child.stdin.end(message);
  const code = await exit;
  if (code !== 0) throw new Error(`dkimVerifier.py exited with ${code}: ${stderr.trim()}`);
  return (JSON.parse(stdout) as { signatures: DkimVerdict[] }).signatures;
}

/** The same, judged by mailauth's verifier: a second opinion. */
export async function verifyWithMailauth(message: Buffer | string, dns: DnsServer): Promise<DkimVerdict[]> {
  const resolver = createNodeResolver({ servers: [dns.server] }) as DNSResolver;
  const result = await dkimVerify(Buffer.from(message), { resolver });
  // The declarations name the algorithm `algorithm`; the verifier fills `algo`.
  return result.results.map((r: DKIMResult & { algo?: string }) => ({
    domain: r.signingDomain,
    selector: r.selector ?? '',
    algorithm: r.algo ?? r.algorithm ?? '',
    valid: r.status.result === 'pass',
    error: r.status.result === 'pass' ? null : `${r.status.result}${r.status.comment ? `: ${r.status.comment}` : ''}`,
  }));
}
