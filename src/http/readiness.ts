import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';

/**
 * Whether this instance should receive traffic (/readyz). Not ready while starting, once
 * draining has begun (so Kubernetes takes it out of the Service before the listeners close),
 * while the spool cannot be written (a 250 would be a promise it cannot keep), and while a
 * configured dependency (Redis) is unreachable.
 *
 * The spool is probed by writing and removing a small file in its temp directory on a timer:
 * a full or read-only volume shows up here before the next message finds it.
 */
export class Readiness {
  private started = false;
  private draining = false;
  private spoolWritable = true;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly options: {
      spoolTmpDir: string;
      probeIntervalMs?: number;
      logger: Logger;
      /** Other dependencies that must be up, e.g. Redis when rate limits live there. */
      dependencies?: ReadonlyArray<{ name: string; up: () => boolean }>;
    },
  ) {}

  /** Begin probing the spool; the instance becomes ready once `markStarted` is called. */
  async start(): Promise<void> {
    await this.probe();
    this.timer = setInterval(() => void this.probe(), this.options.probeIntervalMs ?? 2000);
    this.timer.unref();
  }

  markStarted(): void {
    this.started = true;
  }

  markDraining(): void {
    this.draining = true;
  }

  get ready(): boolean {
    return this.started && !this.draining && this.spoolWritable && (this.options.dependencies ?? []).every((d) => d.up());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const file = join(this.options.spoolTmpDir, `.ready-probe-${process.pid}`);
    try {
      await writeFile(file, 'ok');
      await unlink(file);
      if (!this.spoolWritable) this.options.logger.info({ event: 'readiness' }, 'spool writable again: ready');
      this.spoolWritable = true;
    } catch (err) {
      if (this.spoolWritable) {
        this.options.logger.error({ event: 'readiness', err: (err as Error).message }, 'spool not writable: not ready');
      }
      this.spoolWritable = false;
    } finally {
      this.probing = false;
    }
  }
}
