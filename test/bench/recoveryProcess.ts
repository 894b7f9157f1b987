import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DeliveryQueue, type Transport } from '../../src/delivery/deliveryQueue.js';
import type { DeliveryAttempt } from '../../src/delivery/smarthostSender.js';
import { spoolLayout } from '../../src/spool/recovery.js';
import { Spool } from '../../src/spool/spool.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { fillSpool } from './spoolFixture.js';
import type { RecoveryJob, RecoveryMessage, RecoveryMeasurement } from './spoolRecovery.js';

/**
 * The spool recovery measurement, run as its own process (forked by spoolRecovery.ts with
 * --expose-gc) so its heap holds nothing but what the spool and the delivery queue build:
 * the bench's sink and load generator would blur the figures. It fills the spool directory,
 * then times Spool.open() (recovery and indexing) and DeliveryQueue.start() (scheduling every
 * queued message and starting the first attempts), with a forced collection before each heap
 * reading so only live objects count.
 */

const send = (message: RecoveryMessage) => process.send?.(message);
/** The last message: the process exits only once it has left, or it could be lost. */
const sendFinal = (message: RecoveryMessage, code: number) => {
  if (!process.send) process.exit(code);
  process.send(message, undefined, {}, () => process.exit(code));
};
const MiB = 1024 * 1024;
const DAY = 86_400_000;

function collect(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the recovery process needs --expose-gc for its heap figures');
  gc();
  gc();
  return process.memoryUsage();
}

async function measure(job: RecoveryJob): Promise<RecoveryMeasurement> {
  const writeStarted = performance.now();
  await fillSpool(job.dir, {
    messages: job.messages,
    size: job.size,
    from: job.from,
    recipientDomain: job.recipientDomain,
    hostname: job.hostname,
    onProgress: (written) => send({ type: 'progress', text: `writing the spool: ${written}/${job.messages} messages` }),
  });
  const writeMs = performance.now() - writeStarted;
  send({ type: 'progress', text: `opening a spool of ${job.messages} messages` });

  const before = collect();
  const openStarted = performance.now();
  const spool = await Spool.open({ dir: job.dir, logger: silentLogger(), clock: systemClock });
  const openMs = performance.now() - openStarted;
  const afterOpen = collect();

  // Attempts that never finish: what is measured is the scheduling, not a next hop.
  let attemptsStarted = 0;
  const transport: Transport = {
    plan: (recipients) => [
      {
        recipients,
        send: () => {
          attemptsStarted++;
          return new Promise<DeliveryAttempt>(() => undefined);
        },
      },
    ],
    close: () => undefined,
  };
  const queue = new DeliveryQueue({
    spool,
    transport,
    clock: systemClock,
    logger: silentLogger(),
    retry: { schedule: [60_000], maxAgeMs: 5 * DAY },
    concurrency: job.concurrency,
  });
  const startStarted = performance.now();
  queue.start();
  const startMs = performance.now() - startStarted;
  const afterStart = collect();

  const recovered = spool.stats().messages;
  const corrupt = (await readdir(spoolLayout(job.dir).corrupt)).length;
  // The generated files must be what the spool writes: every one indexed, none set aside.
  if (recovered !== job.messages || corrupt > 0) {
    throw new Error(`the spool recovered ${recovered} of ${job.messages} messages and moved ${corrupt} file(s) to ${join(job.dir, 'corrupt')}`);
  }
  const expectedAttempts = Math.min(job.messages, job.concurrency);
  if (attemptsStarted !== expectedAttempts) {
    throw new Error(`DeliveryQueue.start() began ${attemptsStarted} attempts, expected ${expectedAttempts}`);
  }
  await queue.stop(0);

  const mib = (bytes: number) => bytes / MiB;
  return {
    messages: job.messages,
    size: job.size,
    concurrency: job.concurrency,
    writeMs,
    openMs,
    startMs,
    attemptsStarted,
    heapBeforeMiB: mib(before.heapUsed),
    openHeapMiB: mib(afterOpen.heapUsed - before.heapUsed),
    startHeapMiB: mib(afterStart.heapUsed - afterOpen.heapUsed),
    heapAfterMiB: mib(afterStart.heapUsed),
    rssAfterMiB: mib(afterStart.rss),
  };
}

const job = JSON.parse(process.argv[2] ?? '{}') as RecoveryJob;
measure(job).then(
  (result) => sendFinal({ type: 'result', result }, 0),
  (err: unknown) => sendFinal({ type: 'error', message: err instanceof Error ? err.message : String(err) }, 1),
);
// The parent died or closed the channel: nobody is left to report to.
process.on('disconnect', () => process.exit(0));
