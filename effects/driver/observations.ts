/**
 * What the driver saw happen that only observability needs, reported as
 * plain data (sans-IO: no logger, metric or tracer here). The production
 * shell turns these into log lines, metric updates and span boundaries
 * (`effects/runtime/observe.ts`); the simulator may ignore them. Durations
 * are differences of the `now` values the shell handed the driver, so they
 * are in the shell's clock.
 *
 * @module
 */

import type { Index, NodeId, RejectReason, Term } from "../../core/types.ts";
import type { RequestKind } from "./requests.ts";

/** Something the driver observed. */
export type Observation =
  /** A proposal got its place in the log: appended here (leader) or at the leader it was forwarded to. */
  | { readonly type: "appended"; readonly requestId: number; readonly index: Index; readonly term: Term }
  /** The core refused a request for good (not parked for a leader, not queued behind a membership change). */
  | { readonly type: "refused"; readonly kind: RequestKind; readonly reason: RejectReason }
  /** A ReadIndex round settled, serving `readers` reads (`ok`: confirmed by a quorum). */
  | { readonly type: "readRound"; readonly ms: number; readonly readers: number; readonly ok: boolean }
  /** A heartbeat round trip to `peer` (the first acknowledgement of a round). */
  | { readonly type: "roundTrip"; readonly peer: NodeId; readonly ms: number }
  /** The transport could not deliver to `peer`, which was reachable until now. */
  | { readonly type: "peerUnreachable"; readonly peer: NodeId }
  /** A message arrived from `peer`, which had been unreachable. */
  | { readonly type: "peerReachable"; readonly peer: NodeId }
  /** A snapshot stream to `to` started (`resumed`: from the follower's offset after a pause). */
  | {
    readonly type: "snapshotSending";
    readonly to: NodeId;
    readonly index: Index;
    readonly bytes: number;
    readonly resumed: boolean;
  }
  /** `to` installed the snapshot streamed to it. */
  | {
    readonly type: "snapshotSent";
    readonly to: NodeId;
    readonly index: Index;
    readonly bytes: number;
    readonly ms: number;
  }
  /** A snapshot stream to `to` got no answer and was given up (the leader will retry). */
  | { readonly type: "snapshotSendAbandoned"; readonly to: NodeId; readonly index: Index }
  /** A snapshot from `from` started arriving. */
  | { readonly type: "snapshotReceiving"; readonly from: NodeId; readonly index: Index }
  /** A received snapshot is durable and the state machine restored from it. */
  | { readonly type: "snapshotInstalled"; readonly index: Index; readonly bytes: number; readonly ms: number }
  /** A snapshot of this node's state machine is durable (`ms`: from capture to durable). */
  | { readonly type: "snapshotSaved"; readonly index: Index; readonly bytes: number; readonly ms: number };

/** A sink for observations. */
export type Observer = (observation: Observation) => void;
