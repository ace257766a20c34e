/**
 * A binary min-heap of timed items (simulator events, request deadlines) ordered by (time, sequence number):
 * events at the same virtual time run in the order they were scheduled, so a
 * run never depends on the heap's internal layout.
 *
 * @module
 */

/** Anything with a virtual time; the queue assigns the sequence number. */
export interface Scheduled {
  /** Virtual time (ms) at which the event happens. */
  readonly time: number;
  /** Tie-breaker assigned by {@link EventQueue.push}. */
  seq: number;
}

/** A priority queue of events, earliest first, FIFO among equal times. */
export class EventQueue<E extends Scheduled> {
  readonly #heap: E[] = [];
  #nextSeq = 0;

  /** Number of queued events. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `event`. */
  push(event: E): void {
    event.seq = this.#nextSeq++;
    const heap = this.#heap;
    let i = heap.length;
    heap.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  /** The earliest event, without removing it. */
  peek(): E | undefined {
    return this.#heap[0];
  }

  /** Removes and returns the earliest event. */
  pop(): E | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
