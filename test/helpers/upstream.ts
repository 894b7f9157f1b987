import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  user?: string;
  /** The session was TLS (STARTTLS or implicit) when the message came. */
  secure: boolean;
  /** The parameters of its MAIL FROM, upper-case keys: { SIZE: '123', BODY: '8BITMIME', SMTPUTF8: true }. */
  mailParams: Record<string, string | boolean>;
}

/** One RCPT TO the server was asked, accepted or not, with the MAIL FROM of its transaction ('' for <>). */
export interface RcptSeen {
  from: string;
  address: string;
}

/** A reply for the server to give instead of accepting: `message` is the text after the code. */
export interface UpstreamReply {
  code: number;
  message: string;
}

export interface UpstreamOptions {
  port?: number;
  /**
   * The loopback address to bind, 127.0.0.1 by default. Linux routes all of 127/8 to the
   * loopback interface, so servers on 127.0.0.2, 127.0.0.3... stand in for several MX hosts
   * on one port.
   */
  host?: string;
  auth?: { user: string; pass: string };
  secure?: boolean;
  /** Offer STARTTLS (or implicit TLS) with this certificate instead of smtp-server's own. */
  tls?: { key: string; cert: string };
  /**
   * Answer every connection with this reply instead of the 220 greeting, then close it: a
   * busy (421) or refusing (554) server, RFC 5321 section 3.1.
   */
  greeting?: UpstreamReply;
  /**
   * Called at every RCPT TO with the address and how many times this server has now been
   * asked for it (1 the first time); a reply refuses the recipient, undefined accepts it. It
   * may answer differently over time, e.g. 451 first, then accept.
   */
  rcptReply?: (address: string, seen: number) => UpstreamReply | undefined;
  /** Leave these extensions out of the EHLO reply: a next hop without SMTPUTF8 (RFC 6531) or 8BITMIME (RFC 6152). */
  without?: Array<'SMTPUTF8' | '8BITMIME'>;
}

export interface Upstream {
  port: number;
  /** The address it listens on. */
  host: string;
  messages: ReceivedMessage[];
  /** Every RCPT TO in the order asked, accepted or not. */
  rcptSeen: RcptSeen[];
  /** Connections made to it, including the ones its greeting refused. */
  readonly connections: number;
  /** Resolves once `count` messages have arrived in total. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Resolves once it has been asked `count` RCPT TO in total. */
  waitForRcpt(count: number, timeoutMs?: number): Promise<RcptSeen[]>;
  close(): Promise<void>;
}

/**
 * A real SMTP server on loopback standing in for the smarthost, an MX host or a sender's
 * mailbox: smtp-server with its own certificate (or the one given), optionally requiring
 * AUTH, recording every envelope and the exact bytes.
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const messages: ReceivedMessage[] = [];
  const rcptSeen: RcptSeen[] = [];
  const timesAsked = new Map<string, number>();
  let connections = 0;
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const each of waiters.splice(0)) each();
  };
  const serverOptions: SMTPServerOptions = {
    secure: options.secure ?? false,
    ...(options.tls && { key: options.tls.key, cert: options.tls.cert }),
    authOptional: !options.auth,
    disableReverseLookup: true,
    logger: false,
    hideSMTPUTF8: options.without?.includes('SMTPUTF8') ?? false,
    hide8BITMIME: options.without?.includes('8BITMIME') ?? false,
    onConnect(_session, callback) {
      connections += 1;
      const refusal = options.greeting;
      if (refusal) return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
      callback();
    },
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
        return callback(null, { user: auth.username });
      }
      const err = Object.assign(new Error('Invalid credentials'), { responseCode: 535 });
      callback(err);
    },
    onRcptTo(address, session, callback) {
      const seen = (timesAsked.get(address.address) ?? 0) + 1;
      timesAsked.set(address.address, seen);
      rcptSeen.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', address: address.address });
      wake();
      const refusal = options.rcptReply?.(address.address, seen);
      if (refusal) return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: session.secure,
          mailParams: { ...((session.envelope.mailFrom ? session.envelope.mailFrom.args : undefined) || {}) },
        });
        wake();
        callback(null, 'Ok upstream');
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  // A client that hangs up mid-handshake (one that distrusts the certificate) is what some
  // tests expect, not a failure of the server.
  server.on('error', () => undefined);
  const host = options.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve((server.server.address() as AddressInfo).port));
  });

  /** Waits until `ready()` gives a value; past the timeout, rejects with what `progress()` says. */
  async function until<T>(ready: () => T | undefined, progress: () => string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${progress()} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  return {
    port,
    host,
    messages,
    rcptSeen,
    get connections() {
      return connections;
    },
    waitFor: (count, timeoutMs = 15_000) =>
      until(
        () => (messages.length >= count ? messages : undefined),
        () => `upstream ${host} received ${messages.length} of ${count} messages`,
        timeoutMs,
      ),
    waitForRcpt: (count, timeoutMs = 15_000) =>
      until(
        () => (rcptSeen.length >= count ? rcptSeen : undefined),
        () => `upstream ${host} was asked ${rcptSeen.length} of ${count} RCPT TO`,
        timeoutMs,
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
