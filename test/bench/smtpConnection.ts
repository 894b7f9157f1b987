import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** One complete SMTP reply: its code and every line's text (RFC 5321 section 4.2). */
export interface SmtpReply {
  code: number;
  lines: string[];
}

/** "250 2.0.0 Ok" or "250-SIZE / 250 HELP" joined, for error reports. */
export function replyText(reply: SmtpReply): string {
  return reply.lines.map((line, i) => `${reply.code}${i === reply.lines.length - 1 ? ' ' : '-'}${line}`).join(' / ');
}

/** An error raised by the connection itself: timeout, close, socket failure. */
export class SmtpConnectionError extends Error {}

/**
 * A raw SMTP client connection: it writes bytes and hands back replies, one at a time, in the
 * order they arrive, so a caller can pipeline commands (RFC 2920) and still see every reply.
 * Every read has a timeout so a stuck server fails the session instead of hanging the run.
 */
export class SmtpConnection {
  private socket: Socket | TLSSocket;
  private buffered = '';
  private pendingLines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private waiter: { resolve: (reply: SmtpReply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private readonly onError = (err: Error) => this.fail(new SmtpConnectionError(`socket error: ${err.message}`));
  private readonly onClose = () => this.fail(new SmtpConnectionError('connection closed by the server'));

  private constructor(
    socket: Socket | TLSSocket,
    private readonly timeoutMs: number,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Opens a TCP connection, or a TLS one from the first byte (implicit TLS, RFC 8314). */
  static async open(options: { host: string; port: number; implicitTls: boolean; timeoutMs: number }): Promise<SmtpConnection> {
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpConnectionError(`connect to ${options.host}:${options.port} timed out`));
      }, options.timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(new SmtpConnectionError(`connect to ${options.host}:${options.port} failed: ${err.message}`));
        else resolve(s);
      };
      const s: Socket | TLSSocket = options.implicitTls
        ? tlsConnect({ host: options.host, port: options.port, rejectUnauthorized: false, servername: sniName(options.host) }, () => done())
        : netConnect({ host: options.host, port: options.port }, () => done());
      s.once('error', done);
    });
    socket.setNoDelay(true);
    socket.removeAllListeners('error');
    return new SmtpConnection(socket, options.timeoutMs);
  }

  get encrypted(): boolean {
    return 'encrypted' in this.socket && this.socket.encrypted === true;
  }

  /** Writes raw bytes (commands, or a whole pipelined batch). */
  write(data: string | Buffer): void {
    if (this.failure) return;
    this.socket.write(data);
  }

  /** The next reply, or a rejection after the timeout or when the connection fails. */
  read(): Promise<SmtpReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.fail(new SmtpConnectionError(`no reply within ${this.timeoutMs} ms`));
        reject(this.failure);
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Sends a command and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /**
   * Switches the connection to TLS after a 220 to STARTTLS (RFC 3207). Anything the server
   * sent before the handshake is discarded, as section 4.2 requires of the client.
   */
  async upgradeToTls(host: string): Promise<void> {
    this.detach(this.socket);
    this.buffered = '';
    this.pendingLines = [];
    this.replies.length = 0;
    const plain = this.socket;
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpConnectionError(`TLS handshake timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: sniName(host) }, () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpConnectionError(`TLS handshake failed: ${err.message}`));
      });
    });
    secure.removeAllListeners('error');
    this.socket = secure;
    this.attach(secure);
  }

  /** QUIT and wait for 221 (RFC 5321 section 4.1.1.10); returns the reply, or the failure. */
  async quit(): Promise<SmtpReply> {
    try {
      return await this.command('QUIT');
    } finally {
      this.close();
    }
  }

  /** Drops the connection without QUIT. */
  close(): void {
    this.detach(this.socket);
    this.socket.on('error', () => {});
    this.socket.destroy();
    if (!this.failure) this.failure = new SmtpConnectionError('connection closed by the client');
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private detach(socket: Socket | TLSSocket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private receive(chunk: Buffer): void {
    this.buffered += chunk.toString('latin1');
    let start = 0;
    let end: number;
    while ((end = this.buffered.indexOf('\n', start)) !== -1) {
      const line = this.buffered.slice(start, this.buffered.charCodeAt(end - 1) === 0x0d ? end - 1 : end);
      start = end + 1;
      this.receiveLine(line);
    }
    this.buffered = this.buffered.slice(start);
  }

  /** A line "250-text" continues a reply, "250 text" ends it (RFC 5321 section 4.2.1). */
  private receiveLine(line: string): void {
    const code = Number(line.slice(0, 3));
    const last = line.charAt(3) !== '-';
    this.pendingLines.push(line.slice(4));
    if (!last) return;
    const reply: SmtpReply = { code: Number.isInteger(code) && line.length >= 3 ? code : 0, lines: this.pendingLines };
    this.pendingLines = [];
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve(reply);
    } else {
      this.replies.push(reply);
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
  }
}

/** TLS forbids an IP address as SNI (RFC 6066 section 3). */
function sniName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}
