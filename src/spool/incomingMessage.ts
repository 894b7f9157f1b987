import type { FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { PosternError, errorMessage, isPosternError } from '../util/errors.js';
import type { Envelope } from './envelope.js';
import type { EightBitPlacement } from './eightBitContent.js';
import { removeQuietly } from './durableFs.js';

/** What the SMTP side knows about a message once DATA is complete. */
export interface CommitMeta {
  /** The reverse-path; '' for the null sender <>. */
  sender: string;
  recipients: string[];
  user?: string;
  clientIp?: string;
  smtpUtf8?: boolean;
  bodyType?: '7bit' | '8bitmime';
  /** Where the message, `headers` included, first holds a byte beyond ASCII. */
  eightBit?: EightBitPlacement;
  /** Header fields to send in front of the message (Received:, policy annotations); CRLF lines. */
  headers?: string;
}

/** The part of the spool that turns a finished data file into a queued message. */
export interface CommitTarget {
  /**
   * `dataSynced` settles once the data file is fsynced and closed; the spool writes the
   * envelope meanwhile and publishes the message only after both are on disk.
   */
  finishCommit(id: string, dataPath: string, size: number, meta: CommitMeta, dataSynced: Promise<void>): Promise<Envelope>;
}

type State = 'open' | 'committing' | 'committed' | 'failed' | 'discarded';

/**
 * A message being received: its bytes stream into a temp file that nobody else looks at.
 * Nothing is queued until commit() resolves; until then the message can be discarded, and
 * a crash leaves only a temp file that the next open removes.
 */
export class IncomingMessage {
  private state: State = 'open';
  private handle: FileHandle | undefined;
  private written = 0;
  /** Writes run one after another, so bytes land in the order they were given. */
  private lastWrite: Promise<void> = Promise.resolve();
  private failure: PosternError | undefined;
  private committing: Promise<unknown> | undefined;

  constructor(
    readonly id: string,
    private readonly dataPath: string,
    handle: FileHandle,
    private readonly target: CommitTarget,
  ) {
    this.handle = handle;
  }

  /**
   * The message as written so far, from its first byte, for policy rules at the data stage.
   * Waits for pending writes; the bytes are in the page cache whether or not fsynced yet.
   */
  async openData(): Promise<Readable> {
    await this.lastWrite;
    if (this.failure) throw this.failure;
    return createReadStream(this.dataPath);
  }

  /** Bytes written so far (the size cap is the SMTP side's to enforce). */
  get bytesWritten(): number {
    return this.written;
  }

  /**
   * Append a chunk. The promise settles once the chunk is with the kernel, so a caller that
   * awaits each write never holds more than one chunk in memory. A failed write (disk full,
   * I/O error) rejects with SPOOL_WRITE_FAILED and removes the temp file at once.
   */
  write(chunk: Buffer): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.notWritable());
    const next = this.lastWrite.then(() => this.writeNow(chunk));
    // Keep the chain alive after a failure; the failure itself is reported through `next`.
    this.lastWrite = next.catch(() => undefined);
    return next;
  }

  /**
   * A Writable over write(), for `pipeline(source, incoming.writable())`. Ending the stream
   * does not commit (that needs the envelope); destroying it does not discard: the owner
   * calls discard() when it gives up, and that is safe at any point.
   */
  writable(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.write(chunk).then(() => callback(), callback);
      },
    });
  }

  /**
   * fsync the data, then hand it to the spool, which records the envelope and makes the
   * message visible to delivery. Resolves only when all of it is on disk: only then may
   * the SMTP side answer 250 (RFC 5321 section 6.1: a server that accepted a message has
   * taken responsibility for it). Rejects with SPOOL_WRITE_FAILED, leaving nothing behind.
   */
  commit(meta: CommitMeta): Promise<Envelope> {
    if (this.state !== 'open') return Promise.reject(this.notWritable());
    if (meta.recipients.length === 0) {
      return Promise.reject(new RangeError(`Cannot commit message ${this.id}: it has no recipients`));
    }
    this.state = 'committing';
    const done = this.commitNow(meta);
    this.committing = done.catch(() => undefined);
    return done;
  }

  private async commitNow(meta: CommitMeta): Promise<Envelope> {
    try {
      await this.lastWrite;
      if (this.failure) throw this.failure;
      const handle = this.handle!;
      this.handle = undefined;
      const dataSynced = (async () => {
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      })();
      // Settled by finishCommit either way; this only keeps a rejection from going unobserved.
      dataSynced.catch(() => undefined);
      const envelope = await this.target.finishCommit(this.id, this.dataPath, this.written, meta, dataSynced);
      this.state = 'committed';
      return envelope;
    } catch (err) {
      this.state = 'failed';
      await this.release();
      throw isPosternError(err, 'SPOOL_WRITE_FAILED')
        ? err
        : new PosternError('SPOOL_WRITE_FAILED', `Cannot commit message ${this.id} to the spool: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Drop the message: close and remove the temp file. Safe to call more than once, after a
   * failed write or a failed commit; after a successful commit it does nothing (the message
   * belongs to the queue then). During a commit it waits for the commit to settle first.
   */
  async discard(): Promise<void> {
    if (this.committing) await this.committing;
    if (this.state === 'committed' || this.state === 'discarded') return;
    this.state = 'discarded';
    await this.lastWrite;
    await this.release();
  }

  private async writeNow(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    const handle = this.handle;
    if (!handle) throw this.notWritable();
    try {
      let offset = 0;
      // A write may take fewer bytes than offered; loop until the whole chunk is in.
      while (offset < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
      this.written += chunk.length;
    } catch (err) {
      this.failure = new PosternError('SPOOL_WRITE_FAILED', `Cannot write message ${this.id} to the spool: ${errorMessage(err)}`, {
        cause: err,
      });
      this.state = 'failed';
      await this.release();
      throw this.failure;
    }
  }

  /** Close the file (if still open) and remove the temp file (if still there). */
  private async release(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) {
      try {
        await handle.close();
      } catch {
        // Closing can report a delayed write error; the file is removed below either way.
      }
    }
    await removeQuietly(this.dataPath);
  }

  private notWritable(): Error {
    if (this.failure) return this.failure;
    if (this.state === 'failed') {
      return new PosternError('SPOOL_WRITE_FAILED', `Message ${this.id} could not be written to the spool`);
    }
    return new Error(`Message ${this.id} is ${this.state}; it can no longer be written or committed`);
  }
}
