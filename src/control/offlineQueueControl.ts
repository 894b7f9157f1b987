import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RETURNED_BY_OPERATOR, type QueueControl } from '../delivery/queueControl.js';
import { parseEnvelope, type Envelope, type RecipientState } from '../spool/envelope.js';
import { isQueueId } from '../spool/queueId.js';
import { spoolLayout } from '../spool/recovery.js';
import type { Spool } from '../spool/spool.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';

export interface OfflineQueueControlOptions {
  /** The spool, opened by this process; no gateway may be running on it. */
  spool: Spool;
  clock: Clock;
}

/**
 * The queue operations for when no gateway runs (Postfix's postsuper): they change the spool
 * records directly, and the gateway acts on them when it next starts, as it does on whatever
 * state it finds. With a gateway running, the same operations must go through it instead
 * (the control socket), because its delivery workers hold messages this process cannot see.
 */
export class OfflineQueueControl implements QueueControl {
  private readonly spool: Spool;
  private readonly clock: Clock;

  constructor(options: OfflineQueueControlOptions) {
    this.spool = options.spool;
    this.clock = options.clock;
  }

  list(): Envelope[] {
    return this.spool.list();
  }

  get(id: string): Envelope | undefined {
    return this.spool.get(id);
  }

  async retry(id?: string): Promise<number> {
    const targets = id === undefined ? this.spool.list() : [this.spool.get(id)].filter((e): e is Envelope => e !== undefined);
    const now = this.clock.now();
    for (const envelope of targets) {
      // Already due: rewriting the record would change nothing the gateway reads.
      if (envelope.nextAttemptAt <= now) continue;
      await this.spool.update({ ...envelope, nextAttemptAt: now });
    }
    return targets.length;
  }

  async delete(id: string): Promise<boolean> {
    if (!this.spool.has(id)) return false;
    await this.spool.remove(id);
    return true;
  }

  /**
   * Every pending recipient is recorded as failed, as an expiry would. No notification is
   * written here: the gateway's delivery queue reports failed recipients without `dsnSent`
   * when it starts, so the sender hears of it exactly once, through the usual path.
   */
  async bounce(id: string): Promise<boolean> {
    const envelope = this.spool.get(id);
    if (!envelope) return false;
    if (!envelope.recipients.some((r) => r.status === 'pending')) return true;
    const now = this.clock.now();
    const recipients = envelope.recipients.map((recipient): RecipientState => {
      if (recipient.status !== 'pending') return recipient;
      // The host of an earlier deferral did not give this reply; a DSN must not name it as
      // the Remote-MTA (RFC 3464 section 2.3.5).
      const { remoteMta: _dropped, ...rest } = recipient;
      return { ...rest, status: 'failed', lastReply: RETURNED_BY_OPERATOR, lastAttemptAt: now };
    });
    await this.spool.update({ ...envelope, recipients, nextAttemptAt: now });
    return true;
  }
}

export interface QueueSnapshot {
  /** Readable envelopes, oldest first. */
  envelopes: Envelope[];
  /** Envelope files that could not be read, with why; a gateway moves these aside when it starts. */
  unreadable: Array<{ file: string; reason: string }>;
}

/**
 * The queued envelopes as they are on disk, read without changing anything. Opening a Spool
 * recovers it (removes temp files, moves bad records aside), which a command that only looks
 * (`postern queue list`, like Postfix's mailq) must never do: another process may be writing.
 * A spool directory that does not exist yet holds no messages.
 */
export async function readQueueSnapshot(spoolDir: string): Promise<QueueSnapshot> {
  const queueDir = spoolLayout(spoolDir).queue;
  let names: string[];
  try {
    names = await readdir(queueDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { envelopes: [], unreadable: [] };
    throw err;
  }
  const envelopes: Envelope[] = [];
  const unreadable: QueueSnapshot['unreadable'] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -'.json'.length);
    try {
      const envelope = await readEnvelopeFile(queueDir, id);
      if (envelope) envelopes.push(envelope);
    } catch (err) {
      unreadable.push({ file: name, reason: errorMessage(err) });
    }
  }
  return { envelopes, unreadable };
}

/** One queued envelope, read without changing anything; undefined when it is not queued. */
export async function readQueuedEnvelope(spoolDir: string, id: string): Promise<Envelope | undefined> {
  if (!isQueueId(id)) return undefined;
  return readEnvelopeFile(spoolLayout(spoolDir).queue, id);
}

/**
 * `queue/<id>.json`, checked as recovery would check it. Undefined when the file is gone
 * (delivered or deleted since the caller looked); throws an Error naming the problem.
 */
async function readEnvelopeFile(queueDir: string, id: string): Promise<Envelope | undefined> {
  if (!isQueueId(id)) throw new Error('the file name is not a queue ID');
  let text: string;
  try {
    text = await readFile(join(queueDir, `${id}.json`), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const envelope = parseEnvelope(text);
  if (envelope.id !== id) throw new Error(`the envelope names message ${envelope.id}`);
  try {
    await access(join(queueDir, `${id}.eml`));
  } catch {
    throw new Error('the message file is missing');
  }
  return envelope;
}
