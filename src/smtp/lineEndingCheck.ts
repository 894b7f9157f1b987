const CR = 0x0d;
const LF = 0x0a;

/**
 * Finds a bare CR or bare LF in a message that arrives in chunks. SMTP requires CRLF line
 * endings (RFC 5321 §2.3.8); receivers that accept bare ones disagree on where a message ends,
 * which is what SMTP smuggling exploits (CVE-2023-51764, -51765, -51766). Postern refuses such
 * a message outright, as Postfix does with smtpd_forbid_bare_newline.
 *
 * The check scans with Buffer.indexOf, so a clean 10 MB message costs two native scans, not a
 * JavaScript loop per byte; a CR at the end of one chunk is matched against the next.
 */
export class LineEndingCheck {
  private pendingCr = false;
  private bare = false;

  /** Feed the next chunk of the message, in order. */
  update(chunk: Buffer): void {
    if (this.bare || chunk.length === 0) return;
    if (this.pendingCr && chunk[0] !== LF) {
      this.bare = true;
      return;
    }
    // Every LF must follow a CR (the one carried over from the last chunk counts for index 0).
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      const before = i === 0 ? (this.pendingCr ? CR : -1) : chunk[i - 1];
      if (before !== CR) {
        this.bare = true;
        return;
      }
    }
    // Every CR must be followed by an LF; one in the last byte waits for the next chunk.
    for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
      if (i === chunk.length - 1) break;
      if (chunk[i + 1] !== LF) {
        this.bare = true;
        return;
      }
    }
    this.pendingCr = chunk[chunk.length - 1] === CR;
  }

  /** True once a bare CR or LF has been seen, or the message ended on a lone CR. */
  get foundBareLineEnding(): boolean {
    return this.bare || this.pendingCr;
  }

  /**
   * True once a bare CR or LF has certainly been seen. Unlike foundBareLineEnding, a CR in the
   * last byte of the latest chunk does not count: its LF may start the next chunk. This is the
   * one to ask while the message is still arriving.
   */
  get foundBareLineEndingSoFar(): boolean {
    return this.bare;
  }
}
