/**
 * Node configuration for the pure core, with defaults and validation.
 *
 * @module
 */

import type { GroupId, NodeId } from "./types.ts";

/** Tunables of one Raft node. Times are milliseconds of whatever clock the interpreter uses. */
export interface RaftConfig {
  /** This node's id. */
  readonly id: NodeId;
  /** Raft group id carried on every message. */
  readonly group: GroupId;
  /** Base election timeout; each wait is drawn uniformly from [T, 2T) (paper §5.2). */
  readonly electionTimeoutMs: number;
  /** Leader heartbeat interval; must be well below the election timeout. */
  readonly heartbeatMs: number;
  /** Run a pre-vote round before a real election (thesis §9.6). */
  readonly preVote: boolean;
  /** Leader steps down if it hears from no quorum within an election timeout (thesis §6.2). */
  readonly checkQuorum: boolean;
  /** Forward proposals made on a follower to the known leader. */
  readonly forwardProposals: boolean;
  /** Maximum AppendEntries messages in flight to one follower in replicate state. */
  readonly maxInflightMessages: number;
  /** Maximum entry bytes in flight to one follower. */
  readonly maxInflightBytes: number;
  /** Soft limit of entry bytes in one AppendEntries (at least one entry is always sent). */
  readonly maxMessageBytes: number;
  /** Leader refuses proposals while uncommitted entry bytes exceed this. */
  readonly maxUncommittedBytes: number;
  /** Take a snapshot after this many applied entries since the last one (0: never). */
  readonly snapshotEvery: number;
  /** Entries kept in the log behind a snapshot, for slow followers (goraft's NumberOfLogEntriesAfterSnapshot). */
  readonly keepAfterSnapshot: number;
  /**
   * Serve reads from a leader lease instead of a heartbeat round (thesis §6.4.1). Safe only
   * if clocks advance at rates within `clockDrift` of each other; needs `now` on inputs.
   */
  readonly leaseReads: boolean;
  /** Bound on relative clock-rate difference assumed by lease reads (0.1 = 10%). */
  readonly clockDrift: number;
  /**
   * Quiescence (many groups per process, `core/quiesce.ts`): an idle leader
   * whose followers all hold its whole log stops heartbeating, and they stop
   * their election timers, until a proposal, a message or the host's failure
   * detector (`PeerDown`) wakes the group. Needs a host that sends liveness
   * beacons and reports `PeerDown`; off by default (a lone group behaves
   * exactly as before).
   */
  readonly quiesce: boolean;
  /**
   * Seed for election-timeout jitter. Randomness enters the core only as data.
   * Default: derived from `id`, so nodes that share every other setting still
   * draw different timeouts (identical jitter invites split votes). An
   * interpreter with a source of randomness should pass a random seed.
   */
  readonly seed: number;
}

/** Thrown by {@link makeConfig} for settings that cannot work. */
export class ConfigError extends Error {
  /** Discriminator for typed handling. */
  readonly _tag = "ConfigError" as const;
  /** Creates the error; `message` names the setting. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The defaults every unspecified setting takes (the seed's depends on the id: see {@link RaftConfig.seed}). */
export const defaultConfig: Omit<RaftConfig, "id" | "seed"> = {
  group: 0,
  electionTimeoutMs: 1000,
  heartbeatMs: 100,
  preVote: true,
  checkQuorum: true,
  forwardProposals: true,
  maxInflightMessages: 64,
  maxInflightBytes: 32 * 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxUncommittedBytes: 256 * 1024 * 1024,
  snapshotEvery: 0,
  keepAfterSnapshot: 5000,
  leaseReads: false,
  clockDrift: 0.1,
  quiesce: false,
};

/** FNV-1a hash of `id`, never 0: the default election-jitter seed. */
export function seedFromId(id: NodeId): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h | 0 || 1;
}

/** Builds a full configuration from `id` plus overrides, throwing {@link ConfigError} for invalid values. */
export function makeConfig(
  options: { readonly id: NodeId } & Partial<Omit<RaftConfig, "id">>,
): RaftConfig {
  if (typeof options.id !== "string" || options.id.length === 0) {
    throw new ConfigError("id must be a non-empty string");
  }
  const config: RaftConfig = { ...defaultConfig, ...options, seed: options.seed ?? seedFromId(options.id) };
  if (!Number.isInteger(config.seed)) throw new ConfigError(`seed must be an integer, got ${String(config.seed)}`);
  const positive: (keyof RaftConfig)[] = [
    "electionTimeoutMs",
    "heartbeatMs",
    "maxInflightMessages",
    "maxInflightBytes",
    "maxMessageBytes",
    "maxUncommittedBytes",
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`${key} must be a positive number, got ${String(value)}`);
    }
  }
  for (const key of ["snapshotEvery", "keepAfterSnapshot", "group"] as const) {
    const value = config[key];
    if (!Number.isInteger(value) || value < 0) {
      throw new ConfigError(`${key} must be a non-negative integer, got ${String(value)}`);
    }
  }
  if (!(config.clockDrift >= 0 && config.clockDrift < 1)) {
    throw new ConfigError(`clockDrift must be in [0, 1), got ${String(config.clockDrift)}`);
  }
  if (config.heartbeatMs >= config.electionTimeoutMs) {
    throw new ConfigError(
      `heartbeatMs (${config.heartbeatMs}) must be less than electionTimeoutMs (${config.electionTimeoutMs})`,
    );
  }
  return config;
}
