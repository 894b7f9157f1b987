/**
 * The messages the load generator sends: RFC 5322 headers that identify each message
 * (X-Bench-Id lets the sink match a delivery to its acceptance), then printable text in CRLF
 * lines up to the requested size, dot-stuffed and terminated for DATA (RFC 5321 section 4.5.2).
 */

export const BENCH_ID_HEADER = 'X-Bench-Id';

/** Lines of at most 78 characters, as RFC 5322 section 2.1.1 recommends. */
const LINE_LENGTH = 76;
const WORDS = 'the quick brown fox jumps over a lazy dog while postern relays every message durably and fast'.split(' ');

/** `<runId>-<n>`: the run id holds no '-', so the last '-' splits the two apart again. */
export function benchId(runId: string, n: number): string {
  return `${runId}-${n}`;
}

export function parseBenchId(id: string): { runId: string; n: number } | undefined {
  const cut = id.lastIndexOf('-');
  if (cut <= 0) return undefined;
  const n = Number(id.slice(cut + 1));
  return Number.isSafeInteger(n) && n >= 0 ? { runId: id.slice(0, cut), n } : undefined;
}

/**
 * A line that starts with '.' gets another '.' in front (RFC 5321 section 4.5.2), so the
 * server never mistakes it for the end of the data.
 */
export function dotStuff(text: string): string {
  return text.replace(/(^|\r\n)\./g, '$1..');
}

/** Printable text of exactly `bytes` bytes (at least 2), in CRLF-terminated lines. */
export function bodyText(bytes: number): string {
  const lines: string[] = [];
  let total = 0;
  let word = 0;
  while (total < bytes) {
    let line = '';
    while (line.length < LINE_LENGTH) {
      const next = WORDS[word++ % WORDS.length]!;
      line += line.length === 0 ? next : ` ${next}`;
    }
    line = line.slice(0, LINE_LENGTH);
    const room = bytes - total - 2;
    if (room < line.length) line = line.slice(0, Math.max(room, 0));
    lines.push(line);
    total += line.length + 2;
  }
  return lines.map((line) => `${line}\r\n`).join('');
}

export interface MessageHeaderFields {
  runId: string;
  n: number;
  from: string;
  to: string[];
  /** Domain for the Message-ID. */
  domain: string;
}

/** The header block, ending in the empty line that separates it from the body. */
export function headerBlock(fields: MessageHeaderFields): string {
  const id = benchId(fields.runId, fields.n);
  return dotStuff(
    [
      `From: Bench <${fields.from}>`,
      `To: ${fields.to.join(', ')}`,
      `Subject: Postern benchmark message ${fields.n}`,
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <${id}@${fields.domain}>`,
      `${BENCH_ID_HEADER}: ${id}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      '',
    ].join('\r\n'),
  );
}

/**
 * Builds each message's DATA payload: its own header block, then a body shared by every
 * message of the run (built once, so a 10 MB scenario does not spend the generator's CPU
 * rebuilding text), then the terminating ".". Sizes count header and body together.
 */
export class MessageFactory {
  private readonly body: Buffer;
  private static readonly END = Buffer.from('.\r\n');
  /** A header block is about this long; the body makes up the rest of the requested size. */
  private static readonly HEADER_ESTIMATE = 330;

  constructor(size: number) {
    this.body = Buffer.from(dotStuff(bodyText(Math.max(size - MessageFactory.HEADER_ESTIMATE, 2))), 'latin1');
  }

  /** The payload as buffers to write in order; small messages come as one buffer, one write. */
  payload(fields: MessageHeaderFields): Buffer[] {
    const header = Buffer.from(headerBlock(fields), 'latin1');
    if (this.body.length < 1024 * 1024) return [Buffer.concat([header, this.body, MessageFactory.END])];
    return [header, this.body, MessageFactory.END];
  }
}

/**
 * The a= tag (e.g. "rsa-sha256", "ed25519-sha256") of every DKIM-Signature field in a header
 * block, top to bottom, "?" for a field without one. Folded lines are unfolded first (RFC 5322
 * section 2.2.3); tags are separated by ';' with white space allowed around them (RFC 6376
 * section 3.2).
 */
export function dkimSignatureAlgorithms(header: string): string[] {
  const algorithms: string[] = [];
  for (const line of header.replace(/\r?\n[ \t]/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== 'dkim-signature') continue;
    const tag = /(?:^|;)\s*a\s*=\s*([A-Za-z0-9-]+)/.exec(line.slice(colon + 1));
    algorithms.push(tag?.[1]?.toLowerCase() ?? '?');
  }
  return algorithms;
}
