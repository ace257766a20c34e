/**
 * A tiny deterministic PRNG (xorshift32). The core draws election jitter from
 * a seed carried in its state, so a run is reproducible from its inputs.
 *
 * @module
 */

/** Advances the generator; returns the next state (never 0). */
export function nextRandom(seed: number): number {
  let x = seed | 0 || 0x9e3779b9;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x | 0 || 0x9e3779b9;
}

/** Maps a generator state to an integer in [0, bound). */
export function randomBelow(seed: number, bound: number): number {
  return Math.floor(((seed >>> 0) / 0x1_0000_0000) * bound);
}
