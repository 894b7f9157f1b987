import { fsyncDirectory } from './atomicFile.js';

/**
 * Group commit for directory fsyncs. Every commit, delivery and removal in the spool ends by
 * fsyncing the queue directory so the renamed or removed names are durable; with many
 * sessions at once, one fsync can serve every caller whose change was made before it started.
 *
 * A caller is only answered by an fsync that began after it asked: while one fsync runs, new
 * requests wait for the next one, which starts when the running one ends and serves them all.
 */
export class DirectorySync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly fsync: (dir: string) => Promise<void> = fsyncDirectory,
  ) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  private start(): Promise<void> {
    this.next = undefined;
    const run = this.fsync(this.dir);
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(clear, clear);
    return run;
  }
}
