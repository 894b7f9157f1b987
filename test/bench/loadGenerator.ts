import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageFactory } from './benchMessage.js';
import { SmtpConnection, SmtpConnectionError, replyText, type SmtpReply } from './smtpConnection.js';

export type TlsMode = 'starttls' | 'implicit' | 'none';

/**
 * Wall-clock milliseconds with sub-millisecond precision. performance.timeOrigin is the
 * process's start in epoch milliseconds, so the figure is comparable with the sink process's.
 */
export const now = (): number => performance.timeOrigin + performance.now();

export interface SessionOptions {
  host: string;
  port: number;
  tls: TlsMode;
  /** AUTH PLAIN (RFC 4616) with these credentials; no AUTH when absent. */
  auth?: { user: string; password: string };
  ehloName: string;
  /** Every read's limit; a server silent for longer fails the session. */
  timeoutMs: number;
}

export interface LoadOptions extends SessionOptions {
  concurrency: number;
  /** Stop after this many messages, or ... */
  messages?: number;
  /** ... keep sending for this long. */
  durationMs?: number;
  /** Bytes per message, header and body together. */
  size: number;
  recipients: number;
  /** A new connection for every message instead of one persistent session per worker. */
  connectionPerMessage: boolean;
  from: string;
  recipientDomain: string;
  /** Tags every message (X-Bench-Id: <runId>-<n>); no '-' in it. */
  runId: string;
}

export interface LoadProgress {
  sent: number;
  accepted: number;
  errors: number;
}

export interface LoadResult {
  /** Messages whose MAIL was attempted. */
  attempted: number;
  accepted: number;
  /** Failed messages plus failed QUITs; each counts once. */
  errors: number;
  /** Sessions that broke (connection, TLS, AUTH or a reply out of place) and were replaced. */
  sessionFailures: number;
  /** The first few distinct error texts. */
  firstErrors: string[];
  startedAt: number;
  finishedAt: number;
  /** Per message number: when MAIL was written, and when the 250 after DATA arrived (NaN if never). */
  mailAt: number[];
  /** When the last byte of the message (the final ".") was written. */
  dataEndAt: number[];
  acceptedAt: number[];
}

const MAX_DISTINCT_ERRORS = 5;
/** A broken server must not turn a worker into a busy loop of reconnects. */
const RECONNECT_PAUSE_MS = 100;

/** A reply that was not the one the step needed. */
class UnexpectedReply extends Error {}

export interface Session {
  connection: SmtpConnection;
  /** The server offered PIPELINING (RFC 2920) in its EHLO reply. */
  pipelining: boolean;
}

function expect(reply: SmtpReply, step: string, ...codes: number[]): void {
  if (!codes.includes(reply.code)) throw new UnexpectedReply(`${step}: ${replyText(reply)}`);
}

/**
 * Greeting, EHLO, STARTTLS and EHLO again (RFC 3207 section 4.2: the client must forget what
 * it learnt before TLS), AUTH PLAIN. Throws with the step and reply text when one fails.
 */
export async function openSession(options: SessionOptions): Promise<Session> {
  const connection = await SmtpConnection.open({
    host: options.host,
    port: options.port,
    implicitTls: options.tls === 'implicit',
    timeoutMs: options.timeoutMs,
  });
  try {
    expect(await connection.read(), 'greeting', 220);
    let ehlo = await connection.command(`EHLO ${options.ehloName}`);
    expect(ehlo, 'EHLO', 250);
    if (options.tls === 'starttls') {
      expect(await connection.command('STARTTLS'), 'STARTTLS', 220);
      await connection.upgradeToTls(options.host);
      ehlo = await connection.command(`EHLO ${options.ehloName}`);
      expect(ehlo, 'EHLO after STARTTLS', 250);
    }
    if (options.auth) {
      const token = Buffer.from(`\0${options.auth.user}\0${options.auth.password}`, 'utf8').toString('base64');
      expect(await connection.command(`AUTH PLAIN ${token}`), 'AUTH PLAIN', 235);
    }
    const pipelining = ehlo.lines.slice(1).some((line) => line.toUpperCase().split(' ')[0] === 'PIPELINING');
    return { connection, pipelining };
  } catch (err) {
    connection.close();
    throw err;
  }
}

/** QUIT, counting anything but 221 as an error text; the socket is closed either way. */
async function closeSession(session: Session): Promise<string | undefined> {
  try {
    const reply = await session.connection.quit();
    return reply.code === 221 ? undefined : `QUIT: ${replyText(reply)}`;
  } catch (err) {
    return `QUIT: ${(err as Error).message}`;
  }
}

/**
 * The load generator: `concurrency` workers share the message numbers and send them over
 * persistent sessions or a connection per message, recording per message the time MAIL was
 * written and the time the 250 after DATA arrived. It never hangs: every read times out, a
 * broken session is counted and replaced, and each message number ends accepted or failed.
 */
export class LoadGenerator {
  private readonly messages: MessageFactory;
  private readonly recipients: string[];
  private nextNumber = 0;
  private deadline = Infinity;
  private accepted = 0;
  private errors = 0;
  private sessionFailures = 0;
  private readonly firstErrors: string[] = [];
  private readonly mailAt: number[] = [];
  private readonly dataEndAt: number[] = [];
  private readonly acceptedAt: number[] = [];

  constructor(private readonly options: LoadOptions) {
    if (options.messages === undefined && options.durationMs === undefined) throw new RangeError('LoadGenerator needs messages or durationMs');
    this.messages = new MessageFactory(options.size);
    this.recipients = Array.from({ length: options.recipients }, (_, i) => `rcpt${i + 1}@${options.recipientDomain}`);
  }

  progress(): LoadProgress {
    return { sent: this.nextNumber, accepted: this.accepted, errors: this.errors };
  }

  async run(): Promise<LoadResult> {
    const startedAt = now();
    if (this.options.durationMs !== undefined) this.deadline = startedAt + this.options.durationMs;
    const worker = () => this.worker(!this.options.connectionPerMessage);
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    return {
      attempted: this.nextNumber,
      accepted: this.accepted,
      errors: this.errors,
      sessionFailures: this.sessionFailures,
      firstErrors: [...this.firstErrors],
      startedAt,
      finishedAt: now(),
      mailAt: this.mailAt,
      dataEndAt: this.dataEndAt,
      acceptedAt: this.acceptedAt,
    };
  }

  /** The next message number to send, or undefined when the run is complete. */
  private take(): number | undefined {
    if (this.options.messages !== undefined && this.nextNumber >= this.options.messages) return undefined;
    if (now() >= this.deadline) return undefined;
    return this.nextNumber++;
  }

  /**
   * One worker: takes message numbers until none are left. A persistent worker keeps its
   * session for the next message; otherwise each message gets a connection of its own. A
   * session that failed is dropped and a new one opened for the next message.
   */
  private async worker(persistent: boolean): Promise<void> {
    let session: Session | undefined;
    for (let n = this.take(); n !== undefined; n = this.take()) {
      if (!session) {
        try {
          session = await openSession(this.options);
        } catch (err) {
          this.fail(n, err);
          this.sessionFailures++;
          await sleep(RECONNECT_PAUSE_MS);
          continue;
        }
      }
      try {
        await this.send(session, n);
      } catch (err) {
        this.fail(n, err);
        this.sessionFailures++;
        session.connection.close();
        session = undefined;
        continue;
      }
      if (!persistent) {
        this.noteQuit(await closeSession(session));
        session = undefined;
      }
    }
    if (session) this.noteQuit(await closeSession(session));
  }

  /**
   * One transaction. With PIPELINING, MAIL, every RCPT and DATA go out in one write and the
   * replies are read in order afterwards (RFC 2920 section 3.1: DATA is the last command of a
   * group); without it, one command and reply at a time. Throws on any reply out of place; the
   * caller drops the session, since its state is no longer known.
   */
  private async send(session: Session, n: number): Promise<void> {
    const { connection } = session;
    const commands = [`MAIL FROM:<${this.options.from}>`, ...this.recipients.map((to) => `RCPT TO:<${to}>`), 'DATA'];
    const payload = this.messages.payload({
      runId: this.options.runId,
      n,
      from: this.options.from,
      to: this.recipients,
      domain: this.options.ehloName,
    });
    this.mailAt[n] = now();
    this.acceptedAt[n] = Number.NaN;
    if (session.pipelining) {
      connection.write(commands.map((command) => `${command}\r\n`).join(''));
      // Every reply is read even after a failure, so the first one is the one reported.
      const replies: SmtpReply[] = [];
      for (let i = 0; i < commands.length; i++) replies.push(await connection.read());
      replies.forEach((reply, i) => expect(reply, commands[i]!.split(':')[0]!, ...expectedCodes(i, commands.length)));
    } else {
      for (let i = 0; i < commands.length; i++) expect(await connection.command(commands[i]!), commands[i]!.split(':')[0]!, ...expectedCodes(i, commands.length));
    }
    for (const chunk of payload) connection.write(chunk);
    this.dataEndAt[n] = now();
    expect(await connection.read(), 'end of DATA', 250);
    this.acceptedAt[n] = now();
    this.accepted++;
  }

  private fail(n: number, err: unknown): void {
    this.mailAt[n] ??= Number.NaN;
    this.dataEndAt[n] ??= Number.NaN;
    this.acceptedAt[n] = Number.NaN;
    this.noteError(err instanceof UnexpectedReply || err instanceof SmtpConnectionError ? err.message : `error: ${(err as Error).message}`);
  }

  private noteQuit(text: string | undefined): void {
    if (text !== undefined) this.noteError(text);
  }

  private noteError(text: string): void {
    this.errors++;
    if (this.firstErrors.length < MAX_DISTINCT_ERRORS && !this.firstErrors.includes(text)) this.firstErrors.push(text);
  }
}

/** MAIL 250; RCPT 250 or 251 (RFC 5321 section 3.3); DATA 354. */
function expectedCodes(index: number, count: number): number[] {
  if (index === 0) return [250];
  if (index === count - 1) return [354];
  return [250, 251];
}

export interface IdleSessions {
  sessions: Session[];
  failures: number;
  firstErrors: string[];
}

/**
 * Opens `count` sessions (TLS and AUTH done) and leaves them idle, `parallel` handshakes at a
 * time so the opening itself does not time out on a small machine.
 */
export async function openIdleSessions(options: SessionOptions, count: number, parallel: number, onOpened?: (opened: number) => void): Promise<IdleSessions> {
  const sessions: Session[] = [];
  const firstErrors: string[] = [];
  let failures = 0;
  let next = 0;
  const opener = async () => {
    while (next < count) {
      next++;
      try {
        sessions.push(await openSession(options));
        onOpened?.(sessions.length);
      } catch (err) {
        failures++;
        const text = (err as Error).message;
        if (firstErrors.length < MAX_DISTINCT_ERRORS && !firstErrors.includes(text)) firstErrors.push(text);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, opener));
  return { sessions, failures, firstErrors };
}

/** QUITs every session, `parallel` at a time. */
export async function closeIdleSessions(sessions: Session[], parallel: number): Promise<void> {
  const queue = [...sessions];
  const closer = async () => {
    for (let session = queue.pop(); session; session = queue.pop()) await closeSession(session);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, closer));
}
