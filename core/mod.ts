/**
 * The pure Raft core: `step(state, input) → { state, effects }`.
 *
 * PLACEHOLDER: replaced as the core lands.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
