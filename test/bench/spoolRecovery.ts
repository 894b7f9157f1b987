import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** What the recovery process is asked to do. */
export interface RecoveryJob {
  /** An empty directory for the spool; the caller removes it. */
  dir: string;
  messages: number;
  size: number;
  /** Delivery workers: how many attempts DeliveryQueue.start() begins at once. */
  concurrency: number;
  from: string;
  recipientDomain: string;
  hostname: string;
}

/** Times in milliseconds; heap figures are V8's heapUsed after a full collection, in MiB. */
export interface RecoveryMeasurement {
  messages: number;
  size: number;
  concurrency: number;
  /** Filling the spool (not part of recovery; shown so a slow disk explains itself). */
  writeMs: number;
  /** Spool.open(): clear tmp/, read and check every envelope, stat every message file, index. */
  openMs: number;
  /** DeliveryQueue.start(): every message into the due-time heap, the first attempts begun. */
  startMs: number;
  attemptsStarted: number;
  heapBeforeMiB: number;
  /** What the spool's index of the recovered messages holds. */
  openHeapMiB: number;
  /** What the delivery queue's schedule adds. */
  startHeapMiB: number;
  heapAfterMiB: number;
  rssAfterMiB: number;
}

/** What the recovery process tells its parent over IPC. */
export type RecoveryMessage =
  | { type: 'progress'; text: string }
  | { type: 'result'; result: RecoveryMeasurement }
  | { type: 'error'; message: string };

const REPO = resolve(import.meta.dirname, '../..');

/**
 * Fills a fresh spool directory under the system's temp dir (the disk Postern's bench spool
 * uses too) and measures its recovery in a process of its own (recoveryProcess.ts), then
 * removes the directory. The page cache is warm, as the files were just written: the figures
 * are the spool's own cost, not a cold disk's.
 */
export async function measureSpoolRecovery(
  job: Omit<RecoveryJob, 'dir'>,
  onProgress: (text: string) => void = () => undefined,
): Promise<RecoveryMeasurement> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-bench-spool-'));
  try {
    const child = fork(join(import.meta.dirname, 'recoveryProcess.ts'), [JSON.stringify({ ...job, dir } satisfies RecoveryJob)], {
      cwd: REPO,
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    return await new Promise<RecoveryMeasurement>((resolveResult, reject) => {
      let settled: RecoveryMessage | undefined;
      child.on('message', (message: RecoveryMessage) => {
        if (message.type === 'progress') onProgress(message.text);
        else settled = message;
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        if (settled?.type === 'result') resolveResult(settled.result);
        else if (settled?.type === 'error') reject(new Error(`spool recovery: ${settled.message}`));
        else reject(new Error(`the spool recovery process exited with ${code}: ${stderr.trim()}`));
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
