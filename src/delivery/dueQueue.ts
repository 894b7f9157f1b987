/**
 * Messages by the time they are next due, so finding what to send costs O(log n) per message
 * rather than a scan of the whole queue after every attempt: with 100,000 messages deferred
 * by an outage, a scan per attempt made delivery quadratic.
 *
 * A binary min-heap with lazy deletion: rescheduling pushes a new entry and the stale one is
 * skipped when it surfaces (it no longer matches the message's current due time).
 */
export class DueQueue {
  private readonly heap: Array<{ due: number; id: string }> = [];
  private readonly dueOf = new Map<string, number>();

  /** Due at `due` (ms since the epoch); replaces whatever time the message had. */
  schedule(id: string, due: number): void {
    if (this.dueOf.get(id) === due) return;
    this.dueOf.set(id, due);
    this.push({ due, id });
    this.compactIfStale();
  }

  /** Forget a message (delivered, deleted, or being worked on). */
  remove(id: string): void {
    this.dueOf.delete(id);
    this.compactIfStale();
  }

  /** Entries in the heap, stale ones included (for tests). */
  get heapSize(): number {
    return this.heap.length;
  }

  /**
   * Stale entries only leave when they reach the top; repeated flushes or deletions of
   * messages due far ahead would let them pile up. Past twice the live count, rebuild.
   */
  private compactIfStale(): void {
    if (this.heap.length <= 2 * this.dueOf.size + 1024) return;
    this.heap.length = 0;
    for (const [id, due] of this.dueOf) this.push({ due, id });
  }

  has(id: string): boolean {
    return this.dueOf.has(id);
  }

  get size(): number {
    return this.dueOf.size;
  }

  /** The earliest due time, or undefined when empty. */
  peekDue(): number | undefined {
    this.dropStale();
    return this.heap[0]?.due;
  }

  /** Take the earliest message if it is due at or before `now`. */
  takeDue(now: number): string | undefined {
    this.dropStale();
    const top = this.heap[0];
    if (!top || top.due > now) return undefined;
    this.pop();
    this.dueOf.delete(top.id);
    return top.id;
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.dueOf.get(top.id) === top.due) return;
      this.pop();
    }
  }

  private push(entry: { due: number; id: string }): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}

/** Earlier first; equal times in queue-ID order, which is arrival order. */
function before(a: { due: number; id: string }, b: { due: number; id: string }): boolean {
  return a.due < b.due || (a.due === b.due && a.id < b.id);
}
