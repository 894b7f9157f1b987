import type { QueueControl } from '../delivery/queueControl.js';
import type { Envelope } from '../spool/envelope.js';

/**
 * Stands in for the delivery queue while the gateway starts: the control socket listens before
 * the spool is recovered (so a second gateway on the same spool is refused early), and a
 * command arriving in between is told to try again rather than acting on a spool in recovery.
 */
export class PendingQueueControl implements QueueControl {
  private target: QueueControl | undefined;

  ready(target: QueueControl): void {
    this.target = target;
  }

  list(): Envelope[] {
    return this.queue().list();
  }

  get(id: string): Envelope | undefined {
    return this.queue().get(id);
  }

  retry(id?: string): Promise<number> {
    return this.queue().retry(id);
  }

  delete(id: string): Promise<boolean> {
    return this.queue().delete(id);
  }

  bounce(id: string): Promise<boolean> {
    return this.queue().bounce(id);
  }

  private queue(): QueueControl {
    if (!this.target) throw new Error('the gateway is still starting; try again in a moment');
    return this.target;
  }
}
