/**
 * Every reply Postern itself sends, in one place: reply code, RFC 3463 enhanced status code
 * and text. Handlers never write codes inline; they pick a reply from here. smtp-server's own
 * replies (syntax errors, sequence errors) keep the enhanced codes the library maps for them.
 */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

const reply = (code: number, enhanced: string, text: string): SmtpReply => ({ code, enhanced, text });

export const replies = {
  // RFC 3207 §4 / RFC 4954 §4: no mail and no credentials before TLS.
  tlsRequired: reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  // RFC 4954 §6: 530 5.7.0 when a transaction needs authentication.
  authRequired: reply(530, '5.7.0', 'Authentication required'),
  authInvalid: reply(535, '5.7.8', 'Authentication credentials invalid'),
  // RFC 4954 §6: 454 4.7.0 "Temporary authentication failure".
  authLocked: reply(454, '4.7.0', 'Too many failed logins, try again later'),
  authUnavailable: reply(454, '4.7.0', 'Temporary authentication failure, try again later'),
  tlsTooLate: reply(421, '4.7.0', 'TLS was not started in time, closing connection'),
  tooManyConnections: reply(421, '4.7.0', 'Too many connections, try again later'),
  // RFC 3463 X.1.7 / X.1.3: bad sender's / destination mailbox address syntax.
  badSenderSyntax: reply(501, '5.1.7', 'Bad sender address syntax'),
  badRecipientSyntax: reply(501, '5.1.3', 'Bad recipient address syntax'),
  quotedLocalPart: reply(553, '5.1.3', 'Quoted local parts are not accepted'),
  addressTooLong: reply(501, '5.5.4', 'Address too long (RFC 5321 section 4.5.3.1)'),
  // RFC 6531 §3.5: a non-ASCII address in a transaction that did not ask for SMTPUTF8.
  needsSmtpUtf8: reply(553, '5.6.7', 'Non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM'),

  tooManyConnectionsFromAddress: reply(421, '4.7.0', 'Too many connections from your address, try again later'),
  // RFC 5321 §4.5.3.1.10: a server refusing further recipients answers 452, and the client
  // sends the rest in another transaction.
  unsupportedParameter: (name: string) => reply(555, '5.5.4', `Unsupported parameter ${name}`),
  tooManyRecipients: (limit: number) => reply(452, '4.5.3', `Too many recipients, at most ${limit} per message`),
  // RFC 1870 §6.2 / RFC 3463 5.3.4: message too big for system.
  messageTooBig: (limit: number) => reply(552, '5.3.4', `Message size exceeds the limit of ${limit} bytes`),
  // Bare CR or LF inside DATA is how SMTP smuggling hides a second message (CVE-2023-51764);
  // refused as Postfix's smtpd_forbid_bare_newline does.
  bareLineEnding: reply(554, '5.6.0', 'Message contains a bare CR or LF; lines must end with CRLF'),
  // RFC 2045 §2.7/§2.8, RFC 6152 §3: no NUL in 7bit or 8bit data; a hop that drops NULs would
  // read "<CRLF><NUL>.<CRLF>" as the end of the message (SMTP smuggling).
  nulByte: reply(554, '5.6.0', 'Message contains a NUL byte, which SMTP mail may not carry'),
  // Every hop must read the same header block: one past the limit Postern parses, or with a
  // line that is no field, is refused rather than checked in part.
  headerTooLarge: (limit: number) => reply(552, '5.3.4', `Message header block exceeds ${limit} bytes`),
  malformedHeader: reply(550, '5.6.0', 'Malformed header: a line that is neither a header field nor a continuation'),
  // RFC 3463 X.7.1 (delivery not authorized): a client may not write Postern's own trace or
  // authentication fields (RFC 5321 §4.4, RFC 8601 §5).
  forgedOwnHeader: reply(550, '5.7.1', 'Message carries a header field only Postern may write'),
  // RFC 5321 §6.3 / RFC 3463 X.4.6 (routing loop detected): Postfix's "Too many hops".
  tooManyHops: (limit: number) => reply(554, '5.4.6', `Too many hops: ${limit} or more Received header fields, a mail loop?`),
  spoolUnavailable: reply(452, '4.3.1', 'Insufficient system storage, try again later'),
  localError: reply(451, '4.3.0', 'Local error in processing, try again later'),
  dataTimeout: reply(421, '4.4.2', 'Timeout while receiving the message, closing connection'),
  queued: (queueId: string) => reply(250, '2.0.0', `Ok: queued as ${queueId}`),
} as const;

/** The text smtp-server writes after the reply code: the enhanced code leads the text. */
export function replyText(r: SmtpReply): string {
  return `${r.enhanced} ${r.text}`;
}

/** The one line that goes on the wire, for logs. */
export function replyLine(r: SmtpReply): string {
  return `${r.code} ${r.enhanced} ${r.text}`;
}

/** An error carrying a reply, the shape smtp-server's handler callbacks expect. */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  constructor(readonly reply: SmtpReply) {
    super(replyText(reply));
    this.name = 'SmtpReplyError';
    this.responseCode = reply.code;
  }
}
