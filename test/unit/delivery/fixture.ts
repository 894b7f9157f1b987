import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryQueue, type AttemptReport } from '../../../src/delivery/deliveryQueue.js';
import { SenderNotifier } from '../../../src/delivery/senderNotifier.js';
import { SmarthostSender, type RelayTarget as SmarthostConfig } from '../../../src/delivery/smarthostSender.js';
import type { Envelope } from '../../../src/spool/envelope.js';
import { Spool, type CommitMeta } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger, type Logger } from '../../../src/util/logger.js';

export const PLAIN_SMARTHOST: Omit<SmarthostConfig, 'port'> = { host: '127.0.0.1', tls: 'none', verifyCertificate: true };

/** A spool in a temp dir, a manual clock, and a delivery queue to a smarthost on loopback. */
export interface DeliveryFixture {
  dir: string;
  clock: ManualClock;
  spool: Spool;
  queue: DeliveryQueue;
  /** Put a message into the spool the way the SMTP side does. */
  commit(data: Buffer | string, meta: CommitMeta): Promise<Envelope>;
  /** Resolves with the report of the next attempt that finishes. */
  nextAttempt(): Promise<AttemptReport>;
  close(): Promise<void>;
  /** Stop delivering and keep the spool directory (to open it again, as after a restart). */
  halt(): Promise<void>;
}

export async function deliveryFixture(options: {
  smarthost: SmarthostConfig;
  schedule?: number[];
  maxAgeMs?: number;
  concurrency?: number;
  start?: boolean;
  logger?: Logger;
  /** Send bounces (and delay warnings after this many ms, when given) through the same smarthost. */
  notify?: { delayWarningMs?: number };
  /** Reuse a spool directory (a restart). */
  dir?: string;
}): Promise<DeliveryFixture> {
  const logger = options.logger ?? silentLogger();
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'postern-delivery-')));
  const clock = new ManualClock();
  const spool = await Spool.open({ dir, logger: silentLogger(), clock });
  const sender = new SmarthostSender(options.smarthost, logger, { clientHostname: 'relay.test' });
  const maxAgeMs = options.maxAgeMs ?? 5 * 24 * 3_600_000;
  const queue = new DeliveryQueue({
    spool,
    sender,
    ...(options.notify && {
      notifier: new SenderNotifier({ spool, hostname: 'relay.test', delayWarningMs: options.notify.delayWarningMs ?? 0, maxAgeMs, logger }),
    }),
    clock,
    logger,
    retry: { schedule: options.schedule ?? [50, 100], maxAgeMs },
    concurrency: options.concurrency ?? 2,
  });
  if (options.start !== false) queue.start();
  return {
    dir,
    clock,
    spool,
    queue,
    async commit(data, meta) {
      const incoming = await spool.createIncoming();
      await incoming.write(Buffer.isBuffer(data) ? data : Buffer.from(data));
      return incoming.commit(meta);
    },
    nextAttempt() {
      return new Promise((resolve) => {
        const unsubscribe = queue.onAttempt((report) => {
          unsubscribe();
          resolve(report);
        });
      });
    },
    async halt() {
      await queue.stop(2000);
    },
    async close() {
      await queue.stop(2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
