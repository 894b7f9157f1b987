import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';

/**
 * Delivery status notifications: the bounce ("failed") and the delay warning ("delayed") this
 * gateway sends to a message's envelope sender.
 *
 * The shape is RFC 3464 inside RFC 6522's multipart/report (which obsoletes RFC 3462):
 *   1. text/plain: what happened, for people;
 *   2. message/delivery-status: the same, for programs (per-message, then per-recipient fields);
 *   3. text/rfc822-headers: the original message's header block, so the sender can tell which
 *      message it was without us returning (possibly large, possibly sensitive) content.
 * The message is marked `Auto-Submitted: auto-replied` (RFC 3834 section 5), so well-behaved
 * responders do not answer it. It must be sent with the null reverse-path (RFC 5321 section
 * 4.5.5), which is the caller's part.
 *
 * Everything is CRLF, no line reaches 998 octets (RFC 5322 section 2.1.1), and the message is
 * 7-bit except where the content itself is not:
 * - returned headers carrying 8-bit bytes are passed as they are, with
 *   Content-Transfer-Encoding: 8bit, so the message needs 8BITMIME (RFC 6152) to travel;
 * - an address that is not ASCII (an SMTPUTF8 address, RFC 6531) cannot be written in a
 *   message/delivery-status, whose address types are ASCII only. Such a notification is built
 *   as RFC 6533 describes instead: message/global-delivery-status (report-type likewise, as
 *   RFC 6522 section 3 makes the report-type the subtype of the second part), the `utf-8`
 *   address type for the addresses that need it, message/global-headers for the returned
 *   headers and a UTF-8 text part. Such a message needs SMTPUTF8 to travel, as did the
 *   original. Remote replies, which should be ASCII, have anything else replaced by "?" in a
 *   plain notification and are kept in a global one.
 * `dsnTransport` tells the caller which of these SMTP extensions a notification needs.
 */

export type DsnAction = 'failed' | 'delayed';

export interface DsnRecipient {
  /** The envelope recipient (Final-Recipient: rfc822; ...). */
  address: string;
  action: DsnAction;
  /** The remote server's reply or our own reason, e.g. "550 5.1.1 <bob@example.com>: no such user" or "example.invalid: domain does not exist (NXDOMAIN)". */
  reply: string;
  /** The host that gave the reply, when one did (Remote-MTA: dns; host). */
  remoteMta?: string;
  /** When the last attempt was made; the Last-Attempt-Date field is left out without it. */
  lastAttemptAt?: Date;
}

export interface DsnInput {
  /** This gateway's hostname. */
  reportingMta: string;
  /** Of the original message. */
  queueId: string;
  arrivalDate: Date;
  now: Date;
  /** The original envelope sender: the DSN's recipient (To:). Never ''. */
  returnTo: string;
  /** All of one action kind, or mixed; the text part explains each. */
  recipients: DsnRecipient[];
  /** The original message's header block (up to the empty line), raw bytes; returned as text/rfc822-headers. */
  originalHeaders: Buffer;
  /** For action delayed: when we will give up. */
  willRetryUntil?: Date;
  /** Random source for the boundary and Message-ID; crypto.randomBytes unless pinned. */
  random?: (size: number) => Buffer;
}

/** What the SMTP transaction carrying a notification must declare (see the module comment). */
export interface DsnTransport {
  /** Some part is 8-bit: send with BODY=8BITMIME (RFC 6152). */
  eightBitMime: boolean;
  /** An address is not ASCII: send with SMTPUTF8 (RFC 6531). */
  smtpUtf8: boolean;
}

/** A reply longer than this is cut: a hostile server must not make the notification huge. */
const MAX_REPLY_CHARS = 4000;
/** Lines of the text part are wrapped here, as mail readers expect. */
const TEXT_WIDTH = 76;
/** Header fields (and the delivery-status fields, which share their syntax) are folded here (RFC 5322 section 2.1.1 "SHOULD"). */
const FOLD_WIDTH = 78;
/** The hard limit, with the CRLF (RFC 5322 section 2.1.1 "MUST"): 998 characters before it. */
const MAX_LINE = 998;

const CRLF = '\r\n';
/** The longest address or host name accepted: RFC 5321 section 4.5.3.1.3's limit on a path. */
const MAX_VALUE_OCTETS = 256;

/** Build the notification, ready to be spooled or sent, CRLF throughout. */
export function buildDsn(input: DsnInput): Buffer {
  validate(input);
  const random = input.random ?? randomBytes;
  const global = needsGlobal(input);
  const reportingMta = asciiHost(input.reportingMta);
  const recipients = input.recipients.map((r) => ({ ...r, reply: cleanReply(r.reply, global) }));
  const anyFailed = recipients.some((r) => r.action === 'failed');

  const text = explanation(input, recipients, reportingMta);
  const status = deliveryStatus(input, recipients, reportingMta, global);
  const returned = normalizeHeaderBlock(input.originalHeaders);
  const returnedEightBit = hasEightBit(returned);

  const boundary = pickBoundary(random, [text, status, returned.toString('latin1')]);
  const messageId = `<${random(16).toString('hex')}@${reportingMta}>`;
  const originalId = originalMessageId(input.originalHeaders);

  const head: string[] = [
    `From: Mail Delivery System <MAILER-DAEMON@${reportingMta}>`,
    `To: <${input.returnTo}>`,
    `Subject: ${anyFailed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)'}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-ID: ${messageId}`,
  ];
  // Lets mail readers thread the notice with the message it is about.
  if (originalId) head.push(`In-Reply-To: ${originalId}`, `References: ${originalId}`);
  const reportType = global ? 'global-delivery-status' : 'delivery-status';
  head.push(
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${reportType};`,
    ` boundary="${boundary}"`,
  );

  const part = (headers: string[], body: string): string => `--${boundary}${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}${body}`;
  const textPart = part(
    [
      'Content-Description: Notification',
      `Content-Type: text/plain; charset=${global ? 'utf-8' : 'us-ascii'}`,
      `Content-Transfer-Encoding: ${global ? '8bit' : '7bit'}`,
    ],
    text,
  );
  const statusPart = part(
    [
      'Content-Description: Delivery report',
      `Content-Type: message/${reportType}`,
      `Content-Transfer-Encoding: ${global ? '8bit' : '7bit'}`,
    ],
    status,
  );
  const headersPart = part(
    [
      'Content-Description: Original message headers',
      `Content-Type: ${global ? 'message/global-headers' : 'text/rfc822-headers'}`,
      `Content-Transfer-Encoding: ${returnedEightBit ? '8bit' : '7bit'}`,
    ],
    '',
  );

  return Buffer.concat([
    Buffer.from(
      head.join(CRLF) + CRLF + CRLF + 'This is a MIME-encapsulated message.' + CRLF + CRLF + textPart + CRLF + statusPart + CRLF + headersPart,
      'utf8',
    ),
    returned,
    Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'latin1'),
  ]);
}

/** Which SMTP extensions the notification for `input` needs (BODY=8BITMIME, SMTPUTF8). */
export function dsnTransport(input: Pick<DsnInput, 'returnTo' | 'recipients' | 'originalHeaders'>): DsnTransport {
  const smtpUtf8 = needsGlobal(input);
  return { smtpUtf8, eightBitMime: smtpUtf8 || hasEightBit(input.originalHeaders) };
}

/**
 * The RFC 3463 status for a recipient: the enhanced code in the reply when it has one whose
 * class fits the action (5.x.x for failed, 4.x.x for delayed), else 5.0.0 / 4.0.0. A class
 * that does not fit (a 4.x.x code in a reply that ended in failure, because we gave up on a
 * message a server kept deferring) would tell the sender's software the opposite of what
 * happened, so the generic code of the right class is used instead.
 */
export function dsnStatus(reply: string, action: DsnAction): string {
  const wanted = action === 'failed' ? '5' : '4';
  // RFC 3463 section 2: class "." subject (1-3 digits) "." detail (1-3 digits), given
  // after the basic reply code (RFC 2034 section 4), or on its own in our own reasons.
  const match = /^\s*(?:\d{3}[ -]+)?([245])\.(\d{1,3})\.(\d{1,3})(?![\w.])/.exec(reply);
  if (match && match[1] === wanted) return `${match[1]}.${Number(match[2])}.${Number(match[3])}`;
  return `${wanted}.0.0`;
}

/** A default header block limit a little over Postfix's header_size_limit (100 KiB). */
const DEFAULT_HEADER_LIMIT = 128 * 1024;

/**
 * Read a message stream up to and including the empty line ending its header block (CRLF or
 * LF, RFC 5322 section 2.1), at most `limit` bytes (then cut at the last complete line);
 * destroys the stream after. A stream that ends before any empty line is all header, and
 * is returned whole (within the limit).
 */
export async function readHeaderBlock(stream: Readable, limit = DEFAULT_HEADER_LIMIT): Promise<Buffer> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`readHeaderBlock limit must be a positive integer, got ${limit}`);
  const chunks: Buffer[] = [];
  let kept = 0;
  // Where the block ends: after the empty line, else after the last complete line.
  let end = -1;
  let lastLineEnd = 0;
  // At the start of a line (or after a CR there): an LF now ends an empty line.
  let atLineStart = true;
  let crAtLineStart = false;
  try {
    reading: for await (const data of stream) {
      const chunk: Buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : (data as Buffer);
      for (let i = 0; i < chunk.length; i++) {
        if (kept + i >= limit) {
          chunks.push(chunk.subarray(0, i));
          kept += i;
          end = lastLineEnd;
          break reading;
        }
        const byte = chunk[i];
        if (byte === 0x0a) {
          if (atLineStart || crAtLineStart) {
            chunks.push(chunk.subarray(0, i + 1));
            kept += i + 1;
            end = kept;
            break reading;
          }
          atLineStart = true;
          lastLineEnd = kept + i + 1;
        } else if (byte === 0x0d && atLineStart) {
          atLineStart = false;
          crAtLineStart = true;
        } else {
          atLineStart = false;
          crAtLineStart = false;
        }
      }
      chunks.push(chunk);
      kept += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  const block = Buffer.concat(chunks, kept);
  return end === -1 ? block : block.subarray(0, end);
}

function validate(input: DsnInput): void {
  if (input.returnTo === '') {
    // RFC 5321 section 4.5.5 and RFC 3464 section 2: a message with the null sender never
    // gets a notification; sending one is how bounce loops start.
    throw new RangeError('A delivery status notification needs a sender to return to; the original sender was empty (<>)');
  }
  if (input.recipients.length === 0) throw new RangeError(`A delivery status notification for ${input.queueId} needs at least one recipient`);
  // Addresses may hold spaces (a quoted local part, RFC 5321 section 4.1.2) but no control
  // characters, and the one written as <...> in To: no angle brackets; host names and the
  // queue ID are single tokens.
  const addresses = new Set(['returnTo', 'recipient address']);
  for (const [name, value] of [
    ['returnTo', input.returnTo],
    ['reportingMta', input.reportingMta],
    ['queueId', input.queueId],
    ...input.recipients.map((r) => ['recipient address', r.address] as const),
    ...input.recipients.filter((r) => r.remoteMta !== undefined).map((r) => ['remoteMta', r.remoteMta!] as const),
  ] as const) {
    const refused = addresses.has(name) ? (name === 'returnTo' ? /[\x00-\x1f\x7f<>]/ : /[\x00-\x1f\x7f]/) : /[\s<>]/;
    if (value === '' || refused.test(value)) {
      throw new TypeError(`A delivery status notification cannot carry ${name} ${JSON.stringify(value)}`);
    }
    // Every value goes on one line of a header or field, which must stay under MAX_LINE;
    // this only refuses what SMTP could not have carried.
    if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_OCTETS) {
      throw new TypeError(`A delivery status notification cannot carry ${name} of ${Buffer.byteLength(value, 'utf8')} octets (at most ${MAX_VALUE_OCTETS})`);
    }
  }
  const dates: Array<[string, Date | undefined]> = [
    ['arrivalDate', input.arrivalDate],
    ['now', input.now],
    ['willRetryUntil', input.willRetryUntil],
    ...input.recipients.map((r) => ['lastAttemptAt', r.lastAttemptAt] as [string, Date | undefined]),
  ];
  for (const [name, date] of dates) {
    if (date !== undefined && Number.isNaN(date.getTime())) throw new RangeError(`A delivery status notification needs a valid ${name}`);
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

function needsGlobal(input: Pick<DsnInput, 'returnTo' | 'recipients'>): boolean {
  return NON_ASCII.test(input.returnTo) || input.recipients.some((r) => NON_ASCII.test(r.address));
}

function hasEightBit(bytes: Buffer): boolean {
  return bytes.some((b) => b > 0x7f);
}

/** A hostname as the `dns` type wants it: A-labels (RFC 5890), since that type is ASCII only. */
function asciiHost(host: string): string {
  if (!NON_ASCII.test(host)) return host;
  const ascii = domainToASCII(host);
  if (ascii === '') throw new TypeError(`A delivery status notification cannot carry host name ${JSON.stringify(host)}`);
  return ascii;
}

/**
 * A reply as one line of text: the lines of a multi-line SMTP reply joined with spaces (as
 * Postfix does), control characters dropped, non-ASCII replaced in a plain notification, and
 * the length capped.
 */
function cleanReply(reply: string, global: boolean): string {
  let text = reply
    .split(/\r\n|\r|\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ')
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .replace(/ {2,}/g, ' ');
  if (!global) text = text.replace(/[^\x20-\x7e]/g, '?');
  text = [...text].length > MAX_REPLY_CHARS ? `${[...text].slice(0, MAX_REPLY_CHARS).join('')}...` : text;
  return text === '' ? 'no reason given' : text;
}

/** The human-readable part: what happened to each recipient, and what comes next. */
function explanation(input: DsnInput, recipients: DsnRecipient[], reportingMta: string): string {
  const paragraphs: string[] = [`This is the mail delivery system at ${reportingMta}.`];
  const failed = recipients.filter((r) => r.action === 'failed');
  const delayed = recipients.filter((r) => r.action === 'delayed');
  const received = `Your message (queue ID ${input.queueId}) was received on ${rfc5322Date(input.arrivalDate)}.`;

  const describe = (r: DsnRecipient, outcome: string): string => {
    const lines = [`<${r.address}>: ${outcome}`];
    const who = r.remoteMta ? `The mail server ${asciiHost(r.remoteMta)} said:` : 'Reason:';
    lines.push(...wrap(who, TEXT_WIDTH, '    '));
    lines.push(...wrap(r.reply, TEXT_WIDTH, '        '));
    if (r.lastAttemptAt) lines.push(`    Last attempt: ${rfc5322Date(r.lastAttemptAt)}`);
    return lines.join(CRLF);
  };

  if (failed.length > 0) {
    paragraphs.push(
      `${received} It could not be delivered to the ${plural(failed.length, 'recipient')} below, and no further attempts will be made.`,
      ...failed.map((r) => describe(r, 'delivery failed')),
    );
  }
  if (delayed.length > 0) {
    const until = input.willRetryUntil
      ? `The mail system will keep trying until ${rfc5322Date(input.willRetryUntil)}.`
      : 'The mail system will keep trying.';
    paragraphs.push(
      `${failed.length > 0 ? '' : `${received} `}It has not yet been delivered to the ${plural(delayed.length, 'recipient')} below. ${until} You do not need to do anything yet; you will be told if it cannot be delivered in the end.`,
      ...delayed.map((r) => describe(r, 'delivery delayed')),
    );
  }
  paragraphs.push('The header of your message is attached.');
  return (
    paragraphs
      .map((p) => (p.includes(CRLF) ? p : wrap(p, TEXT_WIDTH, '').join(CRLF)))
      .join(CRLF + CRLF) + CRLF
  );
}

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${count} ${noun}s`;
}

/** The machine-readable part (RFC 3464 section 2.2 per-message, section 2.3 per-recipient). */
function deliveryStatus(input: DsnInput, recipients: DsnRecipient[], reportingMta: string, global: boolean): string {
  const blocks: string[][] = [
    [
      `Reporting-MTA: dns; ${reportingMta}`,
      // RFC 3464 has no field for the queue ID; an "X-" extension field (section 2.4)
      // carries it, as Postfix's X-Postfix-Queue-ID does, so the sender can quote it.
      `X-Postern-Queue-ID: ${input.queueId}`,
      `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`,
    ],
  ];
  for (const r of recipients) {
    const fields = [
      `Final-Recipient: ${addressField(r.address, global)}`,
      `Action: ${r.action}`,
      `Status: ${dsnStatus(r.reply, r.action)}`,
    ];
    if (r.remoteMta) fields.push(`Remote-MTA: dns; ${asciiHost(r.remoteMta)}`);
    // RFC 3464 section 2.3.6: "smtp" when the text is an SMTP reply; our own reasons (DNS
    // failures, timeouts) are no reply, so they get an extension type.
    const diagnosticType = /^\d{3}(?:[ -]|$)/.test(r.reply) ? 'smtp' : 'X-Postern';
    fields.push(fold(`Diagnostic-Code: ${diagnosticType}; ${r.reply}`));
    if (r.lastAttemptAt) fields.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`);
    if (r.action === 'delayed' && input.willRetryUntil) fields.push(`Will-Retry-Until: ${rfc5322Date(input.willRetryUntil)}`);
    blocks.push(fields);
  }
  return blocks.map((fields) => fields.join(CRLF) + CRLF).join(CRLF);
}

/**
 * An address with its type (RFC 3464 section 2.1.2). ASCII addresses are "rfc822". Others
 * use RFC 6533 section 3's "utf-8" type, written as utf-8-addr-unitext: UTF-8 as it is,
 * except the characters that syntax leaves out (controls, space, "+", "=", "\"), which are
 * written \x{HEX}.
 */
function addressField(address: string, global: boolean): string {
  if (!global || !NON_ASCII.test(address)) return `rfc822; ${address}`;
  const unitext = [...address]
    .map((ch) => (/[\x00-\x20+=\\\x7f]/.test(ch) ? `\\x{${ch.codePointAt(0)!.toString(16).toUpperCase()}}` : ch))
    .join('');
  const field = `utf-8; ${unitext}`;
  // Only an address made mostly of escaped characters gets here; a field cannot be folded
  // inside an address, so such an address cannot be reported.
  if (utf8Length(field) > MAX_LINE - 40) throw new TypeError(`A delivery status notification cannot carry recipient address ${JSON.stringify(address)}: too long once escaped`);
  return field;
}

/**
 * Fold a field at white space so its lines stay near FOLD_WIDTH (RFC 5322 section 2.2.3);
 * a word too long for any line (a hostile reply without spaces) is split hard so no line
 * reaches MAX_LINE octets. Unfolding such a split adds a space inside that word.
 */
function fold(field: string): string {
  const words = field.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line === '') {
      line = word;
    } else if (utf8Length(line) + 1 + utf8Length(word) <= FOLD_WIDTH) {
      line += ` ${word}`;
    } else {
      lines.push(line);
      line = ` ${word}`;
    }
    while (utf8Length(line) > MAX_LINE - 2) {
      const [head, rest] = splitAtBytes(line, FOLD_WIDTH);
      lines.push(head);
      line = ` ${rest}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join(CRLF);
}

/** Wrap text at spaces to `width` characters, each line indented; longer words are split. */
function wrap(text: string, width: number, indent: string): string[] {
  const room = width - indent.length;
  const lines: string[] = [];
  let line = '';
  for (let word of text.split(' ').filter((w) => w !== '')) {
    while ([...word].length > room) {
      if (line !== '') {
        lines.push(line);
        line = '';
      }
      const chars = [...word];
      lines.push(chars.slice(0, room).join(''));
      word = chars.slice(room).join('');
    }
    if (word === '') continue;
    if (line === '') line = word;
    else if ([...line].length + 1 + [...word].length <= room) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines.map((l) => indent + l);
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Split a string after at most `bytes` UTF-8 octets, never inside a character. */
function splitAtBytes(text: string, bytes: number): [string, string] {
  let used = 0;
  let index = 0;
  for (const ch of text) {
    const size = utf8Length(ch);
    if (used + size > bytes) break;
    used += size;
    index += ch.length;
  }
  return [text.slice(0, index), text.slice(index)];
}

/**
 * The returned header block with CRLF line ends (bare LF and CR are accepted on input),
 * without the empty line that ended it, and with any line at or over the limit split with a
 * continuation (leading space) so the part stays valid. Bytes are kept as they are.
 */
function normalizeHeaderBlock(block: Buffer): Buffer {
  const lines = block.toString('latin1').split(/\r\n|\r|\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: string[] = [];
  for (let line of lines) {
    if (line === '') break;
    while (line.length > MAX_LINE - 2) {
      out.push(line.slice(0, FOLD_WIDTH));
      line = ` ${line.slice(FOLD_WIDTH)}`;
    }
    out.push(line);
  }
  return Buffer.from(out.length > 0 ? out.join(CRLF) + CRLF : '', 'latin1');
}

/**
 * A boundary no part contains (RFC 2046 section 5.1.1). "=_" cannot occur in quoted-printable
 * or base64 text; the random part makes a collision with the returned headers, which the
 * sender chose, a matter of chance, and the check makes even that impossible.
 */
function pickBoundary(random: (size: number) => Buffer, bodies: string[]): string {
  for (let attempt = 0; attempt < 8; attempt++) {
    const boundary = `=_postern_${random(12).toString('hex')}`;
    if (!bodies.some((body) => body.includes(boundary))) return boundary;
  }
  throw new Error('Could not find a MIME boundary absent from the delivery status notification parts');
}

/** The first Message-ID of the original header block, when it has a well-formed one. */
function originalMessageId(block: Buffer): string | undefined {
  const text = block.toString('latin1');
  const match = /(?:^|\n)message-id[ \t]*:((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)/i.exec(text);
  if (!match) return undefined;
  // RFC 5322 section 3.6.4: "<" id-left "@" id-right ">", printable ASCII.
  const id = /<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>/.exec(match[1]!.replace(/\r?\n/g, ''));
  return id && id[0].length <= 900 ? id[0] : undefined;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * RFC 5322 section 3.3 date-time in UTC with a numeric zone: "Thu, 01 Jan 2026 00:00:00 +0000".
 * (src/smtp has the same for the Received header; delivery does not import from smtp.)
 */
function rfc5322Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${pad(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}
