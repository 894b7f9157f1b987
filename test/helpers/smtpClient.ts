import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** One SMTP reply as the client sees it. */
export interface Reply {
  code: number;
  /** Every line's text after "NNN-" / "NNN ". */
  lines: string[];
  /** The last line whole, e.g. "250 2.0.0 Ok: queued as 01J...". */
  last: string;
}

/**
 * A deliberately plain SMTP client for tests: it writes exactly the bytes it is given and
 * reads replies line by line, so tests can assert reply codes and send what no well-behaved
 * library would (commands before TLS, bare LF in DATA, pipelined garbage).
 */
export class SmtpTestClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private closed = false;
  /** SHA-256 fingerprint of the certificate the server presented, read at the handshake. */
  peerFingerprint: string | undefined;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  /**
   * `localAddress` picks the client's source address: Linux routes all of 127/8 to loopback,
   * so a test can be a client address of its own and per-address limits of one test do not
   * meet another's.
   */
  static async connect(port: number, options: { implicitTls?: boolean; host?: string; localAddress?: string } = {}): Promise<SmtpTestClient> {
    const host = options.host ?? '127.0.0.1';
    const from = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
    const socket = options.implicitTls
      ? tlsConnect({ socket: netConnect({ host, port, ...from }), rejectUnauthorized: false, servername: 'localhost' })
      : netConnect({ host, port, ...from });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.implicitTls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new SmtpTestClient(socket);
    if (options.implicitTls) client.peerFingerprint = (socket as TLSSocket).getPeerX509Certificate()?.fingerprint256;
    return client;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  get tlsSocket(): TLSSocket | undefined {
    return 'getPeerX509Certificate' in this.socket ? (this.socket as TLSSocket) : undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reads one whole (possibly multi-line) reply; rejects if the server hangs up first. */
  async read(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.takeReply();
      if (reply) return reply;
      if (this.closed) throw new Error(`connection closed while waiting for a reply (buffer: ${JSON.stringify(this.buffer)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms (buffer: ${JSON.stringify(this.buffer)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private takeReply(): Reply | undefined {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end === -1) return undefined;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line);
      if (line.length < 4 || line[3] === ' ') {
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines: lines.map((l) => l.slice(4)), last: line };
      }
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  async greeting(): Promise<Reply> {
    return this.read();
  }

  async ehlo(name = 'client.example.test'): Promise<Reply> {
    return this.command(`EHLO ${name}`);
  }

  /** STARTTLS, then the TLS handshake on the same socket. */
  async startTls(): Promise<Reply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.peerFingerprint = secure.getPeerX509Certificate()?.fingerprint256;
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
    return reply;
  }

  async authPlain(user: string, password: string, authzid = ''): Promise<Reply> {
    return this.command(`AUTH PLAIN ${Buffer.from(`${authzid}\0${user}\0${password}`).toString('base64')}`);
  }

  async authLogin(user: string, password: string): Promise<Reply> {
    const first = await this.command('AUTH LOGIN');
    if (first.code !== 334) return first;
    const second = await this.command(Buffer.from(user).toString('base64'));
    if (second.code !== 334) return second;
    return this.command(Buffer.from(password).toString('base64'));
  }

  /** DATA with a body that already uses CRLF; dot-stuffs and terminates it. */
  async data(body: string | Buffer): Promise<Reply> {
    const start = await this.command('DATA');
    if (start.code !== 354) return start;
    this.write(Buffer.concat([dotStuff(Buffer.from(body)), Buffer.from('\r\n.\r\n')]));
    return this.read();
  }

  async quit(): Promise<void> {
    if (!this.closed) {
      this.write('QUIT\r\n');
      await this.read().catch(() => undefined);
    }
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** RFC 5321 §4.5.2: a line starting with "." gets another "."; the body must not end in CRLF twice. */
function dotStuff(body: Buffer): Buffer {
  const text = body.toString('latin1').replace(/\r\n$/, '');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}

/** Connects, reads the greeting, EHLO, STARTTLS (or implicit TLS), EHLO again, AUTH PLAIN. */
export async function authenticatedClient(
  port: number,
  credentials: { user: string; password: string },
  options: { implicitTls?: boolean; ehloName?: string; host?: string } = {},
): Promise<SmtpTestClient> {
  const client = await SmtpTestClient.connect(port, options);
  await expectCode(client.greeting(), 220);
  await expectCode(client.ehlo(options.ehloName), 250);
  if (!options.implicitTls) {
    await expectCode(client.startTls(), 220);
    await expectCode(client.ehlo(options.ehloName), 250);
  }
  await expectCode(client.authPlain(credentials.user, credentials.password), 235);
  return client;
}

async function expectCode(reply: Promise<Reply>, code: number): Promise<Reply> {
  const got = await reply;
  if (got.code !== code) throw new Error(`expected ${code}, got: ${got.last}`);
  return got;
}
