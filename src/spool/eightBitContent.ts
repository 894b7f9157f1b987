import { isAscii } from 'node:buffer';

/**
 * Where a message first holds a byte beyond US-ASCII, which decides what its next hop must
 * offer: 'headers' — header fields in UTF-8 (RFC 6532), which travel only to a server that
 * offers SMTPUTF8 when the client asked for it (RFC 6531 §3.4) and to one offering 8BITMIME in
 * any case; 'body' — an 8-bit body, which needs 8BITMIME (RFC 6152 §3). A message of ASCII
 * alone has no placement (undefined) and goes anywhere.
 */
export type EightBitPlacement = 'headers' | 'body';

/** Tracks whether a message arriving in chunks holds any byte beyond ASCII. */
export class EightBitCheck {
  private found = false;

  /** Feed the next chunk of the message, in order. */
  update(chunk: Buffer): void {
    // isAscii runs natively over the chunk; it costs a fraction of the spool write it sits beside.
    if (!this.found && !isAscii(chunk)) this.found = true;
  }

  get foundEightBit(): boolean {
    return this.found;
  }
}

/** The placement from what was seen: 8-bit bytes in the header fields, in the message at all. */
export function eightBitPlacement(headersEightBit: boolean, messageEightBit: boolean): EightBitPlacement | undefined {
  if (headersEightBit) return 'headers';
  return messageEightBit ? 'body' : undefined;
}

/** The placement of a whole message held in memory (one Postern writes itself, such as a notification). */
export function eightBitPlacementOf(message: Buffer): EightBitPlacement | undefined {
  if (isAscii(message)) return undefined;
  const blankLine = message.indexOf('\r\n\r\n');
  const headerEnd = blankLine === -1 ? message.length : blankLine;
  return eightBitPlacement(!isAscii(message.subarray(0, headerEnd)), true);
}
