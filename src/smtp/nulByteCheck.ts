/**
 * Finds a NUL byte in a message that arrives in chunks. NUL is not allowed in 7bit or 8bit MIME
 * data (RFC 2045 §2.7, §2.8; RFC 6152 §3 holds 8BITMIME to the same), and Postern offers no
 * BINARYMIME. Refusing it matters for SMTP smuggling: a next hop that drops NUL bytes reads
 * "<CRLF><NUL>.<CRLF>" as "<CRLF>.<CRLF>", ends the message there and runs the rest of it as
 * commands in Postern's own authenticated session to it.
 */
export class NulByteCheck {
  private found = false;

  /** Feed the next chunk of the message, in order. */
  update(chunk: Buffer): void {
    if (!this.found && chunk.indexOf(0) !== -1) this.found = true;
  }

  get foundNul(): boolean {
    return this.found;
  }
}
