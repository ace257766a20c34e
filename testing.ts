/**
 * Testing tools for plank: the deterministic cluster simulator (virtual
 * time, a seeded hostile network, crashes, clients, incremental Raft safety
 * checks) and the Porcupine-style linearizability checker it uses.
 *
 * ```ts
 * import { runSimulation } from "@plank/raft/testing";
 *
 * // Throws an InvariantViolation (with seed and trace) if anything breaks.
 * runSimulation({ seed: 1, nodes: 5, steps: 2000, faults: true });
 * ```
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";

export * from "./testing/linearizability.ts";
export * from "./testing/simulator/mod.ts";
