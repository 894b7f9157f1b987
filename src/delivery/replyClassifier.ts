/**
 * What an SMTP reply, or a failure to get one, means for a recipient:
 * - delivered: the next hop took responsibility for it (2xx, RFC 5321 section 4.2.1);
 * - deferred: try again later (4xx, or no reply at all: the connection, TLS or login failed);
 * - failed: the next hop refused it for good (5xx).
 * Pure functions, so the rules are tested without a network.
 */
export type DeliveryOutcome = 'delivered' | 'deferred' | 'failed';

/** The fields of a nodemailer error this module reads (see nodemailer's NodemailerError). */
export interface SendErrorLike {
  message?: string;
  code?: string;
  /** The SMTP command in flight: 'CONN', 'MAIL FROM', 'RCPT TO', 'DATA', 'AUTH PLAIN', 'API', ... */
  command?: string;
  response?: string;
  responseCode?: number;
}

/**
 * Replies that carry a 5xx code yet say nothing about the message: they mean this gateway's
 * own session with the smarthost is wrong (credentials, TLS or configuration). Bouncing
 * every queued message for a fixable setting would be worse than waiting for the fix.
 * - 503 bad sequence of commands (RFC 5321 section 4.2.4), e.g. MAIL refused before AUTH.
 * - 530 authentication required, 538 encryption required (RFC 4954 section 6).
 * - 535 authentication credentials invalid, 534 mechanism too weak (RFC 4954 section 6).
 */
const SESSION_PROBLEM_CODES = new Set([503, 530, 534, 535, 538]);

/** The outcome of a reply code given to a recipient or the message. */
export function classifyReplyCode(code: number): DeliveryOutcome {
  if (code >= 200 && code < 300) return 'delivered';
  if (code >= 500 && code < 600 && !SESSION_PROBLEM_CODES.has(code)) return 'failed';
  // 4xx is transient by definition; anything else (1xx, 3xx where a final reply was due,
  // garbage) is a protocol oddity of the server, not a verdict on the message.
  return 'deferred';
}

/** The commands whose replies are about this message; every other reply is about the session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

/**
 * The outcome of an error that ended the whole transaction.
 *
 * A reply to MAIL FROM, RCPT TO or DATA is that reply's outcome. A reply while the session
 * was being set up (greeting, EHLO, STARTTLS, AUTH) speaks about this gateway's connection
 * to the smarthost, not about the message, even with a 5xx code (a refused login, STARTTLS
 * not offered): deferred, like an error without any reply (refused connection, timeout, TLS
 * handshake, a broken stream). Nodemailer's own checks of the envelope ('API') and of the
 * SIZE limit the server announced (RFC 1870) fail again on every attempt: failed.
 */
export function classifySendError(err: SendErrorLike): DeliveryOutcome {
  const command = err.command ?? '';
  if (err.code === 'EAUTH' || err.code === 'ENOAUTH' || err.code === 'ETLS') return 'deferred';
  if (typeof err.responseCode === 'number' && err.responseCode > 0) {
    return MESSAGE_COMMANDS.has(command) ? classifyReplyCode(err.responseCode) : 'deferred';
  }
  if ((err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && (command === 'API' || command === 'MAIL FROM')) return 'failed';
  return 'deferred';
}

/** The text to record and log for an error: the server's own reply when there is one. */
export function describeSendError(err: SendErrorLike): string {
  if (err.response) return err.response;
  const code = err.code ? `${err.code}: ` : '';
  return `${code}${err.message ?? 'unknown error'}`;
}

/** Characters of a next hop's reply kept in the queue record and the logs. */
export const MAX_RECORDED_REPLY = 2000;

/**
 * A reply as it is recorded: a hostile or broken server may send tens of kilobytes of text,
 * which would otherwise be written into the envelope at every attempt and into every log line.
 */
export function boundedReply(reply: string): string {
  if (reply.length <= MAX_RECORDED_REPLY) return reply;
  return `${reply.slice(0, MAX_RECORDED_REPLY)}... (${reply.length - MAX_RECORDED_REPLY} more characters)`;
}
