/**
 * One progress line on stderr. On a terminal it is rewritten in place with \r; in a log (not
 * a TTY) a line is written every few seconds instead, so the log stays readable.
 */
export class ProgressLine {
  private lastWrite = 0;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly enabled: boolean,
  ) {}

  update(text: string): void {
    if (!this.enabled) return;
    if (this.stream.isTTY) {
      this.stream.write(`\r${text}\x1b[K`);
      this.shown = true;
      return;
    }
    const at = Date.now();
    if (at - this.lastWrite < 5000) return;
    this.lastWrite = at;
    this.stream.write(`${text}\n`);
  }

  /** Ends the rewritten line, so what follows starts on a fresh one. */
  finish(): void {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
    this.lastWrite = 0;
  }
}
