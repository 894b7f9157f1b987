import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

/** What a real SMTP server on loopback received, for delivery tests. */
export interface ReceivedMessage {
  /** The reverse-path; '' for MAIL FROM:<>. */
  from: string;
  to: string[];
  data: Buffer;
  user: string | undefined;
  secure: boolean;
}

export interface UpstreamOptions {
  /** Listen on this port (to bring a server up where a test expected none); 0 picks one. */
  port?: number;
  /** Require AUTH PLAIN/LOGIN with these credentials (the server then offers AUTH only after STARTTLS). */
  credentials?: { user: string; pass: string };
  /** Offer STARTTLS with smtp-server's built-in self-signed certificate. */
  starttls?: boolean;
  /** TLS from the first byte (RFC 8314), with the same certificate. */
  implicitTls?: boolean;
  /** Return an SMTP reply code and text to refuse a recipient at RCPT TO. */
  refuseRecipient?: (address: string) => { code: number; text: string } | undefined;
  /** Awaited before the reply to the message's final dot; lets a test hold a transaction open. */
  beforeDataReply?: () => Promise<void>;
  /** Return a reply code and text to refuse the message after DATA. */
  refuseData?: () => { code: number; text: string } | undefined;
  /** Return a reply code and text to refuse MAIL FROM; `transaction` counts from 1 on each connection. */
  refuseSender?: (transaction: number) => { code: number; text: string } | undefined;
  /** Do not offer AUTH at all. */
  noAuth?: boolean;
  /** Close a connection idle this long (ms) with a 421, as servers do (RFC 5321 section 4.5.3.2.7). */
  idleTimeoutMs?: number;
}

export interface Upstream {
  port: number;
  received: ReceivedMessage[];
  /** Every RCPT TO address the server saw, accepted or not, in order. */
  rcptSeen: string[];
  /** Resolves with the next message received. */
  nextMessage(): Promise<ReceivedMessage>;
  /** Connections accepted so far. */
  readonly connectionsAccepted: number;
  /** Connections open now. */
  readonly openConnections: number;
  /** The most connections that were open at once. */
  readonly peakOpenConnections: number;
  /** Resolves once exactly `count` connections are open. */
  untilOpenConnections(count: number): Promise<void>;
  close(): Promise<void>;
}

function smtpError(code: number, text: string): Error {
  const err = new Error(text) as Error & { responseCode: number };
  err.responseCode = code;
  return err;
}

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const received: ReceivedMessage[] = [];
  const rcptSeen: string[] = [];
  const waiting: Array<(message: ReceivedMessage) => void> = [];
  let connectionsAccepted = 0;
  let openConnections = 0;
  let peakOpenConnections = 0;
  let connectionWatchers: Array<() => void> = [];
  const connectionsChanged = () => {
    const watchers = connectionWatchers;
    connectionWatchers = [];
    watchers.forEach((watch) => watch());
  };
  const serverOptions: SMTPServerOptions = {
    logger: false,
    // Do not keep a test waiting on a client that has not said QUIT yet.
    closeTimeout: 200,
    secure: options.implicitTls ?? false,
    disabledCommands: [...(options.starttls ? [] : ['STARTTLS']), ...(options.noAuth ? ['AUTH'] : [])],
    // With a short idle timeout, a slow reverse lookup of 127.0.0.1 must not eat into it.
    ...(options.idleTimeoutMs !== undefined && { socketTimeout: options.idleTimeoutMs, disableReverseLookup: true }),
    authOptional: !options.credentials,
    authMethods: ['PLAIN', 'LOGIN'],
    onConnect(_session, callback) {
      connectionsAccepted += 1;
      openConnections += 1;
      peakOpenConnections = Math.max(peakOpenConnections, openConnections);
      connectionsChanged();
      callback();
    },
    onClose() {
      openConnections -= 1;
      connectionsChanged();
    },
    onMailFrom(_address, session, callback) {
      const refusal = options.refuseSender?.(session.transaction);
      callback(refusal ? smtpError(refusal.code, refusal.text) : null);
    },
    onAuth(auth, _session, callback) {
      const expected = options.credentials;
      if (expected && auth.username === expected.user && auth.password === expected.pass) {
        callback(null, { user: auth.username });
        return;
      }
      callback(smtpError(535, '5.7.8 Authentication credentials invalid'));
    },
    onRcptTo(address, _session, callback) {
      rcptSeen.push(address.address);
      const refusal = options.refuseRecipient?.(address.address);
      callback(refusal ? smtpError(refusal.code, refusal.text) : null);
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', async () => {
        await options.beforeDataReply?.();
        const refusal = options.refuseData?.();
        if (refusal) {
          callback(smtpError(refusal.code, refusal.text));
          return;
        }
        const message: ReceivedMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          user: (session.user as string | undefined) ?? undefined,
          secure: session.secure,
        };
        received.push(message);
        waiting.splice(0).forEach((resolve) => resolve(message));
        callback(null);
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => undefined);
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    received,
    rcptSeen,
    nextMessage: () => new Promise((resolve) => waiting.push(resolve)),
    get connectionsAccepted() {
      return connectionsAccepted;
    },
    get openConnections() {
      return openConnections;
    },
    get peakOpenConnections() {
      return peakOpenConnections;
    },
    untilOpenConnections(count) {
      return new Promise<void>((resolve) => {
        const check = () => {
          if (openConnections === count) resolve();
          else connectionWatchers.push(check);
        };
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
