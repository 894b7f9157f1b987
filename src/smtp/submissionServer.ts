import { isAscii } from 'node:buffer';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config, ListenerName } from '../config/schema.js';
import type { Clock } from '../util/clock.js';
import { errorMessage, PosternError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { ConnectionLimits } from './connectionLimits.js';
import { adaptSmtpServer, destroyPendingTls } from './smtpServerAdaptations.js';
import type { PolicyContext } from '../policy/types.js';
import { EightBitCheck, eightBitPlacement } from '../spool/eightBitContent.js';
import type { CommitMeta } from '../spool/incomingMessage.js';
import type { TlsMaterial } from '../tls/tlsMaterial.js';
import { mailboxProblem, type MailboxProblem } from './addressSyntax.js';
import { printableParameter, unsupportedParameter } from './commandParameters.js';
import { HeaderBlockCollector } from './headerBlock.js';
import { LineEndingCheck } from './lineEndingCheck.js';
import { NulByteCheck } from './nulByteCheck.js';
import { ownHeaderClaim } from './ownHeaderClaim.js';
import { PolicyStages, type PolicyGate, type StageResult } from './policyStages.js';
import { normalizeAddress, PreTlsGuard } from './preTlsGuard.js';
import { receivedHeader } from './receivedHeader.js';
import { replies, replyLine, replyText, SmtpReplyError, type SmtpReply } from './replies.js';

/** What the SMTP side needs from authentication: a verdict on one login. */
export interface LoginVerifier {
  authenticate(request: { username: string; password: string; clientIp: string }): Promise<
    | { result: 'success'; user: { name: string; senders: readonly string[]; groups: readonly string[] } }
    | { result: 'invalid' }
    | { result: 'locked'; retryAfterMs: number }
  >;
}

/** What the SMTP side needs from the spool: somewhere to stream a message and commit it. */
export interface MessageIntake {
  createIncoming(): Promise<IncomingMessageWriter>;
}
export interface IncomingMessageWriter {
  readonly id: string;
  write(chunk: Buffer): Promise<void>;
  /** The message as written so far, from its first byte. */
  openData(): Promise<Readable>;
  commit(meta: CommitMeta): Promise<unknown>;
  discard(): Promise<void>;
}

/**
 * What happens on the SMTP side that operators count (src/metrics implements it). Called on
 * the hot path: implementations must be cheap and must not throw.
 */
export interface SmtpObserver {
  /** A session was accepted: admitted by the limits and the connect-stage policy, and greeted. */
  connectionOpened(listener: ListenerName): void;
  /** An accepted session ended. */
  connectionClosed(listener: ListenerName): void;
  /**
   * A connection was ended by a limit or the policy: before the greeting, or (tls-timeout on
   * the STARTTLS listener) after it, when the client did not start TLS in time.
   */
  connectionRefused(listener: ListenerName, reason: ConnectionRefusal): void;
  /** TLS is up (implicit or STARTTLS); version as Node names it, e.g. TLSv1.3. */
  tlsEstablished(listener: ListenerName, version: string): void;
  /** A TLS handshake failed (a client hanging up mid-handshake is not a failure of TLS). */
  tlsHandshakeFailed(listener: ListenerName): void;
  /** One AUTH exchange that reached Postern, by mechanism (PLAIN, LOGIN). */
  authAttempted(mechanism: string, result: AuthAttemptResult): void;
  /** DATA was read to its end (whatever the reply will be). */
  messageReceived(): void;
  /** 250 after DATA: the message is in the spool. */
  messageAccepted(sizeBytes: number): void;
  /** MAIL, RCPT or DATA refused; reason is the refusing policy rule's name or a fixed word. */
  messageRejected(stage: RejectionStage, reason: string): void;
}

export type ConnectionRefusal = 'too-many' | 'too-many-from-address' | 'tls-timeout' | 'policy';
/** `refused`: the credentials were right but the auth-stage policy said no. */
export type AuthAttemptResult = 'success' | 'invalid' | 'locked' | 'error' | 'refused';
export type RejectionStage = 'mail' | 'rcpt' | 'data';

/** The policy as the SMTP side uses it; the decisions, when the gate reports them, name the rule that refused. */
export interface ReportingPolicyGate extends PolicyGate {
  evaluate(ctx: PolicyContext): Promise<Awaited<ReturnType<PolicyGate['evaluate']>> & { decisions?: ReadonlyArray<{ rule: string }> }>;
}

const NO_OBSERVER: SmtpObserver = {
  connectionOpened() {},
  connectionClosed() {},
  connectionRefused() {},
  tlsEstablished() {},
  tlsHandshakeFailed() {},
  authAttempted() {},
  messageReceived() {},
  messageAccepted() {},
  messageRejected() {},
};

export interface SubmissionDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  logins: LoginVerifier;
  intake: MessageIntake;
  tlsMaterial: TlsMaterial;
  /** The organisation's policy; without one every stage continues. */
  policy?: ReportingPolicyGate;
  /** Told of connections, logins and messages, for metrics; none by default. */
  observer?: SmtpObserver;
  /** Signs each accepted message before it is queued (DKIM); none: messages go unsigned. */
  signer?: MessageSigner;
}

/**
 * Adds signature header fields over the message exactly as delivery will send it: Postern's
 * own header lines (`prepended`), then the message file. Returns the lines to put on top of
 * `prepended` ('' when nothing signs it).
 */
export interface MessageSigner {
  sign(input: { from: readonly string[]; prepended: string; open(): Readable }): Promise<string>;
}

export interface SubmissionListeners {
  /** Where each enabled listener is bound (port 0 in the configuration becomes a real port). */
  readonly addresses: Partial<Record<ListenerName, AddressInfo>>;
  /** Present a new certificate to new connections; open sessions keep theirs. */
  updateCertificate(material: TlsMaterial): void;
  /** Sessions currently open, all listeners together. */
  readonly activeSessions: number;
  /**
   * Stop accepting connections at once, give open sessions `graceMs` to finish, then close
   * what is left with 421.
   */
  close(graceMs: number): Promise<void>;
}

/** All rules of one stage together must answer within this; a rule's own timeout is shorter. */
const POLICY_STAGE_TIMEOUT_MS = 30_000;
/** The header block kept in memory for policy rules; a message whose header block is longer is refused. */
const MAX_HEADER_BLOCK = 256 * 1024;

/** Commands no submission client needs; refused as unrecognised, as Postfix does by default. */
const ALWAYS_DISABLED = ['VRFY', 'EXPN', 'HELP', 'WIZ', 'SHELL', 'KILL', 'XCLIENT', 'XFORWARD'];
/** RFC 4954 §4: AUTH is not offered, let alone accepted, before TLS. */
const DISABLED_BEFORE_TLS = [...ALWAYS_DISABLED, 'AUTH'];

interface AuthenticatedUser {
  name: string;
  senders: readonly string[];
}

function syntaxReply(problem: MailboxProblem, otherwise: SmtpReply): SmtpReply {
  if (problem === 'quoted-local-part') return replies.quotedLocalPart;
  if (problem === 'too-long') return replies.addressTooLong;
  if (problem === 'needs-smtputf8') return replies.needsSmtpUtf8;
  return otherwise;
}

interface SessionState {
  log: Logger;
  listener: ListenerName;
  /** Fires when the connection goes away, so a message being received is not waited for forever. */
  closed: AbortController;
  tlsProtocol?: string;
  tlsCipher?: string;
  /** Accepted (counted as open) and not yet closed. */
  opened?: boolean;
  /** The rule that refused this session's latest policy check, for the rejection count. */
  refusedBy?: string;
}

/** One SMTP server per enabled listener, sharing connection limits and session bookkeeping. */
export async function startSubmissionListeners(deps: SubmissionDeps): Promise<SubmissionListeners> {
  adaptSmtpServer();
  const { config } = deps;
  const limits = new ConnectionLimits(config.limits);
  const sessions = new Map<string, SessionState>();
  const stages = new PolicyStages(deps.policy && notingRefusingRule(deps.policy, sessions), deps.clock, POLICY_STAGE_TIMEOUT_MS);
  const servers = new Map<ListenerName, SMTPServer>();
  const addresses: Partial<Record<ListenerName, AddressInfo>> = {};

  try {
    for (const name of ['submission', 'submissions'] as const) {
      const listener = config.listeners[name];
      if (!listener.enabled) continue;
      const server = createServer(name, deps, limits, sessions, stages);
      servers.set(name, server);
      try {
        addresses[name] = await listen(server, listener.port, listener.host);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'EADDRINUSE' ? 'the address is in use (another mail server?)' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : errorMessage(err);
        throw new PosternError('LISTEN_FAILED', `Cannot listen on ${listener.host}:${listener.port} for ${name}: ${why}`, { cause: err });
      }
      deps.logger.info({ listener: name, ...addresses[name], tls: listener.tls }, 'listening');
    }
  } catch (err) {
    for (const server of servers.values()) server.close();
    throw err;
  }

  return {
    addresses,
    updateCertificate(material) {
      for (const server of servers.values()) server.updateSecureContext({ key: material.key, cert: material.cert });
    },
    get activeSessions() {
      return limits.active;
    },
    async close(graceMs) {
      await Promise.all([...servers.values()].map((server) => closeServer(server, graceMs)));
    },
  };
}

/**
 * The policy gate, noting on the session which rule refused. A session's checks run one at a
 * time (smtp-server waits for each hook's answer), so the note is read before the next check.
 */
function notingRefusingRule(gate: ReportingPolicyGate, sessions: Map<string, SessionState>): PolicyGate {
  return {
    async evaluate(ctx) {
      const outcome = await gate.evaluate(ctx);
      const state = sessions.get(ctx.sessionId);
      if (state) {
        // The engine stops at the refusing rule, so it is the last decision.
        state.refusedBy = outcome.verdict.action === 'continue' ? undefined : outcome.decisions?.at(-1)?.rule;
      }
      return outcome;
    },
  };
}

function createServer(
  listener: ListenerName,
  deps: SubmissionDeps,
  limits: ConnectionLimits,
  sessions: Map<string, SessionState>,
  stages: PolicyStages,
): SMTPServer {
  const { config, logger } = deps;
  const observer = deps.observer ?? NO_OBSERVER;
  /**
   * Runs a stage's policy. On a refusal (or a failure of the policy itself) answers the hook
   * and resolves 'refused' or 'error'; otherwise resolves 'passed' and the caller answers.
   */
  const policyCheck = async (
    state: SessionState,
    callback: (err?: Error | null) => void,
    run: Promise<StageResult>,
    event: string,
  ): Promise<'passed' | 'refused' | 'error'> => {
    try {
      const result = await run;
      if (!result.refusal) return 'passed';
      callback(refuse(state, result.refusal, event, { by: 'policy', rule: state.refusedBy }));
      return 'refused';
    } catch (err) {
      state.log.error({ event, err: errorMessage(err) }, 'policy evaluation failed');
      callback(new SmtpReplyError(replies.localError));
      return 'error';
    }
  };
  /** The same at MAIL and RCPT, counting a refusal by the rule's name. */
  const passes = async (state: SessionState, callback: (err?: Error | null) => void, run: Promise<StageResult>, stage: 'mail' | 'rcpt') => {
    const outcome = await policyCheck(state, callback, run, stage);
    if (outcome === 'refused') observer.messageRejected(stage, state.refusedBy ?? 'policy');
    else if (outcome === 'error') observer.messageRejected(stage, 'local-error');
    return outcome === 'passed';
  };
  /** A refusal at MAIL or RCPT that no rule made, counted under a fixed word. */
  const reject = (state: SessionState, stage: 'mail' | 'rcpt', reason: string, reply: SmtpReply) => {
    observer.messageRejected(stage, reason);
    return refuse(state, reply, stage);
  };

  const implicit = config.listeners[listener].tls === 'implicit';

  const stateOf = (session: SMTPServerSession): SessionState => {
    let state = sessions.get(session.id);
    if (!state) {
      state = { listener, closed: new AbortController(), log: logger.child({ sessionId: session.id, listener, client: session.remoteAddress }) };
      sessions.set(session.id, state);
    }
    return state;
  };
  const refuse = (state: SessionState, reply: SmtpReply, event: string, extra: object = {}) => {
    state.log.info({ event, reply: replyLine(reply), ...extra }, 'refused');
    return new SmtpReplyError(reply);
  };

  const preTls = new PreTlsGuard({
    maxPerAddress: config.limits.maxConnectionsPerIp,
    deadlineMs: config.limits.tlsTimeout,
    plaintext: !implicit,
    // Through smtp-server, never under it: a socket in a TLS handshake is wrapped by a
    // TLSSocket, and destroying the raw socket beneath that wrap crashes Node.
    expire: (socket) => (implicit ? destroyPendingTls(server, socket) : closeSessionOn(server, socket, replies.tlsTooLate)),
    onRefused: (client, reason) => {
      logger.info({ listener, client, event: 'connect', reason }, 'refused before TLS');
      observer.connectionRefused(listener, reason === 'tls-deadline' ? 'tls-timeout' : reason);
    },
  });

  const server: SMTPServer = new SMTPServer({
    secure: implicit,
    name: config.hostname,
    banner: 'Postern',
    key: deps.tlsMaterial.key,
    cert: deps.tlsMaterial.cert,
    minVersion: config.tls.minVersion,
    authMethods: ['PLAIN', 'LOGIN'],
    // Postern checks authentication itself in onMailFrom (so the pre-TLS case answers with the
    // right reason). Keeping this off lets smtp-server cut off clients that send command after
    // command without logging in once TLS is up; before TLS the PreTlsGuard's deadline does.
    authOptional: false,
    authRequiredMessage: replyText(replies.authRequired),
    allowInsecureAuth: false,
    hideSTARTTLS: implicit,
    hideENHANCEDSTATUSCODES: false,
    disabledCommands: ALWAYS_DISABLED,
    size: config.limits.maxMessageSize,
    // Postern decides about oversized messages itself so the reply carries its own text.
    rejectOversized: false,
    maxClients: config.limits.maxConnections,
    socketTimeout: config.limits.idleTimeout,
    closeTimeout: 1000,
    // Reverse DNS goes through Postern's own resolver once the DNS layer exists; until then the
    // Received header names the client by its address literal.
    disableReverseLookup: true,
    logger: false,

    onConnect(session, callback) {
      const state = stateOf(session);
      const admission = limits.admit(session.id, session.remoteAddress);
      if (admission !== 'admitted') {
        const reply = admission === 'too-many' ? replies.tooManyConnections : replies.tooManyConnectionsFromAddress;
        observer.connectionRefused(listener, admission);
        return callback(refuse(state, reply, 'connect'));
      }
      session.disabledCommands = session.secure ? ALWAYS_DISABLED : DISABLED_BEFORE_TLS;
      state.log.info({ event: 'connect' }, 'session opened');
      void policyCheck(state, callback, stages.check('connect', session, state), 'connect').then((outcome) => {
        if (outcome !== 'passed') return observer.connectionRefused(listener, 'policy');
        // A client that left while the policy was asked is neither open nor refused.
        if (!state.closed.signal.aborted) {
          state.opened = true;
          observer.connectionOpened(listener);
        }
        callback();
      });
    },

    onSecure(socket, session, callback) {
      const state = stateOf(session);
      preTls.established(session.remoteAddress, session.remotePort);
      const tlsSocket = socket as TLSSocket;
      state.tlsProtocol = tlsSocket.getProtocol?.() ?? undefined;
      state.tlsCipher = tlsSocket.getCipher?.()?.standardName;
      if (state.tlsProtocol) observer.tlsEstablished(listener, state.tlsProtocol);
      // RFC 3207 §4.2: what was said before TLS is forgotten (smtp-server resets the session);
      // AUTH becomes available now and only now.
      session.disabledCommands = ALWAYS_DISABLED;
      state.log.info({ event: 'tls', protocol: state.tlsProtocol, cipher: state.tlsCipher }, 'TLS established');
      callback();
    },

    onAuth(auth, session, callback) {
      const state = stateOf(session);
      const username = auth.username ?? '';
      // RFC 4616 §2: an authorization identity other than the authenticated one asks to act as
      // someone else; Postern has no such delegation, so it is refused rather than ignored.
      if (auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid) {
        observer.authAttempted(auth.method, 'invalid');
        return callback(refuse(state, replies.authInvalid, 'auth', { mechanism: auth.method, result: 'authzid-mismatch' }));
      }
      deps.logins
        .authenticate({ username, password: auth.password ?? '', clientIp: session.remoteAddress })
        .then((outcome) => {
          if (outcome.result !== 'success') observer.authAttempted(auth.method, outcome.result);
          if (outcome.result === 'success') {
            const user = outcome.user;
            return void policyCheck(state, callback, stages.check('auth', session, state, { user }), 'auth').then((checked) => {
              observer.authAttempted(auth.method, checked === 'passed' ? 'success' : checked);
              if (checked !== 'passed') return;
              state.log = state.log.child({ user: user.name });
              state.log.info({ event: 'auth', mechanism: auth.method, result: 'success' }, 'authenticated');
              callback(null, { user });
            });
          }
          if (outcome.result === 'locked') {
            return callback(
              refuse(state, replies.authLocked, 'auth', { mechanism: auth.method, result: 'locked', retryAfterMs: outcome.retryAfterMs }),
            );
          }
          callback(refuse(state, replies.authInvalid, 'auth', { mechanism: auth.method, result: 'invalid' }));
        })
        .catch((err: unknown) => {
          observer.authAttempted(auth.method, 'error');
          state.log.error({ event: 'auth', err: errorMessage(err) }, 'authentication failed with an error');
          callback(new SmtpReplyError(replies.authUnavailable));
        });
    },

    onMailFrom(address, session, callback) {
      const state = stateOf(session);
      // No relaying without TLS and AUTH, ever (RFC 3207 §4, RFC 4954 §6).
      if (!session.secure) return callback(reject(state, 'mail', 'tls-required', replies.tlsRequired));
      const user = session.user as AuthenticatedUser | undefined;
      if (!user) return callback(reject(state, 'mail', 'auth-required', replies.authRequired));
      const unsupported = unsupportedParameter('mail', address.args);
      if (unsupported !== undefined) return callback(reject(state, 'mail', 'unsupported-parameter', replies.unsupportedParameter(printableParameter(unsupported))));
      const sender = address.address;
      if (sender !== '') {
        const problem = mailboxProblem(sender, { smtpUtf8: session.envelope.smtpUtf8 === true });
        if (problem) return callback(reject(state, 'mail', 'syntax', syntaxReply(problem, replies.badSenderSyntax)));
      }
      void passes(state, callback, stages.check('mail', session, state, { mailFrom: address }), 'mail').then((ok) => ok && callback());
    },

    onRcptTo(address, session, callback) {
      const state = stateOf(session);
      const unsupported = unsupportedParameter('rcpt', address.args);
      if (unsupported !== undefined) return callback(reject(state, 'rcpt', 'unsupported-parameter', replies.unsupportedParameter(printableParameter(unsupported))));
      const problem = mailboxProblem(address.address, { smtpUtf8: session.envelope.smtpUtf8 === true });
      if (problem) return callback(reject(state, 'rcpt', 'syntax', syntaxReply(problem, replies.badRecipientSyntax)));
      if (session.envelope.rcptTo.length >= config.limits.maxRecipients) {
        return callback(reject(state, 'rcpt', 'too-many-recipients', replies.tooManyRecipients(config.limits.maxRecipients)));
      }
      const recipient = address.address;
      void passes(state, callback, stages.check('rcpt', session, state, { recipient }), 'rcpt').then((ok) => ok && callback());
    },

    onData(stream, session, callback) {
      const state = stateOf(session);
      receiveMessage(stream, session, state, deps, observer, server, stages).then(
        (reply) => callback(reply.code < 400 ? null : new SmtpReplyError(reply), replyText(reply)),
        (err: unknown) => {
          observer.messageRejected('data', 'local-error');
          state.log.error({ event: 'data', err: errorMessage(err) }, 'message intake failed');
          callback(new SmtpReplyError(replies.localError));
        },
      );
    },

    onClose(session) {
      const state = sessions.get(session.id);
      sessions.delete(session.id);
      limits.release(session.id);
      state?.closed.abort();
      if (state?.opened) {
        state.opened = false;
        observer.connectionClosed(listener);
      }
      state?.log.info({ event: 'close' }, 'session closed');
    },
  });

  server.on('error', (err) => {
    if (isTlsHandshakeFailure(err)) observer.tlsHandshakeFailed(listener);
    logger.warn({ listener, err: errorMessage(err) }, 'connection error');
  });
  // Every raw socket passes the guard first; a refused one never reaches smtp-server.
  const accept = server.server.listeners('connection') as Array<(socket: Socket) => void>;
  server.server.removeAllListeners('connection');
  server.server.on('connection', (socket: Socket) => {
    if (!preTls.admit(socket)) return;
    for (const handler of accept) handler.call(server.server, socket);
  });
  return server;
}

/**
 * Streams one message into the spool and decides the reply. The whole stream is always read to
 * its end, whatever happens, so the client's next command is parsed as a command.
 */
async function receiveMessage(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  state: SessionState,
  deps: SubmissionDeps,
  observer: SmtpObserver,
  server: SMTPServer,
  stages: PolicyStages,
): Promise<SmtpReply> {
  const { config, clock } = deps;
  const started = clock.now();
  const timer = setTimeout(() => {
    state.log.warn({ event: 'data', reply: replyLine(replies.dataTimeout) }, 'DATA took too long');
    closeSession(server, session, replies.dataTimeout);
  }, config.limits.dataTimeout);
  timer.unref();

  let incoming: IncomingMessageWriter | undefined;
  let spoolError: unknown;
  try {
    incoming = await deps.intake.createIncoming();
  } catch (err) {
    spoolError = err;
  }

  const lineEndings = new LineEndingCheck();
  const nulBytes = new NulByteCheck();
  const eightBit = new EightBitCheck();
  const headerBlock = new HeaderBlockCollector(MAX_HEADER_BLOCK);
  let bytes = 0;
  // A client that disconnects (or is cut off by the DATA timeout) mid-message leaves a stream
  // that never ends; ending it here lets the partial message be discarded.
  const abandon = () => stream.destroy(new Error('the session closed during DATA'));
  if (state.closed.signal.aborted) abandon();
  else state.closed.signal.addEventListener('abort', abandon, { once: true });
  let abandoned: unknown;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      lineEndings.update(chunk);
      nulBytes.update(chunk);
      eightBit.update(chunk);
      headerBlock.update(chunk);
      // Once the message is refused for any reason, the rest is read and dropped. (A chunk that
      // ends in CR is not refused yet: the LF may open the next chunk.)
      if (spoolError || stream.sizeExceeded || lineEndings.foundBareLineEndingSoFar || nulBytes.foundNul || !incoming) continue;
      try {
        await incoming.write(chunk);
      } catch (err) {
        spoolError = err;
      }
    }
  } catch (err) {
    abandoned = err;
  } finally {
    clearTimeout(timer);
    state.closed.signal.removeEventListener('abort', abandon);
  }

  const summary = {
    event: 'data',
    queueId: incoming?.id,
    sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
    recipients: session.envelope.rcptTo.length,
    size: bytes,
    ms: clock.now() - started,
  };
  /** `counted`: the reason under which the rejection is counted, when it differs from the logged one. */
  const refuseMessage = async (reply: SmtpReply, reason: string, extra: object = {}, counted = reason) => {
    observer.messageRejected('data', counted);
    await incoming?.discard().catch(() => undefined);
    state.log.info({ ...summary, ...extra, outcome: 'rejected', reason, reply: replyLine(reply) }, 'message rejected');
    return reply;
  };

  if (abandoned) {
    // Nobody is left to read a reply; what matters is that nothing half-received stays behind.
    await incoming?.discard().catch(() => undefined);
    state.log.info({ ...summary, outcome: 'abandoned', reason: errorMessage(abandoned) }, 'message abandoned');
    return replies.localError;
  }
  observer.messageReceived();
  if (stream.sizeExceeded) return refuseMessage(replies.messageTooBig(config.limits.maxMessageSize), 'size');
  if (lineEndings.foundBareLineEnding) return refuseMessage(replies.bareLineEnding, 'bare-line-ending');
  if (nulBytes.foundNul) return refuseMessage(replies.nulByte, 'nul-byte');
  if (spoolError || !incoming) {
    return refuseMessage(replies.spoolUnavailable, 'spool', { err: errorMessage(spoolError) });
  }

  if (headerBlock.truncated) return refuseMessage(replies.headerTooLarge(MAX_HEADER_BLOCK), 'header-too-large');
  if (headerBlock.malformed) return refuseMessage(replies.malformedHeader, 'malformed-header');
  // RFC 5321 §6.3: a message that has already passed this many relays is looping; refused
  // before it goes round again. Only the header block counts: a Received line in the body is text.
  const hops = headerBlock.fields().filter((field) => field.key === 'received').length;
  if (hops >= config.limits.maxReceivedHeaders) {
    return refuseMessage(replies.tooManyHops(config.limits.maxReceivedHeaders), 'too-many-hops', { hops });
  }
  // A header only Postern writes, written by the client, forges the trace (see ownHeaderClaim);
  // checked after the hop count, so a real loop through Postern is reported as the loop it is.
  const claimed = ownHeaderClaim(headerBlock.fields(), config.hostname);
  if (claimed) return refuseMessage(replies.forgedOwnHeader, 'forged-own-header', { field: claimed });

  // The data stage: rules see the header fields and can read the message back from the spool.
  const written = incoming;
  let verdict: StageResult;
  try {
    verdict = await stages.check('data', session, state, {
      queueId: incoming.id,
      message: {
        // Frozen: no rule (an operator's module included) can change what the next rule sees.
        headers: Object.freeze(headerBlock.fields().map((field) => Object.freeze(field))),
        size: bytes,
        open: () => Readable.from(readBack(written)),
      },
    });
  } catch (err) {
    return refuseMessage(replies.localError, 'policy-error', { err: errorMessage(err) }, 'local-error');
  }
  if (verdict.refusal) return refuseMessage(verdict.refusal, 'policy', { rule: state.refusedBy }, state.refusedBy ?? 'policy');

  const mailFrom = session.envelope.mailFrom;
  try {
    // The Received: header travels beside the message in the envelope, so the message file
    // stays exactly the client's bytes (what policy rules read, what DKIM will sign).
    const trace = receivedHeader({
      helo: session.hostNameAppearsAs,
      clientAddress: session.remoteAddress,
      hostname: config.hostname,
      queueId: incoming.id,
      tlsProtocol: state.tlsProtocol,
      tlsCipher: state.tlsCipher,
      authenticatedUser: config.received.includeAuthUser ? userName(session) : undefined,
      date: new Date(clock.now()),
    });
    const prepended = trace + verdict.headers.join('');
    // Signed before the commit, so what is queued is exactly what is sent (and verified).
    const signature = deps.signer
      ? await deps.signer.sign({
          from: headerBlock.fields().filter((field) => field.key === 'from').map((field) => field.value),
          prepended,
          open: () => Readable.from(readBack(written)),
        })
      : '';
    await incoming.commit({
      headers: signature + prepended,
      sender: mailFrom ? mailFrom.address : '',
      recipients: session.envelope.rcptTo.map((r) => r.address),
      user: userName(session),
      clientIp: session.remoteAddress,
      smtpUtf8: session.envelope.smtpUtf8 || undefined,
      bodyType: session.envelope.bodyType === '8bitmime' ? '8bitmime' : '7bit',
      // What the next hop must offer depends on the bytes, not on BODY= (see eightBitContent).
      eightBit: eightBitPlacement(headerBlock.eightBit || !isAscii(Buffer.from(signature + prepended)), eightBit.foundEightBit),
    });
  } catch (err) {
    return refuseMessage(replies.spoolUnavailable, 'spool', { err: errorMessage(err) });
  }
  const reply = replies.queued(incoming.id);
  observer.messageAccepted(bytes);
  state.log.info({ ...summary, outcome: 'queued', reply: replyLine(reply) }, 'message queued');
  return reply;
}

async function* readBack(incoming: IncomingMessageWriter): AsyncGenerator<Buffer> {
  yield* (await incoming.openData()) as AsyncIterable<Buffer>;
}

/**
 * smtp-server reports a failed handshake (implicit TLS or STARTTLS) as an error whose details
 * say stage 'connect'; a socket that merely closed during the handshake comes as a
 * SocketError and is a client leaving, not a TLS failure.
 */
function isTlsHandshakeFailure(err: unknown): boolean {
  const { meta, code } = err as { meta?: { stage?: unknown }; code?: unknown };
  return meta?.stage === 'connect' && code !== 'SocketError';
}

function userName(session: SMTPServerSession): string | undefined {
  const user = session.user as { name?: string } | undefined;
  return user?.name;
}

interface ConnectionHandle {
  session: SMTPServerSession;
  send(code: number, text: string): void;
  close(): void;
}

/** Closes one session with a reply, through smtp-server so its bookkeeping stays right. */
function closeSession(server: SMTPServer, session: SMTPServerSession, reply: SmtpReply): void {
  closeMatching(server, (connection) => connection.session === session, reply);
}

/** The same, for the session on a given raw socket (matched by the client's address and port). */
function closeSessionOn(server: SMTPServer, socket: Socket, reply: SmtpReply): void {
  const port = socket.remotePort;
  const address = normalizeAddress(socket.remoteAddress);
  const matched = closeMatching(
    server,
    (connection) => connection.session.remotePort === port && connection.session.remoteAddress === address,
    reply,
  );
  if (!matched) socket.destroy(); // no session on it yet: nothing else owns the socket
}

function closeMatching(server: SMTPServer, match: (connection: ConnectionHandle) => boolean, reply: SmtpReply): boolean {
  for (const connection of server.connections as Set<ConnectionHandle>) {
    if (match(connection)) {
      connection.send(reply.code, replyText(reply));
      connection.close();
      return true;
    }
  }
  return false;
}

function listen(server: SMTPServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      resolve(server.server.address() as AddressInfo);
    });
  });
}

/**
 * Stop listening now; give open sessions up to graceMs to finish their work; then smtp-server
 * answers any further command with 421 and closes what is left after its closeTimeout.
 */
async function closeServer(server: SMTPServer, graceMs: number): Promise<void> {
  server.server.close();
  await until(() => server.connections.size === 0, graceMs);
  server.close();
  await until(() => server.connections.size === 0, 2000);
}

async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
