/**
 * The deterministic simulator: a seeded, virtual-time interpreter of the
 * pure core with a hostile network, crashes, clients, incremental safety
 * checks, a liveness check and linearizability checking of client histories.
 *
 * ```ts
 * import { runSimulation } from "@plank/raft/testing";
 *
 * const report = runSimulation({ seed: 42, nodes: 5, steps: 2000, faults: true });
 * console.log(report.committed, report.leaderTerms);
 * ```
 *
 * @module
 */

export { defaultFaults, type FaultOptions, Nemesis, noFaults, type SimControl, targetedFaults } from "./nemesis.ts";
export {
  type RunOptions,
  type RunReport,
  runSimulation,
  type SimOperation,
  type SimulationStats,
  Simulator,
  type SimulatorOptions,
} from "./simulator.ts";
export { InvariantViolation } from "./invariants.ts";
export {
  type MultiRunOptions,
  type MultiSimOptions,
  type MultiSimReport,
  MultiSimulator,
  runMultiSimulation,
} from "./multi.ts";
export { heavyFaults, type Profile, profileOptions, type RandomSettings, randomSettings } from "./profiles.ts";
export { type KvCommand, KvMachine, kvService } from "./kv_service.ts";
export type { SimService, WorkloadOp } from "./service.ts";
export { type CommandCodec, jsonCodec } from "../../effects/command.ts";
export { Prng } from "./prng.ts";
