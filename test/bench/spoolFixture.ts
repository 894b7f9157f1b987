import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { receivedHeader } from '../../src/smtp/receivedHeader.js';
import { serializeEnvelope, type Envelope } from '../../src/spool/envelope.js';
import { spoolLayout } from '../../src/spool/recovery.js';
import { Spool } from '../../src/spool/spool.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { bodyText, headerBlock } from './benchMessage.js';

export interface SpoolFill {
  /** Queued messages to leave in the directory. */
  messages: number;
  /** Bytes of each message file. */
  size: number;
  /** The sender, the recipients' domain and the host name the messages were "accepted" by. */
  from: string;
  recipientDomain: string;
  hostname: string;
  /** Called now and then with the number of messages written so far. */
  onProgress?: (written: number) => void;
}

/** Files written at once; enough to keep the disk busy without a flood of open descriptors. */
const WRITE_PARALLELISM = 64;
const PROGRESS_EVERY = 5000;

/**
 * Leaves `dir` holding `messages` queued messages exactly as the spool leaves them after a
 * commit, as a gateway stopped with a full queue would. The first is committed through the
 * spool's own API (temp file, fsync, renames); the rest are written in bulk after its model:
 * the same message file bytes, the same envelope with its own queue ID (from the spool's
 * generator), times and Received header, serialized by the spool's serializeEnvelope. The bulk
 * writes skip the fsyncs, which change when the bytes reach the disk, not what the files hold,
 * and would make filling a 100,000-message spool take minutes.
 */
export async function fillSpool(dir: string, fill: SpoolFill): Promise<void> {
  if (!Number.isSafeInteger(fill.messages) || fill.messages < 1) throw new RangeError(`a spool fill needs at least 1 message, got ${fill.messages}`);
  const recipient = `rcpt1@${fill.recipientDomain}`;
  const header = headerBlock({ runId: 'recovery', n: 0, from: fill.from, to: [recipient], domain: fill.hostname });
  const message = Buffer.from(header + bodyText(Math.max(fill.size - header.length, 2)), 'latin1');
  const trace = (id: string, at: number) =>
    receivedHeader({
      helo: fill.hostname,
      clientAddress: '127.0.0.1',
      hostname: fill.hostname,
      queueId: id,
      tlsProtocol: 'TLSv1.3',
      tlsCipher: 'TLS_AES_256_GCM_SHA384',
      date: new Date(at),
    });

  const spool = await Spool.open({ dir, logger: silentLogger(), clock: systemClock });
  const incoming = await spool.createIncoming();
  await incoming.write(message);
  const model = await incoming.commit({
    headers: trace(incoming.id, systemClock.now()),
    sender: fill.from,
    recipients: [recipient],
    user: 'bench',
    clientIp: '127.0.0.1',
    bodyType: '7bit',
  });

  const { queue } = spoolLayout(dir);
  let written = 1;
  const writeOne = async (): Promise<void> => {
    const id = spool.reserveId();
    const now = systemClock.now();
    const envelope: Envelope = { ...model, id, receivedAt: now, nextAttemptAt: now, headers: trace(id, now), recipients: model.recipients.map((r) => ({ ...r })) };
    await writeFile(join(queue, `${id}.eml`), message, { flag: 'wx', mode: 0o600 });
    await writeFile(join(queue, `${id}.json`), serializeEnvelope(envelope), { flag: 'wx', mode: 0o600 });
    written++;
    if (written % PROGRESS_EVERY === 0) fill.onProgress?.(written);
  };
  let started = 1;
  const worker = async () => {
    while (started < fill.messages) {
      started++;
      await writeOne();
    }
  };
  await Promise.all(Array.from({ length: WRITE_PARALLELISM }, worker));
  fill.onProgress?.(written);
}
