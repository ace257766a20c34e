/**
 * plank's pure Raft core: `step(state, input) → { state, effects }`.
 *
 * Nothing here performs I/O, reads a clock or draws random numbers; it runs
 * unchanged in Deno, Bun, Node or a browser. An interpreter (the Effect
 * runtime in `@plank/raft`, or the simulator in `@plank/raft/testing`)
 * carries out the returned effects.
 *
 * ```ts
 * import { makeConfig, membershipOf, start, step } from "@plank/raft/core";
 *
 * const config = makeConfig({ id: "a" });
 * let { state, effects } = start(config, { membership: membershipOf(["a"]) });
 * ({ state, effects } = step(state, { type: "Timeout", timer: "election" }));
 * ```
 *
 * @module
 */

export * from "./types.ts";
export { ConfigError, defaultConfig, makeConfig, type RaftConfig, seedFromId } from "./config.ts";
export { start, type StartOptions, step, type StepResult } from "./step.ts";
export {
  type CandidateRole,
  type ConfigPoint,
  type FollowerRole,
  inLease,
  leaderOf,
  type LeaderRole,
  type LeaseRound,
  membershipOf as currentMembership,
  type PendingRead,
  type RaftState,
  type RoleState,
  type Transfer,
} from "./state.ts";
export { entryAt, type EntryBuffer, firstIndex, lastIndex, lastTerm, type RaftLog, sliceLog, termAt } from "./log.ts";
export type { Inflight, Progress, ProgressState } from "./progress.ts";
export {
  allMembers,
  emptyMembership,
  isJoint,
  isLearner,
  isVoter,
  membershipOf,
  sameMembership,
} from "./membership.ts";
export { applyConfChange, type ConfChangeProblem, leaveJoint, promotable } from "./confchange.ts";
export {
  describeEffect,
  describeEntry,
  describeInput,
  describeMembership,
  describeMessage,
  describeState,
} from "./describe.ts";
export * from "./codec/mod.ts";
export { crc32c, formatCrc32c } from "./crc32c.ts";
