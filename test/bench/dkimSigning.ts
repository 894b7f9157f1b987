import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DkimKeyring, type DkimAlgorithm } from '../../src/dkim/dkimKeys.js';
import { DkimSigner } from '../../src/dkim/dkimSigner.js';
import { receivedHeader } from '../../src/smtp/receivedHeader.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { bodyText, headerBlock } from './benchMessage.js';
import { writeBenchDkimKeys } from './benchDkimKeys.js';
import { median, percentiles, round, type Percentiles } from './stats.js';

/** What the signing benchmark is asked to measure: every algorithm with every size. */
export interface SigningJob {
  algorithms: readonly DkimAlgorithm[];
  /** Bytes of each message file, header included. */
  sizes: readonly number[];
  /** Signatures measured per case, or ... */
  iterations?: number;
  /** ... as many as take about this long per case (estimated from the warm-up). */
  durationMs?: number;
  /** The sender (its domain is the signing domain), the recipients' domain and Postern's host name. */
  from: string;
  recipientDomain: string;
  hostname: string;
  onProgress?: (text: string) => void;
}

/** One algorithm with one message size. Times in milliseconds. */
export interface SigningCaseResult {
  algorithm: DkimAlgorithm;
  /** RSA modulus length; null for Ed25519. */
  keyBits: number | null;
  /** Bytes of the message file signed (Postern's Received header, signed too, comes on top). */
  size: number;
  warmupIterations: number;
  iterations: number;
  elapsedMs: number;
  signaturesPerSecond: number;
  /** This process's user + system CPU (process.cpuUsage) per signature, file reads included. */
  cpuMsPerSignature: number;
  /** Wall time of each sign() call: open and read the file, hash, sign. */
  msPerSignature: Percentiles | null;
}

export interface SigningMeasurement {
  cases: SigningCaseResult[];
}

/** A case measured by time still signs this often, so a very slow machine yields a figure. */
const MIN_ITERATIONS = 3;
/** The warm-up lets V8 compile the hot paths and fills the page cache with the message file. */
const WARMUP_SHARE = 0.1;
const MIN_WARMUP_ITERATIONS = 2;

/**
 * Measures DkimSigner.sign() in this process, without SMTP: for each algorithm a freshly
 * generated key, for each size a message file on disk that every call reads again through a
 * new stream, as the gateway's signer reads the spooled file before the commit. Each case
 * warms up first, then signs `iterations` times one after another (or as many as take about
 * `durationMs`), and reports signatures per second, CPU per signature and per-call latency.
 * Every call must return a DKIM-Signature, so a key that silently fails cannot pass for a
 * fast one.
 */
export async function measureDkimSigning(job: SigningJob): Promise<SigningMeasurement> {
  if (job.iterations === undefined && job.durationMs === undefined) throw new RangeError('measureDkimSigning needs iterations or durationMs');
  const domain = job.from.slice(job.from.lastIndexOf('@') + 1);
  const dir = await mkdtemp(join(tmpdir(), 'postern-bench-dkim-'));
  try {
    job.onProgress?.(`generating ${job.algorithms.join(' and ')} keys`);
    const keys = await writeBenchDkimKeys(dir, domain, job.algorithms);
    const messages = await writeMessages(dir, job);
    const cases: SigningCaseResult[] = [];
    for (const keyConfig of keys) {
      // One key per keyring, so each signature measured is one algorithm's, never a dual pair.
      const keyring = new DkimKeyring({ keys: [keyConfig], logger: silentLogger(), watch: false });
      try {
        const signer = new DkimSigner({ keyring, clock: systemClock, logger: silentLogger() });
        const key = keyring.keys[0]!;
        for (const message of messages) {
          job.onProgress?.(`${key.algorithm} ${message.size} bytes`);
          cases.push(await measureCase(signer, message, job, { algorithm: key.algorithm, keyBits: key.bits ?? null }));
        }
      } finally {
        keyring.close();
      }
    }
    return { cases };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface MessageFile {
  file: string;
  size: number;
  /** The From field's value, as the gateway hands it to the signer. */
  from: string;
  /** The Received header the gateway prepends, signed together with the file. */
  prepended: string;
}

/** One message file per size: the load generator's header block, then plain text up to the size. */
async function writeMessages(dir: string, job: SigningJob): Promise<MessageFile[]> {
  const files: MessageFile[] = [];
  for (const size of job.sizes) {
    const header = headerBlock({ runId: 'dkimsign', n: size, from: job.from, to: [`rcpt1@${job.recipientDomain}`], domain: job.hostname });
    const bytes = Buffer.from(header + bodyText(Math.max(size - header.length, 2)), 'latin1');
    const file = join(dir, `message-${size}.eml`);
    await writeFile(file, bytes);
    const from = /^From:[ \t]*(.*)$/m.exec(header)?.[1]?.trimEnd();
    if (from === undefined) throw new Error('the bench message has no From header');
    const prepended = receivedHeader({
      helo: job.hostname,
      clientAddress: '127.0.0.1',
      hostname: job.hostname,
      queueId: 'BENCHDKIMSIGN',
      tlsProtocol: 'TLSv1.3',
      tlsCipher: 'TLS_AES_256_GCM_SHA384',
      date: new Date(systemClock.now()),
    });
    files.push({ file, size: bytes.length, from, prepended });
  }
  return files;
}

async function measureCase(
  signer: DkimSigner,
  message: MessageFile,
  job: SigningJob,
  key: Pick<SigningCaseResult, 'algorithm' | 'keyBits'>,
): Promise<SigningCaseResult> {
  const signOnce = async (): Promise<number> => {
    const started = performance.now();
    const lines = await signer.sign({ from: [message.from], prepended: message.prepended, open: () => createReadStream(message.file) });
    const took = performance.now() - started;
    if (!lines.startsWith('DKIM-Signature:')) throw new Error(`the ${key.algorithm} key did not sign the ${message.size}-byte message`);
    return took;
  };

  const warmup: number[] = [];
  let iterations: number;
  if (job.iterations !== undefined) {
    iterations = job.iterations;
    const count = Math.max(1, Math.ceil(iterations * WARMUP_SHARE));
    for (let i = 0; i < count; i++) warmup.push(await signOnce());
  } else {
    const budget = job.durationMs! * WARMUP_SHARE;
    const started = performance.now();
    while (warmup.length < MIN_WARMUP_ITERATIONS || performance.now() - started < budget) warmup.push(await signOnce());
    // The median, not the mean: the first calls pay for compilation and are not what follows.
    iterations = Math.max(MIN_ITERATIONS, Math.round(job.durationMs! / median(warmup)!));
  }

  const times: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) times.push(await signOnce());
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const p = percentiles(times);
  return {
    ...key,
    size: message.size,
    warmupIterations: warmup.length,
    iterations,
    elapsedMs: round(elapsedMs, 0),
    signaturesPerSecond: round(iterations / (elapsedMs / 1000), 1),
    cpuMsPerSignature: round((cpu.user + cpu.system) / 1000 / iterations, 3),
    msPerSignature: p && { p50: round(p.p50, 3), p95: round(p.p95, 3), p99: round(p.p99, 3) },
  };
}
