/** Counts slots of a limited resource; waiters are served first come, first served. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a semaphore needs at least one slot, got ${limit}`);
    this.available = limit;
  }

  /** Resolves once a slot is held; call the returned function exactly once to give it back. */
  async acquire(): Promise<() => void> {
    if (this.available > 0) {
      this.available -= 1;
    } else {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // A waiter takes the slot over directly, so a newcomer cannot jump the queue.
      if (next) next();
      else this.available += 1;
    };
  }

  /** Nobody holds or waits for a slot. */
  get idle(): boolean {
    return this.available === this.limit && this.waiters.length === 0;
  }
}
