/**
 * The state of one Raft node, as the pure core sees it. Leader-only data
 * lives inside the leader's role value so a follower cannot carry it.
 *
 * @module
 */

import type { RaftConfig } from "./config.ts";
import type { RaftLog } from "./log.ts";
import type { Progress } from "./progress.ts";
import type { Index, Membership, NodeId, SnapshotMeta, Term } from "./types.ts";

/** A follower, and the leader it currently follows (if it heard from one this election timeout). */
export interface FollowerRole {
  /** Discriminator. */
  readonly kind: "follower";
  /** Leader of the current term, as last heard (proposals are forwarded there). */
  readonly leader: NodeId | undefined;
  /**
   * Bound by leader stickiness (thesis §4.2.3): heard from `leader`, or started,
   * less than one (unrandomized) election timeout ago. While true, vote requests
   * are ignored, so removed or partitioned nodes cannot unseat a healthy leader;
   * it also backs the leader's lease (§6.4.1). A node starts sticky because it
   * cannot know whether it acknowledged a leader's heartbeat just before it
   * crashed: voting at once after a restart would cut that leader's lease short.
   * The election timer first runs exactly one timeout to clear it, then a random
   * extra delay before campaigning.
   */
  readonly sticky: boolean;
  /**
   * The node `leader` announced it is handing leadership to (thesis §3.10), this
   * term. Only that node's transfer campaign may bypass stickiness here.
   */
  readonly transferTo?: NodeId;
  /**
   * Quiescent (`core/quiesce.ts`): the leader's quiescing heartbeat found this
   * node holding its whole log; the election timer is ignored (so the node
   * stays sticky) until an input wakes it.
   */
  readonly quiescent?: true;
  /**
   * Woken from quiescence by `PeerDown` of this peer, its leader, and nothing
   * heard from the group since: `PeerUp` of it quiesces the node again
   * (`core/quiesce.ts`).
   */
  readonly wokenBy?: NodeId;
}

/** A candidate in a pre-vote (§9.6) or a real election (§5.2). */
export interface CandidateRole {
  /** Discriminator. */
  readonly kind: "precandidate" | "candidate";
  /** Votes received so far (true: granted). */
  readonly votes: ReadonlyMap<NodeId, boolean>;
  /** This campaign was triggered by TimeoutNow (leadership transfer). */
  readonly transfer: boolean;
}

/** A read waiting for a heartbeat round to confirm leadership (§6.4). */
export interface PendingRead {
  /** Request id at the node that asked. */
  readonly requestId: number;
  /** Node whose client asked (this node for local reads). */
  readonly origin: NodeId;
  /** Commit index when the read arrived: the read index. */
  readonly index: Index;
  /** Heartbeat round whose acknowledgement by a quorum confirms leadership. */
  readonly seq: number;
}

/** A leadership transfer in progress (§3.10). */
export interface Transfer {
  /** Target node. */
  readonly to: NodeId;
  /** Request id to answer with TransferDone. */
  readonly requestId: number;
  /** TimeoutNow already sent. */
  readonly sent: boolean;
}

/** The leader, with its per-follower bookkeeping. */
export interface LeaderRole {
  /** Discriminator. */
  readonly kind: "leader";
  /** Replication progress of every other member. */
  readonly progress: ReadonlyMap<NodeId, Progress>;
  /** Current heartbeat round; carried on appends, echoed in responses. */
  readonly seq: number;
  /** Reads waiting for a quorum to acknowledge round `seq`. */
  readonly reads: readonly PendingRead[];
  /** Bytes of entries appended but not yet committed (bounded by config.maxUncommittedBytes). */
  readonly uncommittedBytes: number;
  /** Leadership transfer in progress, if any. */
  readonly transfer: Transfer | undefined;
  /** Index of the no-op this leader appended; reads wait until it commits (§6.4). */
  readonly noopIndex: Index;
  /** Recent heartbeat rounds whose send time is known, oldest first (lease reads). */
  readonly rounds: readonly LeaseRound[];
  /** A TimeoutNow was sent this term: a target may campaign at any moment, so no more lease reads. */
  readonly leaseRevoked: boolean;
  /**
   * The quiescing heartbeat round (`core/quiesce.ts`): its `seq`, and the
   * last index when it was sent. Stale once another round is sent or the log grows.
   */
  readonly quiescing?: { readonly seq: number; readonly index: Index };
  /** Quiescent: every member acknowledged the quiescing round; no heartbeat or quorum timer runs until woken. */
  readonly quiescent?: true;
}

/** A heartbeat round and the interpreter's clock when it was sent. */
export interface LeaseRound {
  /** The round's `seq`. */
  readonly seq: number;
  /** Clock reading (ms) when the round was sent. */
  readonly at: number;
}

/** The role a node currently plays, with its role-specific data. */
export type RoleState = FollowerRole | CandidateRole | LeaderRole;

/** A configuration entry's position, so truncation can roll membership back. */
export interface ConfigPoint {
  /** Index of the config entry (or of the snapshot that carried the membership). */
  readonly index: Index;
  /** The membership it established. */
  readonly membership: Membership;
}

/** Everything the core knows about one node. Immutable: `step` returns a new value. */
export interface RaftState {
  /** Static configuration. */
  readonly config: RaftConfig;
  /** Current term (persistent). */
  readonly term: Term;
  /** Vote cast in `term` (persistent). */
  readonly vote: NodeId | undefined;
  /** Highest index known committed. */
  readonly commit: Index;
  /** Highest index handed to the state machine in an Apply effect. */
  readonly applied: Index;
  /** The log. */
  readonly log: RaftLog;
  /** The latest snapshot this node holds (undefined: none). */
  readonly snapshot: SnapshotMeta | undefined;
  /** Config entries still in the log, oldest first; the last is in force (§4.1: a server uses the latest config in its log). */
  readonly configs: readonly ConfigPoint[];
  /** Role-specific state. */
  readonly role: RoleState;
  /** PRNG state for election jitter. */
  readonly rng: number;
  /** Index of the last snapshot requested from the state machine (compaction policy). */
  readonly snapshotRequested: Index;
}

/** The membership in force: the latest configuration in the log. */
export function membershipOf(state: RaftState): Membership {
  return state.configs[state.configs.length - 1]!.membership;
}

/** Whether this node is bound by leader stickiness: it leads, or heard from a leader (or started) within an election timeout. */
export function inLease(state: RaftState): boolean {
  return state.role.kind === "leader" || (state.role.kind === "follower" && state.role.sticky);
}

/** The leader this node knows of, if any. */
export function leaderOf(state: RaftState): NodeId | undefined {
  switch (state.role.kind) {
    case "leader":
      return state.config.id;
    case "follower":
      return state.role.leader;
    default:
      return undefined;
  }
}
