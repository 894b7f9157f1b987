/**
 * Reply texts built from several parts (each already passed through quoted()) can still grow
 * past what one SMTP reply line holds: 512 octets with the code and CRLF (RFC 5321 section
 * 4.5.3.1.5). These keep them within a limit, in printable ASCII where asked (RFC 5321 section
 * 4.2: reply text is US-ASCII unless SMTPUTF8 was negotiated).
 */

/** Room for "550 5.7.26 " and CRLF in a 512-octet line, with some to spare. */
export const MAX_REPLY_TEXT = 450;

/** "a", "a and b", "a, b and c". */
export function listed(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** `text` within `max` octets of UTF-8 (ending in "..." when shortened), optionally with every non-ASCII character as "?". */
export function limitReply(text: string, options: { max?: number; ascii?: boolean } = {}): string {
  const max = options.max ?? MAX_REPLY_TEXT;
  const cleaned = options.ascii ? text.replace(/[^\x20-\x7e]/g, '?') : text;
  if (Buffer.byteLength(cleaned) <= max) return cleaned;
  let kept = '';
  let octets = 3; // the "..."
  for (const character of cleaned) {
    octets += Buffer.byteLength(character);
    if (octets > max) break;
    kept += character;
  }
  return `${kept}...`;
}
