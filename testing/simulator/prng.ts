/**
 * The simulator's own seeded PRNG (mulberry32): every random choice of a run
 * (latencies, drops, faults, client operations) comes from one stream, so a
 * run is exactly reproducible from its seed.
 *
 * @module
 */

/** A small, fast, seeded pseudo-random generator. Not for cryptography. */
export class Prng {
  #state: number;

  /** Starts the stream at `seed` (any 32-bit integer). */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    const s = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}
