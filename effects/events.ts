/**
 * What a running node tells its listeners (goraft-style events) and what
 * `status()` reports.
 *
 * @module
 */

import type { ProgressState } from "../core/progress.ts";
import type { Index, Membership, NodeId, Role, Term } from "../core/types.ts";

/** Something that happened on a node. Listeners run on the node's loop: keep them short. */
export type RaftEvent =
  /** The node's role changed (goraft's state change). */
  | { readonly type: "role"; readonly role: Role; readonly term: Term }
  /** The known leader changed (undefined: none known). */
  | { readonly type: "leader"; readonly leader: NodeId | undefined; readonly term: Term }
  /** The node moved to a new term. */
  | { readonly type: "term"; readonly term: Term }
  /** The commit index advanced. */
  | { readonly type: "commit"; readonly index: Index }
  /** The membership changed (on append of a config entry, thesis §4.1). */
  | { readonly type: "membership"; readonly membership: Membership; readonly index: Index }
  /** A node joined the membership. */
  | { readonly type: "peerAdded"; readonly peer: NodeId }
  /** A node left the membership. */
  | { readonly type: "peerRemoved"; readonly peer: NodeId }
  /** A heartbeat round trip to `peer` took at least half the election timeout: elections may start spuriously. */
  | { readonly type: "warning"; readonly message: string; readonly peer?: NodeId; readonly roundTripMs?: number }
  /** The node stopped; `error` is set when a fatal error stopped it. */
  | { readonly type: "stopped"; readonly error: unknown };

/** A subscriber. */
export type RaftListener = (event: RaftEvent) => void;

/**
 * The leader's view of one other member's replication (etcd's Progress).
 * A learner whose `match` has reached the leader's commit index has caught
 * up and can be promoted (thesis §4.2.1).
 */
export interface PeerProgress {
  /** Highest log index known to be durable on the peer. */
  readonly match: Index;
  /** Next log index the leader will send it. */
  readonly next: Index;
  /**
   * Replication mode: `probe` (looking for where the logs match, one append
   * at a time), `replicate` (keeping up, appends pipelined) or `snapshot`
   * (being sent a snapshot).
   */
  readonly state: ProgressState;
  /** Whether the peer is a non-voting learner. */
  readonly learner: boolean;
  /** Whether the leader heard from it since its last check-quorum round. */
  readonly active: boolean;
}

/** A node's state as of its last loop iteration. */
export interface NodeStatus {
  /** This node. */
  readonly id: NodeId;
  /** Current role. */
  readonly role: Role;
  /** Current term. */
  readonly term: Term;
  /** Known leader, if any. */
  readonly leader: NodeId | undefined;
  /** Commit index. */
  readonly commit: Index;
  /** Index of the last entry the state machine applied (or the snapshot it restored). */
  readonly applied: Index;
  /** Index of the last entry in this node's log (durable or being written). */
  readonly lastIndex: Index;
  /**
   * When this node last received a message from each peer, in ms of the
   * node's clock (`Date.now()` in production): on the leader its followers,
   * on a follower its leader — how stale each is. Peers never heard from are absent.
   */
  readonly lastContact: ReadonlyMap<NodeId, number>;
  /** The id of the process hosting the node (Deno and Bun), for operators' `kill`. */
  readonly pid?: number;

  /** Membership in force. */
  readonly membership: Membership;
  /**
   * On the leader, every other member's replication progress (learners
   * included); undefined on other roles.
   */
  readonly progress: ReadonlyMap<NodeId, PeerProgress> | undefined;
  /** Whether the node has stopped. */
  readonly stopped: boolean;
  /** The fatal error that stopped the node, if any. */
  readonly error: unknown;
}

/** The listeners of one node. */
export class Listeners {
  private readonly set = new Set<RaftListener>();

  /** Adds `listener`; returns the function that removes it. */
  add(listener: RaftListener): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }

  /** Whether anyone listens (so the loop can skip building events). */
  get active(): boolean {
    return this.set.size > 0;
  }

  /** Delivers `event` to every listener; a throwing listener does not disturb the node or the others. */
  emit(event: RaftEvent): void {
    for (const l of this.set) {
      try {
        l(event);
      } catch {
        // A listener's bug must not stop the node.
      }
    }
  }
}
