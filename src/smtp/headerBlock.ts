import { isAscii } from 'node:buffer';
import type { HeaderField } from '../policy/types.js';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Collects a message's header block (RFC 5322 §2.1: everything before the first empty line)
 * while the message streams past, up to `maxBytes`; the body is never kept. The work per chunk
 * is proportional to the chunk: smtp-server hands on every network read, so a client trickling
 * its header a byte at a time must not make each byte cost more than the last.
 */
export class HeaderBlockCollector {
  private readonly block: Buffer;
  private collected = 0;
  private done = false;
  /** True when the header block was longer than maxBytes (it is cut there). */
  truncated = false;

  constructor(private readonly maxBytes: number) {
    this.block = Buffer.allocUnsafe(maxBytes);
  }

  update(chunk: Buffer): void {
    for (let i = 0; i < chunk.length && !this.done; i++) {
      if (this.collected === this.maxBytes) {
        this.truncated = true;
        this.done = true;
        return;
      }
      this.block[this.collected++] = chunk[i]!;
      // The empty line: CRLF CRLF, the first CRLF ending the last field.
      const n = this.collected;
      if (chunk[i] === LF && n >= 4 && this.block[n - 2] === CR && this.block[n - 3] === LF && this.block[n - 4] === CR) {
        this.collected -= 2;
        this.done = true;
      }
    }
  }

  /** The header fields collected, unfolded, in order. */
  fields(): HeaderField[] {
    return parseHeaderFields(this.block.toString('utf8', 0, this.collected)).fields;
  }

  /** True when the block holds a byte beyond ASCII: UTF-8 header fields (RFC 6532). */
  get eightBit(): boolean {
    return !isAscii(this.block.subarray(0, this.collected));
  }

  /** True when a line of the block is neither a field nor a continuation of one. */
  get malformed(): boolean {
    return parseHeaderFields(this.block.toString('utf8', 0, this.collected)).malformed;
  }
}

/**
 * Splits a header block into fields and undoes folding (RFC 5322 §2.2.3: a CRLF followed by
 * white space continues the field). Values are not MIME-decoded. White space between a field
 * name and its colon is allowed (RFC 5322 §4.5.3, obsolete syntax that parsers still accept),
 * so "From : x" is the From field here as it is for every mail reader. A line that is neither a
 * field nor a continuation makes the block malformed: parsers disagree on what such a line is
 * (Postfix starts the body there), and a message must mean the same thing to every hop.
 */
export function parseHeaderFields(block: string): { fields: HeaderField[]; malformed: boolean } {
  const fields: HeaderField[] = [];
  let malformed = false;
  let current: { name: string; raw: string } | undefined;
  const flush = () => {
    if (current) fields.push({ name: current.name, key: current.name.toLowerCase(), value: current.raw.replace(/\r\n(?=[ \t])/g, '').trim() });
    current = undefined;
  };
  for (const line of block.split('\r\n')) {
    if (line === '') break;
    if (line[0] === ' ' || line[0] === '\t') {
      if (current) current.raw += `\r\n${line}`;
      else malformed = true;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).replace(/[ \t]+$/, '') : '';
    // RFC 5322 §3.6.8: a field name is printable ASCII other than the colon, no spaces.
    if (name !== '' && /^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
      current = { name, raw: line.slice(colon + 1) };
    } else {
      malformed = true;
    }
  }
  flush();
  return { fields, malformed };
}
