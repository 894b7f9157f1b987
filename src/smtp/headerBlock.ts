import type { HeaderField } from '../policy/types.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Collects a message's header block (RFC 5322 §2.1: everything before the first empty line)
 * while the message streams past, up to `maxBytes`; the body is never kept.
 */
export class HeaderBlockCollector {
  private readonly chunks: Buffer[] = [];
  private collected = 0;
  private done = false;
  /** True when the header block was longer than maxBytes (it is cut there). */
  truncated = false;

  constructor(private readonly maxBytes: number) {}

  update(chunk: Buffer): void {
    if (this.done) return;
    // The blank line may straddle chunks: search from three bytes back.
    const lookBehind = Math.min(3, this.collected);
    const joined = lookBehind > 0 ? Buffer.concat([this.tail(lookBehind), chunk]) : chunk;
    const end = joined.indexOf(CRLFCRLF);
    const take = end === -1 ? chunk.length : end + 2 - lookBehind;
    if (end !== -1) this.done = true;
    const room = this.maxBytes - this.collected;
    if (take > room) {
      this.truncated = true;
      this.done = true;
    }
    const part = chunk.subarray(0, Math.max(0, Math.min(take, room)));
    this.chunks.push(part);
    this.collected += part.length;
  }

  private tail(n: number): Buffer {
    const all = Buffer.concat(this.chunks);
    return all.subarray(all.length - n);
  }

  /** The header fields collected, unfolded, in order. */
  fields(): HeaderField[] {
    return parseHeaderFields(Buffer.concat(this.chunks).toString('utf8'));
  }
}

/**
 * Splits a header block into fields and undoes folding (RFC 5322 §2.2.3: a CRLF followed by
 * white space continues the field). Values are not MIME-decoded. A line that is neither a
 * field nor a continuation is skipped, as every lenient mail parser does.
 */
export function parseHeaderFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: { name: string; raw: string } | undefined;
  const flush = () => {
    if (current) fields.push({ name: current.name, key: current.name.toLowerCase(), value: current.raw.replace(/\r\n(?=[ \t])/g, '').trim() });
    current = undefined;
  };
  for (const line of block.split('\r\n')) {
    if (line === '') break;
    if ((line[0] === ' ' || line[0] === '\t') && current) {
      current.raw += `\r\n${line}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    // RFC 5322 §3.6.8: a field name is printable ASCII other than the colon, no spaces.
    if (colon > 0 && /^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon))) {
      current = { name: line.slice(0, colon), raw: line.slice(colon + 1) };
    }
  }
  flush();
  return fields;
}
