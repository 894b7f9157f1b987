import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Clock } from '../util/clock.js';
import { PosternError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { DirectorySync } from '../util/directorySync.js';
import { removeIfPresent, removeQuietly, replaceFileAtomically, writeNewFileSynced } from './durableFs.js';
import { copyEnvelope, serializeEnvelope, validateEnvelope, type Envelope } from './envelope.js';
import { IncomingMessage, type CommitMeta, type CommitTarget } from './incomingMessage.js';
import { QueueIdGenerator } from './queueId.js';
import { recoverSpool, spoolLayout, type SpoolLayout } from './recovery.js';

export type { CommitMeta } from './incomingMessage.js';
export { IncomingMessage } from './incomingMessage.js';

export interface SpoolOptions {
  /** Absolute path of the spool directory; created if missing. */
  dir: string;
  logger: Logger;
  clock: Clock;
  /** Randomness for queue IDs; crypto.randomBytes unless a test pins it. */
  random?: (size: number) => Buffer;
}

export interface SpoolStats {
  messages: number;
  bytes: number;
  oldestReceivedAt?: number;
}

export type CommittedListener = (envelope: Envelope) => void;

/**
 * The durable queue on disk, the only hand-off between the SMTP side and delivery.
 *
 * Layout: `tmp/` holds messages being received and envelope rewrites in progress;
 * `queue/<ID>.eml` is a message exactly as accepted and `queue/<ID>.json` its envelope and
 * delivery state; `corrupt/` keeps records that could not be read, for a human to look at.
 * The rename of the envelope into `queue/` is the commit point: a message file without one
 * was never acknowledged and is removed at the next open.
 *
 * The in-memory index mirrors `queue/` and changes only after the disk did.
 */
export class Spool implements CommitTarget {
  private readonly index = new Map<string, Envelope>();
  private readonly listeners = new Set<CommittedListener>();
  /** Per-message chains, so an update and a remove of one message never interleave. */
  private readonly locks = new Map<string, Promise<void>>();
  private readonly random: (size: number) => Buffer;
  private readonly ids: QueueIdGenerator;
  /** One fsync of queue/ serves every commit, update and removal made before it began. */
  private readonly queueSync: DirectorySync;

  private constructor(
    private readonly layout: SpoolLayout,
    private readonly logger: Logger,
    private readonly clock: Clock,
    random: ((size: number) => Buffer) | undefined,
  ) {
    this.random = random ?? randomBytes;
    this.queueSync = new DirectorySync(layout.queue);
    this.ids = new QueueIdGenerator(clock, this.random);
  }

  /**
   * Create the directories if needed, then recover: remove leftover temp files and message
   * files that never got an envelope, move unreadable envelopes aside, and index every
   * committed message so delivery picks it up again.
   */
  static async open(options: SpoolOptions): Promise<Spool> {
    const layout = spoolLayout(options.dir);
    try {
      for (const dir of [layout.root, layout.tmp, layout.queue, layout.corrupt]) await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new PosternError('SPOOL_WRITE_FAILED', `Cannot open spool ${options.dir}: ${errorMessage(err)}`, { cause: err });
    }
    const spool = new Spool(layout, options.logger, options.clock, options.random);
    let recovered: Envelope[];
    try {
      recovered = await recoverSpool(layout, options.logger);
    } catch (err) {
      throw new PosternError('SPOOL_WRITE_FAILED', `Cannot recover spool ${options.dir}: ${errorMessage(err)}`, { cause: err });
    }
    for (const envelope of recovered) spool.index.set(envelope.id, envelope);
    if (recovered.length > 0) options.logger.info({ spool: options.dir, messages: recovered.length }, 'spool recovered queued messages');
    return spool;
  }

  /**
   * A fresh queue ID for a message Postern writes itself (a delivery status notification),
   * so the ID can be recorded before the message is queued (see enqueue).
   */
  reserveId(): string {
    return this.ids.next();
  }

  /**
   * Queue a message Postern wrote itself under an ID from reserveId(), with the same
   * durability as a received one. Queuing an ID that is already queued does nothing and
   * returns false: a restart that repeats the step after a crash must not queue it twice.
   */
  async enqueue(id: string, meta: CommitMeta, data: Buffer): Promise<boolean> {
    if (this.index.has(id)) return false;
    const incoming = await this.createIncoming(id);
    try {
      await incoming.write(data);
      await incoming.commit(meta);
    } catch (err) {
      await incoming.discard();
      throw err;
    }
    return true;
  }

  /** Start receiving a message. Rejects with SPOOL_WRITE_FAILED when the temp file cannot be created. */
  async createIncoming(reservedId?: string): Promise<IncomingMessage> {
    let lastError: unknown;
    // A clash needs two IDs in the same millisecond with the same 32 random bits; retrying
    // a couple of times turns "astronomically unlikely" into "never".
    for (let tries = 0; tries < 3; tries++) {
      const id = reservedId ?? this.ids.next();
      if (this.index.has(id)) continue;
      const dataPath = join(this.layout.tmp, `${id}.eml`);
      let handle: FileHandle;
      try {
        handle = await open(dataPath, 'wx', 0o600);
      } catch (err) {
        lastError = err;
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        break;
      }
      return new IncomingMessage(id, dataPath, handle, this);
    }
    throw new PosternError('SPOOL_WRITE_FAILED', `Cannot create a message file in ${this.layout.tmp}: ${errorMessage(lastError ?? 'queue ID clash')}`, {
      cause: lastError,
    });
  }

  /**
   * Called by IncomingMessage once its data file is fsynced and closed. Order matters: the
   * envelope is written and fsynced first, then the message file is renamed into the queue,
   * then the envelope (the commit point), then the directory is fsynced. Any failure undoes
   * every step, so the message is either fully queued or not at all.
   * @internal
   */
  async finishCommit(id: string, dataPath: string, size: number, meta: CommitMeta, dataSynced: Promise<void>): Promise<Envelope> {
    const now = this.clock.now();
    const envelope: Envelope = {
      version: 1,
      id,
      receivedAt: now,
      sender: meta.sender,
      recipients: meta.recipients.map((address) => ({ address, status: 'pending', attempts: 0 })),
      size,
      ...(meta.user !== undefined && { user: meta.user }),
      ...(meta.clientIp !== undefined && { clientIp: meta.clientIp }),
      ...(meta.smtpUtf8 !== undefined && { smtpUtf8: meta.smtpUtf8 }),
      ...(meta.bodyType !== undefined && { bodyType: meta.bodyType }),
      ...(meta.eightBit !== undefined && { eightBit: meta.eightBit }),
      ...(meta.headers ? { headers: meta.headers } : {}),
      attempts: 0,
      nextAttemptAt: now,
    };
    const envelopeTemp = join(this.layout.tmp, `${id}.json`);
    const messagePath = this.messagePath(id);
    const envelopePath = this.envelopePath(id);
    try {
      // The data and the envelope are fsynced in parallel; nothing is visible until both are.
      const [synced, written] = await Promise.allSettled([dataSynced, writeNewFileSynced(envelopeTemp, serializeEnvelope(envelope))]);
      if (synced.status === 'rejected') throw synced.reason;
      if (written.status === 'rejected') throw written.reason;
      await rename(dataPath, messagePath);
      await rename(envelopeTemp, envelopePath);
      await this.queueSync.sync();
    } catch (err) {
      await removeQuietly(envelopePath);
      await removeQuietly(messagePath);
      await removeQuietly(envelopeTemp);
      await removeQuietly(dataPath);
      try {
        await this.queueSync.sync();
      } catch {
        // The directory is already failing us; the removals above are what matter.
      }
      throw new PosternError('SPOOL_WRITE_FAILED', `Cannot commit message ${id} to the spool: ${errorMessage(err)}`, { cause: err });
    }
    this.index.set(id, envelope);
    this.logger.debug({ queueId: id, size, recipients: envelope.recipients.length }, 'message committed');
    for (const listener of this.listeners) {
      try {
        listener(copyEnvelope(envelope));
      } catch (err) {
        this.logger.error({ queueId: id, err: errorMessage(err) }, 'spool commit listener failed');
      }
    }
    return copyEnvelope(envelope);
  }

  /** Every committed message, oldest first (IDs sort by time). Copies: changing them changes nothing. */
  list(): Envelope[] {
    return [...this.index.keys()].sort().map((id) => copyEnvelope(this.index.get(id)!));
  }

  /**
   * The index itself, in commit order, without copying: for a scan that runs after every
   * delivery attempt, where copying every envelope each time would grow with the queue.
   * Read only, and not to be kept across an await.
   */
  queued(): IterableIterator<Readonly<Envelope>> {
    return this.index.values();
  }

  get(id: string): Envelope | undefined {
    const envelope = this.index.get(id);
    return envelope && copyEnvelope(envelope);
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  messagePath(id: string): string {
    return join(this.layout.queue, `${id}.eml`);
  }

  /** The message exactly as it was accepted. Throws MESSAGE_NOT_FOUND for an unknown ID. */
  openMessage(id: string): Readable {
    const envelope = this.index.get(id);
    if (!envelope) throw new PosternError('MESSAGE_NOT_FOUND', `Message ${id} is not in the spool`);
    const file = createReadStream(this.messagePath(id));
    if (!envelope.headers) return file;
    const headers = Buffer.from(envelope.headers);
    return Readable.from(
      (async function* () {
        yield headers;
        yield* file;
      })(),
      { objectMode: false },
    );
  }

  /**
   * Record a new delivery state for a queued message: temp file, fsync, rename over the old
   * record, fsync the directory. A crash leaves the old state or the new one, never a torn
   * record. Rejects with MESSAGE_NOT_FOUND for a message no longer queued (removed in the
   * meantime), SPOOL_WRITE_FAILED when the disk refuses.
   */
  async update(envelope: Envelope): Promise<void> {
    const record = copyEnvelope(validateEnvelope(envelope));
    await this.withLock(record.id, async () => {
      if (!this.index.has(record.id)) {
        throw new PosternError('MESSAGE_NOT_FOUND', `Cannot update message ${record.id}: it is not in the spool`);
      }
      const temp = join(this.layout.tmp, `${record.id}.${this.random(4).toString('hex')}.json`);
      try {
        await replaceFileAtomically(this.envelopePath(record.id), temp, serializeEnvelope(record), () => this.queueSync.sync());
      } catch (err) {
        throw new PosternError('SPOOL_WRITE_FAILED', `Cannot update message ${record.id} in the spool: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      this.index.set(record.id, record);
    });
  }

  /**
   * Take a message out of the queue: the envelope goes first, so a crash in between leaves
   * an orphan message file (removed at the next open), never an envelope without a message.
   * Removing an unknown ID does nothing.
   */
  async remove(id: string): Promise<void> {
    await this.withLock(id, async () => {
      if (!this.index.has(id)) return;
      try {
        await removeIfPresent(this.envelopePath(id));
      } catch (err) {
        throw new PosternError('SPOOL_WRITE_FAILED', `Cannot remove message ${id} from the spool: ${errorMessage(err)}`, { cause: err });
      }
      // From here on the message is no longer queued, whatever happens to its data file.
      this.index.delete(id);
      try {
        await removeIfPresent(this.messagePath(id));
        await this.queueSync.sync();
      } catch (err) {
        this.logger.warn({ queueId: id, err: errorMessage(err) }, 'message file left behind; it is removed at the next spool open');
      }
    });
  }

  /** Called with each message as soon as it is committed. Returns the unsubscribe function. */
  onCommitted(listener: CommittedListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  stats(): SpoolStats {
    let bytes = 0;
    let oldestReceivedAt: number | undefined;
    for (const envelope of this.index.values()) {
      bytes += envelope.size;
      if (oldestReceivedAt === undefined || envelope.receivedAt < oldestReceivedAt) oldestReceivedAt = envelope.receivedAt;
    }
    return { messages: this.index.size, bytes, ...(oldestReceivedAt !== undefined && { oldestReceivedAt }) };
  }

  private envelopePath(id: string): string {
    return join(this.layout.queue, `${id}.json`);
  }

  private async withLock(id: string, task: () => Promise<void>): Promise<void> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(id, settled);
    try {
      await run;
    } finally {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    }
  }
}
