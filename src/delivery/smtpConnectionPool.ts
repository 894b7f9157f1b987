import type { Readable } from 'node:stream';
import type { NodemailerError } from 'nodemailer';
import { EENVELOPE, EMESSAGE, isTransientError } from 'nodemailer/lib/errors';
import SMTPConnection, { type SMTPConnectionOptions, type SMTPConnectionSendInfo, type SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import type { Logger } from '../util/logger.js';
import { missingExtension, withSmtpUtf8, type TransferNeeds } from './smtpExtensions.js';

export interface SmtpConnectionPoolOptions {
  /** How to reach and talk to the server; every new nodemailer SMTPConnection gets these. */
  connection: SMTPConnectionOptions;
  /**
   * Log in with these on every new connection. Login is attempted even when the server does
   * not advertise AUTH: such a server then fails the connection, instead of the message
   * going out unauthenticated.
   */
  auth?: { user: string; pass: string };
  /** Connections open (or being opened) at once, at most. */
  maxConnections: number;
  /** A connection idle this long says QUIT; servers drop idle sessions anyway (RFC 5321 section 4.5.3.2.7). */
  idleTimeoutMs?: number;
  /** Transactions on one connection before it is replaced, bounding how long one session lives. */
  maxMessagesPerConnection?: number;
  logger: Logger;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/**
 * The largest reply a next hop may send (nodemailer's maxResponseSize, not in its types);
 * nodemailer's own 1 MiB lets a hostile server park a megabyte per connection. A reply over
 * this ends the session as an error: the message waits for another attempt.
 */
const REPLY_SIZE_LIMIT = { maxResponseSize: 64 * 1024 } as Partial<SMTPConnectionOptions>;
const NO_NEEDS: TransferNeeds = { eightBitMime: false, utf8Headers: false };
const DEFAULT_MAX_MESSAGES_PER_CONNECTION = 100;
/** How long a connection that said QUIT may take to close before its socket is destroyed. */
const QUIT_GRACE_MS = 5_000;

/**
 * connecting: being opened for a caller; busy: one caller owns it; idle: waiting for a message;
 * resetting: RSET in flight after a refusal; quitting: QUIT sent; gone: closed, out of the pool.
 */
type ConnectionState = 'connecting' | 'busy' | 'idle' | 'resetting' | 'quitting' | 'gone';

interface PooledConnection {
  readonly id: number;
  readonly smtp: SMTPConnection;
  state: ConnectionState;
  /** Transactions finished on it, accepted or not. */
  transactions: number;
  timer: NodeJS.Timeout | undefined;
  /** Settles the refused send waiting on this connection's RSET. */
  resetDone?: (() => void) | undefined;
}

/** What a waiting caller is handed: an idle connection, or a free slot to open one in. */
type Grant = { connection: PooledConnection } | { slot: true };

interface Waiter {
  resolve(grant: Grant): void;
  reject(err: Error): void;
}

type TryResult =
  | { ok: true; info: SMTPConnectionSendInfo }
  | { ok: false; err: NodemailerError; retryOnFreshConnection: boolean };

/**
 * A small pool of nodemailer SMTPConnections to one server, for relaying messages as they are.
 *
 * It speaks to nodemailer's connection class directly rather than through createTransport():
 * that path builds a MIME tree, a Message-ID and normalised headers for every message, work a
 * relay of already-formed messages throws away.
 *
 * Connections are reused while they are healthy: a connection that errored, was closed, or got
 * a 421 (RFC 5321 section 3.8) is dropped; after a refused envelope or message it is RSET
 * (RFC 5321 section 4.1.1.5) and reused. A message that fails on a reused connection before a
 * byte of it was sent (the server dropped the session while it sat idle) is tried once more
 * on a fresh connection.
 */
export class SmtpConnectionPool {
  private readonly connections = new Set<PooledConnection>();
  /** Most recently used last, so the surplus at the front is what times out. */
  private readonly idle: PooledConnection[] = [];
  private readonly waiting: Waiter[] = [];
  /** Slots promised to a caller that has not opened its connection yet. */
  private reservedSlots = 0;
  private nextId = 1;
  private closed = false;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly maxMessagesPerConnection: number;

  constructor(private readonly options: SmtpConnectionPoolOptions) {
    this.maxConnections = Math.max(1, options.maxConnections);
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxMessagesPerConnection = options.maxMessagesPerConnection ?? DEFAULT_MAX_MESSAGES_PER_CONNECTION;
  }

  /** Connections open or being opened, for observability and tests. */
  get size(): number {
    return this.connections.size;
  }

  /** No connection, no caller waiting for one and none about to open one: safe to drop. */
  get unused(): boolean {
    return this.connections.size === 0 && this.waiting.length === 0 && this.reservedSlots === 0;
  }

  /**
   * Sends one message. `openMessage` is called for each try (at most two), after a connection
   * is ready; every stream it returns is destroyed once its try is over.
   * Rejects with the nodemailer error of the last try.
   */
  async send(envelope: SMTPEnvelope, openMessage: () => Readable, needs: TransferNeeds = NO_NEEDS): Promise<SMTPConnectionSendInfo> {
    const lease = await this.acquire();
    const result = await this.tryOn(lease.connection, envelope, openMessage, lease.reused, needs);
    if (result.ok) return result.info;
    if (!result.retryOnFreshConnection) throw result.err;

    // tryOn() kept the failed connection's slot for this retry (see there).
    this.reservedSlots -= 1;
    if (this.closed) {
      this.slotFreed();
      throw result.err;
    }
    this.options.logger.debug({ err: result.err.message }, 'smarthost dropped a reused connection before the message; retrying on a new one');
    const fresh = await this.open();
    const second = await this.tryOn(fresh, envelope, openMessage, false, needs);
    if (second.ok) return second.info;
    throw second.err;
  }

  /** QUIT idle connections now and busy ones once their message is done; queued sends fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(poolClosedError());
    for (const connection of [...this.idle]) this.retire(connection);
  }

  private async acquire(): Promise<{ connection: PooledConnection; reused: boolean }> {
    if (this.closed) throw poolClosedError();
    const idle = this.takeIdle();
    if (idle) return { connection: idle, reused: true };
    if (this.connections.size + this.reservedSlots < this.maxConnections) {
      return { connection: await this.open(), reused: false };
    }
    const grant = await new Promise<Grant>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if ('connection' in grant) return { connection: grant.connection, reused: true };
    this.reservedSlots -= 1;
    if (this.closed) {
      this.slotFreed();
      throw poolClosedError();
    }
    return { connection: await this.open(), reused: false };
  }

  private takeIdle(): PooledConnection | undefined {
    for (let connection = this.idle.pop(); connection; connection = this.idle.pop()) {
      if (connection.smtp.destroyed) {
        this.discard(connection);
        continue;
      }
      clearTimeout(connection.timer);
      connection.timer = undefined;
      connection.state = 'busy';
      return connection;
    }
    return undefined;
  }

  /**
   * Opens, greets (EHLO, STARTTLS as configured) and logs in. The connection takes its slot
   * synchronously, before the returned promise settles; a failure frees it again.
   */
  private open(): Promise<PooledConnection> {
    const smtp = new SMTPConnection({ ...this.options.connection, ...REPLY_SIZE_LIMIT });
    const connection: PooledConnection = { id: this.nextId++, smtp, state: 'connecting', transactions: 0, timer: undefined };
    this.connections.add(connection);
    return new Promise((resolve, reject) => {
      const fail = (err: NodemailerError) => {
        if (connection.state !== 'connecting') return;
        this.discard(connection);
        reject(err);
      };
      const ready = () => {
        if (connection.state !== 'connecting') return;
        connection.state = 'busy';
        resolve(connection);
      };
      smtp.on('error', (err: NodemailerError) => {
        if (connection.state === 'connecting') fail(err);
        else this.onConnectionLost(connection, err);
      });
      smtp.once('end', () => {
        if (connection.state === 'connecting') fail(connectionClosedError());
        else this.onConnectionLost(connection);
      });
      smtp.connect((err) => {
        if (err) return fail(err);
        const auth = this.options.auth;
        if (!auth) return ready();
        // A fresh object each time: login() keeps and fills in what it is given.
        smtp.login({ user: auth.user, pass: auth.pass }, (loginErr) => (loginErr ? fail(loginErr) : ready()));
      });
    });
  }

  /**
   * The server or the network ended a connection. One that is connecting or busy learns of it
   * through the callback of what it is doing; any other is simply dropped.
   */
  private onConnectionLost(connection: PooledConnection, err?: NodemailerError): void {
    if (connection.state === 'idle' || connection.state === 'resetting' || connection.state === 'quitting') {
      if (err) this.options.logger.debug({ connection: connection.id, err: err.message }, 'smarthost connection lost');
      this.discard(connection);
    }
  }

  private tryOn(connection: PooledConnection, envelope: SMTPEnvelope, openMessage: () => Readable, reused: boolean, needs: TransferNeeds): Promise<TryResult> {
    // Checked on every connection, fresh or reused: what the server offers decides, before a byte is sent.
    const missing = missingExtension(connection.smtp, envelope, needs, String(this.options.connection.host));
    if (missing) {
      this.release(connection);
      return Promise.resolve({ ok: false, err: missing, retryOnFreshConnection: false });
    }
    let message: Readable;
    try {
      message = openMessage();
    } catch (err) {
      this.release(connection);
      return Promise.resolve({ ok: false, err: err as NodemailerError, retryOnFreshConnection: false });
    }
    return new Promise((resolve) => {
      // send() writes its bookkeeping (accepted, rejected, a refused MAIL FROM) into the envelope
      // it is given, so each try gets its own copy.
      const send = () => connection.smtp.send({ ...envelope }, message, (err, info) => {
        // Whether any of it left: a message that did not start can go over another connection.
        const messageRead = message.readableDidRead;
        // nodemailer leaves the stream open when the envelope was refused before DATA.
        message.destroy();
        connection.transactions += 1;
        if (!err) {
          this.afterTransaction(connection);
          resolve({ ok: true, info });
          return;
        }
        if (reused && !messageRead && isTransientError(err) && !this.closed) {
          // The slot stays taken for the retry, so a queued send cannot take it in between.
          this.discard(connection, { keepSlot: true });
          resolve({ ok: false, err, retryOnFreshConnection: true });
          return;
        }
        // Settles once the connection is back in the pool (after RSET), so the sender's next
        // message finds it there instead of opening another.
        this.afterFailure(connection, err, () => resolve({ ok: false, err, retryOnFreshConnection: false }));
      });
      if (needs.utf8Headers) withSmtpUtf8(connection.smtp, send);
      else send();
    });
  }

  private afterTransaction(connection: PooledConnection): void {
    if (connection.smtp.destroyed) this.discard(connection);
    else if (connection.transactions >= this.maxMessagesPerConnection) this.retire(connection);
    else this.release(connection);
  }

  /**
   * A refusal of the envelope or of the message leaves the session sound: RSET clears the
   * transaction and the connection goes back to the pool. A 421, or any other error (network,
   * TLS, protocol, a broken message stream mid-DATA), leaves it in no state to trust.
   */
  private afterFailure(connection: PooledConnection, err: NodemailerError, done: () => void): void {
    const refused = (err.code === EENVELOPE || err.code === EMESSAGE) && err.responseCode !== 421;
    if (!refused || connection.smtp.destroyed) {
      this.discard(connection);
      done();
      return;
    }
    connection.state = 'resetting';
    connection.resetDone = done;
    connection.smtp.reset((resetErr) => {
      if (connection.state !== 'resetting') return;
      if (resetErr) this.discard(connection);
      else this.release(connection);
    });
  }

  /** Hands the connection to the next waiting send, or parks it as idle. */
  private release(connection: PooledConnection): void {
    this.settleReset(connection);
    if (this.closed) {
      this.retire(connection);
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) {
      connection.state = 'busy';
      waiter.resolve({ connection });
      return;
    }
    connection.state = 'idle';
    this.idle.push(connection);
    connection.timer = setTimeout(() => {
      if (connection.state === 'idle') this.retire(connection);
    }, this.idleTimeoutMs);
    // An idle connection is no reason to keep the process alive.
    connection.timer.unref();
  }

  /** Says QUIT; the connection keeps its slot until the server closes it, or the grace ends. */
  private retire(connection: PooledConnection): void {
    if (connection.state === 'gone' || connection.state === 'quitting') return;
    if (connection.smtp.destroyed) {
      this.discard(connection);
      return;
    }
    this.removeIdle(connection);
    clearTimeout(connection.timer);
    connection.state = 'quitting';
    connection.timer = setTimeout(() => this.discard(connection), QUIT_GRACE_MS);
    connection.timer.unref();
    // quit() may close, and end, synchronously when the socket is already gone.
    connection.smtp.quit();
  }

  private discard(connection: PooledConnection, options: { keepSlot?: boolean } = {}): void {
    if (connection.state === 'gone') return;
    this.settleReset(connection);
    connection.state = 'gone';
    clearTimeout(connection.timer);
    connection.timer = undefined;
    this.removeIdle(connection);
    this.connections.delete(connection);
    connection.smtp.close();
    if (options.keepSlot) this.reservedSlots += 1;
    else this.slotFreed();
  }

  private settleReset(connection: PooledConnection): void {
    const done = connection.resetDone;
    connection.resetDone = undefined;
    done?.();
  }

  private removeIdle(connection: PooledConnection): void {
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
  }

  /** A slot came free: the next waiting send may open a connection in it. */
  private slotFreed(): void {
    const waiter = this.waiting.shift();
    if (!waiter) return;
    this.reservedSlots += 1;
    waiter.resolve({ slot: true });
  }
}

function poolClosedError(): NodemailerError {
  const err: NodemailerError = new Error('Connection pool was closed');
  err.code = 'ECONNECTION';
  return err;
}

function connectionClosedError(): NodemailerError {
  const err: NodemailerError = new Error('Connection closed before the session was set up');
  err.code = 'ECONNECTION';
  err.command = 'CONN';
  return err;
}
