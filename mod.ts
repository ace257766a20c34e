/**
 * plank (`@plank/raft`): Raft consensus for Deno and Bun.
 *
 * This entry is the runtime-agnostic Promise API. A node is the pure core
 * (`@plank/raft/core`) driven by one loop that batches inputs, writes and
 * fsyncs once per batch (group commit) and never lets a vote or an
 * acknowledgement outrun the disk. `createNode` runs it over three plain
 * Promise-style ports — a log store, a snapshot store and a transport:
 *
 * - `startNode` from `@plank/raft/deno` or `@plank/raft/bun` wires the
 *   write-ahead log, snapshot files and TCP (or your own transport, e.g. the
 *   HTTP one mounted on your server);
 * - `@plank/raft/memory` has in-memory ones for tests and examples;
 * - any object with the {@link LogStorePort}, {@link SnapshotStorePort} and
 *   {@link TransportPort} shapes plugs in.
 *
 * Effect users find the `RaftNode` service, `layer(options)` and the port
 * services in `@plank/raft/effect`, and `schemaCodec` for typed commands.
 *
 * ```ts
 * import { createNode } from "@plank/raft";
 * import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "@plank/raft/memory";
 *
 * const hub = new MemoryHub();
 * const peers = { a: "a", b: "b", c: "c" };
 * const nodes = await Promise.all(Object.keys(peers).map((id) => {
 *   const counter = { total: 0 };
 *   return createNode({
 *     id,
 *     peers,
 *     stateMachine: { counter, apply(n: number) { return (counter.total += n); } },
 *     logStore: new MemoryLogStore(),
 *     snapshotStore: new MemorySnapshotStore(),
 *     transport: hub.transport(id),
 *     config: { electionTimeoutMs: 150, heartbeatMs: 30 },
 *   });
 * }));
 * // A new cluster elects its leader first.
 * for (const n of nodes) while (n.status().leader === undefined) await new Promise((r) => setTimeout(r, 10));
 * const total = await nodes[0].propose(5); // 5, once committed and applied (forwarded if not the leader)
 * const seen = await nodes[1].read((sm) => sm.counter.total); // linearizable: 5
 * await Promise.all(nodes.map((n) => n.stop()));
 * ```
 *
 * A node logs to a `logger` option (leveled, structured {@link LogRecord}s),
 * and reports its metrics with `metrics()` and `prometheusMetrics()`.
 *
 * Errors are typed classes with a `_tag`: {@link RaftRejected} (not the
 * leader, too much uncommitted data, …; retry, elsewhere if `leader` says),
 * {@link ProposalDropped} (overwritten by a new leader: it did not take
 * effect), {@link OutcomeUnknown} (no answer within `requestTimeoutMs`: a
 * proposal may or may not have been applied), {@link NodeStopped}. A failed
 * write or fsync stops the node: `done`, pending and later requests reject
 * with the same {@link StorageFailure}.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";

export {
  type CommandOf,
  createNode,
  DEFAULT_SNAPSHOT_EVERY,
  type NodeConfig,
  type NodeOptions,
  type NodeSpec,
  type ProposeOptions,
  type RaftNode,
  type ResultOf,
  type UserStateMachine,
} from "./effects/raft_node.ts";
export type { SetPeersOptions } from "./effects/runtime/mod.ts";
export {
  type ForcedCluster,
  forceNewCluster,
  type ForceNewClusterOptions,
  RecoveryRefused,
} from "./effects/recovery.ts";

export { type CommandCodec, jsonCodec } from "./effects/command.ts";
export {
  ApplyFailure,
  CommandCodecError,
  NodeStopped,
  OutcomeUnknown,
  ProposalCancelled,
  ProposalDropped,
  type RaftError,
  RaftRejected,
  SnapshotChecksumMismatch,
  StateMachineFailure,
  StorageFailure,
} from "./effects/errors.ts";
export type { LogLevelName, LogRecord, MetricSeries, NodeLogger } from "./effects/observability.ts";
export type { NodeStatus, PeerProgress, RaftEvent, RaftListener } from "./effects/events.ts";
export type {
  ChunkResult,
  LogStorePort,
  PersistBatch,
  RecoveredLog,
  RestoreInProgress,
  SnapshotData,
  SnapshotReader,
  SnapshotReceiverPort,
  SnapshotStorePort,
  StoredSnapshot,
  TransportPort,
} from "./effects/ports/mod.ts";
export type {
  AppendEntries,
  AppendEntriesResponse,
  ConfChange,
  Entry,
  EntryKind,
  ForwardPropose,
  ForwardProposeResponse,
  GroupId,
  HardState,
  Index,
  InstallSnapshot,
  InstallSnapshotResponse,
  Membership,
  Message,
  MessageHeader,
  NodeId,
  ProgressState,
  Proposal,
  RaftConfig,
  ReadIndexRequest,
  ReadIndexResponse,
  RejectReason,
  RequestVote,
  RequestVoteResponse,
  Role,
  SnapshotMeta,
  Term,
  TimeoutNow,
} from "./core/mod.ts";
export { createHost, type CreateHostOptions } from "./effects/host/api.ts";
export {
  type GroupSnapshotsPort,
  type HostGroup,
  type HostGroupOptions,
  type HostGroupStatus,
  type HostLogOp,
  HostLoop,
  type HostOptions,
  type HostStateMachine,
  type MultiGroupLogPort,
} from "./effects/host/host_loop.ts";
