/**
 * Fault profiles for simulator sweeps: which faults, which targeted
 * schedules, which core settings. A profile is plain data; {@link
 * profileOptions} turns it into {@link RunOptions} for one seed, so a sweep
 * can randomize the core's settings per seed and still reproduce any run
 * from (seed, nodes, profile).
 *
 * @module
 */

import type { RaftConfig } from "../../core/config.ts";
import { type FaultOptions, targetedFaults } from "./nemesis.ts";
import { Prng } from "./prng.ts";
import type { RunOptions } from "./simulator.ts";

/** What a sweep run turns on. Every field is optional; the empty profile is the CI sweep's base (faults on). */
export interface Profile {
  /** A perfect network and no fault events. */
  readonly noFaults?: boolean;
  /** Frequent faults, a lossy, duplicating network, and transfers. */
  readonly heavy?: boolean;
  /** Frequent snapshots with little kept behind them, so lagging followers need a snapshot. */
  readonly snapshots?: boolean;
  /** Lease reads on (thesis §6.4.1). */
  readonly lease?: boolean;
  /** Leadership transfers among the fault events. */
  readonly transfers?: boolean;
  /** Membership changes (and transfers) among the fault events. */
  readonly conf?: boolean;
  /** Some of those changes are joint changes (implies `conf`). */
  readonly joint?: boolean;
  /** The targeted schedules of the nemesis (see `nemesis.ts`). */
  readonly targeted?: boolean;
  /** Pre-vote off. */
  readonly noPreVote?: boolean;
  /** Check-quorum off. */
  readonly noCheckQuorum?: boolean;
  /**
   * Per-node clock rates: `within` the core's `clockDrift` bound (every check
   * must hold), or `beyond` it (lease reads may then be stale, and the checker
   * must be able to see it).
   */
  readonly drift?: "within" | "beyond";
  /** Core and environment settings drawn per seed (timeouts, windows, message and chunk sizes, latencies). */
  readonly randomSettings?: boolean;
  /** Only the first `voters` nodes start as voters; the rest wait to be added. */
  readonly voters?: number;
  /**
   * One entry per message and one message in flight, with new leaders often
   * crashing at once: a new leader's no-op then trails the older entries it
   * re-replicates, so Figure 8's window (an older-term entry on a majority
   * before the current term's) stays open.
   */
  readonly figure8?: boolean;
}

/** The `heavy` fault overrides. */
export const heavyFaults: Partial<FaultOptions> = {
  dropRate: 0.2,
  duplicateRate: 0.1,
  delayRate: 0.1,
  minIntervalMs: 50,
  maxIntervalMs: 300,
  transfers: true,
};

/** The run options of `profile` for `seed` on `nodes` nodes (everything but seed, nodes and steps). */
export function profileOptions(
  profile: Profile,
  nodes: number,
  seed: number,
): Omit<RunOptions, "seed" | "nodes" | "steps"> {
  const conf = profile.conf === true || profile.joint === true;
  const faults: RunOptions["faults"] = profile.noFaults ? false : {
    ...(profile.heavy ? heavyFaults : {}),
    ...(profile.targeted ? targetedFaults : {}),
    ...(profile.figure8 ? { crashNewLeader: 0.5 } : {}),
    transfers: profile.transfers === true || conf || profile.heavy === true,
    confChanges: conf,
    jointChanges: profile.joint ? 0.5 : 0,
  };
  const settings: Partial<RandomSettings> = profile.randomSettings
    ? randomSettings(seed, profile.snapshots === true)
    : {};
  const clockDrift = 0.1;
  const lease = profile.lease === true || profile.drift !== undefined;
  const raft: Partial<RaftConfig> = {
    ...(profile.snapshots ? { snapshotEvery: 20, keepAfterSnapshot: 5 } : {}),
    ...settings.raft,
    ...(profile.figure8 ? { maxInflightMessages: 1, maxMessageBytes: 24 } : {}),
    ...(lease ? { leaseReads: true, clockDrift } : {}),
    ...(profile.noPreVote ? { preVote: false } : {}),
    ...(profile.noCheckQuorum ? { checkQuorum: false } : {}),
  };
  return {
    ...settings.env,
    faults,
    raft,
    voters: Math.min(nodes, profile.voters ?? nodes),
    // Within the bound: rates spread just under it. Beyond: one node's clock runs at a
    // third of the others' (leaders tend to be fast clocks, whose timers fire first;
    // transfers and the isolate schedule put the slow one in charge at times).
    ...(profile.drift === "within" ? { clockSpread: clockDrift * 0.95 } : {}),
    ...(profile.drift === "beyond" ? { clockRates: slowClock(nodes, seed) } : {}),
  };
}

/** Clock rates with one node (chosen by `seed`) at a third of the others' speed. */
function slowClock(nodes: number, seed: number): number[] {
  const slow = new Prng(seed ^ 0xc10c).int(0, nodes - 1);
  return Array.from({ length: nodes }, (_, i) => (i === slow ? 1 / 3 : 1));
}

/** Settings drawn per seed by the `randomSettings` profile. */
export interface RandomSettings {
  /** Core settings. */
  readonly raft: Partial<RaftConfig>;
  /** Simulator settings (timeouts, latencies, chunk size). */
  readonly env: Pick<
    RunOptions,
    | "electionTimeoutMs"
    | "heartbeatMs"
    | "minLatencyMs"
    | "maxLatencyMs"
    | "minDiskMs"
    | "maxDiskMs"
    | "snapshotChunkBytes"
  >;
}

/**
 * Core and environment settings for `seed`, from a stream of their own (so
 * they do not shift the run's other random choices): election timeout and
 * heartbeat, the in-flight window in messages and bytes, the message and
 * uncommitted-bytes limits, snapshot cadence and chunk size, network and disk
 * latency.
 */
export function randomSettings(seed: number, snapshots: boolean): RandomSettings {
  const rng = new Prng(seed ^ 0x5eed5eed);
  const electionTimeoutMs = rng.pick([100, 150, 200, 300]);
  const minLatencyMs = rng.int(1, 3);
  const minDiskMs = rng.pick([0, 1, 2]);
  return {
    raft: {
      maxInflightMessages: rng.pick([1, 2, 4, 16, 64]),
      maxInflightBytes: rng.pick([64, 1024, 32 * 1024 * 1024]),
      maxMessageBytes: rng.pick([24, 64, 256, 4096, 1024 * 1024]),
      maxUncommittedBytes: rng.pick([512, 4096, 256 * 1024 * 1024]),
      ...(snapshots ? { snapshotEvery: rng.pick([5, 20, 50]), keepAfterSnapshot: rng.pick([0, 2, 5, 50]) } : {}),
    },
    env: {
      electionTimeoutMs,
      heartbeatMs: Math.floor(electionTimeoutMs / rng.pick([3, 5, 10])),
      minLatencyMs,
      maxLatencyMs: minLatencyMs + rng.pick([2, 9, 29]),
      minDiskMs,
      maxDiskMs: minDiskMs + rng.pick([1, 5, 30]),
      snapshotChunkBytes: rng.pick([16, 48, 256, 4096]),
    },
  };
}
