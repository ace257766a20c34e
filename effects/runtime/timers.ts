/**
 * The loop's timers, on Effect's `Clock` (so `TestClock` drives them): one
 * sleeper fiber per timer kind, replaced when the timer is re-armed (docs/DESIGN.md
 * rule 3). A firing reaches the loop as an item carrying the timer's
 * generation, so a stale one is recognised and ignored.
 *
 * A follower re-arms its election timer on every append, so a sleeper that
 * wakes no later than the new deadline is kept and, on waking early, sleeps
 * the rest; only an earlier deadline costs a new fiber.
 *
 * @module
 */

import { Clock, Effect, type Fiber } from "effect";

/** The timers of one loop, by name, each handing `fire(name, generation)` to the loop when due. */
export class Timers<K extends string> {
  readonly #fire: (name: K, gen: number) => void;
  readonly #gen = new Map<K, number>();
  readonly #deadline = new Map<K, number>();
  readonly #wake = new Map<K, number>();
  readonly #fibers = new Map<K, Fiber.Fiber<void>>();

  /** Timers whose firings go to `fire`. */
  constructor(fire: (name: K, gen: number) => void) {
    this.#fire = fire;
  }

  /** Whether a firing of `name` with generation `gen` is the latest (not replaced since). */
  current(name: K, gen: number): boolean {
    return (this.#gen.get(name) ?? 0) === gen;
  }

  /** (Re)arms `name` to fire `ms` after `now` (the loop's clock reading), replacing the pending one. */
  arm(name: K, ms: number, now: number): Effect.Effect<void> {
    this.#gen.set(name, (this.#gen.get(name) ?? 0) + 1);
    const deadline = now + ms;
    this.#deadline.set(name, deadline);
    const running = this.#fibers.get(name);
    if (running !== undefined && (this.#wake.get(name) ?? Infinity) <= deadline) return Effect.void;
    running?.interruptUnsafe();
    return Effect.map(Effect.forkChild(this.#sleeper(name, ms)), (fiber) => void this.#fibers.set(name, fiber));
  }

  /** Disarms `name`: a pending firing is ignored. */
  cancel(name: K): void {
    this.#gen.set(name, (this.#gen.get(name) ?? 0) + 1);
    this.#fibers.get(name)?.interruptUnsafe();
    this.#fibers.delete(name);
  }

  /** Stops every sleeper. */
  stopAll(): void {
    for (const f of this.#fibers.values()) f.interruptUnsafe();
    this.#fibers.clear();
  }

  #sleeper(name: K, ms: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      let wait = ms;
      while (true) {
        this.#wake.set(name, (yield* Clock.currentTimeMillis) + wait);
        yield* Effect.sleep(wait);
        wait = this.#deadline.get(name)! - (yield* Clock.currentTimeMillis);
        if (wait <= 0) break;
      }
      this.#fibers.delete(name);
      this.#fire(name, this.#gen.get(name) ?? 0);
    });
  }
}
