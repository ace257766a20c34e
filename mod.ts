/**
 * plank (`@plank/raft`): Raft consensus for Deno and Bun.
 *
 * A node is the pure core (`@plank/raft/core`) driven by one Effect fiber
 * that batches inputs, writes and fsyncs once per batch (group commit) and
 * never lets a vote or acknowledgement outrun the disk. Plug in a log store,
 * a snapshot store and a transport — files and TCP from `@plank/raft/deno` or
 * `@plank/raft/bun`, or the in-memory ones exported here.
 *
 * Promise facade:
 *
 * ```ts
 * import { createNode, MemoryHub, MemoryLogStore, MemorySnapshotStore } from "@plank/raft";
 *
 * const hub = new MemoryHub();
 * const peers = { a: "a", b: "b", c: "c" };
 * const counters = new Map<string, { total: number }>();
 * const nodes = await Promise.all(Object.keys(peers).map((id) => {
 *   const counter = { total: 0 };
 *   counters.set(id, counter);
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
 * const total = await nodes[0].propose(5); // 5, once committed and applied
 * const seen = await nodes[1].read((sm) => sm.counter.total); // linearizable: 5
 * await Promise.all(nodes.map((n) => n.stop()));
 * ```
 *
 * Typed commands with a Schema:
 *
 * ```ts
 * import { Schema } from "effect";
 * const Command = Schema.Union([
 *   Schema.Struct({ op: Schema.Literal("set"), key: Schema.String, value: Schema.String }),
 *   Schema.Struct({ op: Schema.Literal("delete"), key: Schema.String }),
 * ]);
 * // createNode({ ..., command: Command, stateMachine: { apply(c: typeof Command.Type) { ... } } })
 * ```
 *
 * Effect users provide `LogStore`, `SnapshotStore` and `Transport` layers and
 * use `layer(spec)` to get the `RaftNode` service.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";

export {
  type CommandOf,
  createNode,
  layer,
  type NodeOptions,
  type NodeSpec,
  RaftNode,
  type RaftNodeEffect,
  type ResultOf,
  type ServiceInput,
  type UserStateMachine,
} from "./effects/node.ts";
export { type CommandCodec, jsonCodec, schemaCodec } from "./effects/command.ts";
export {
  NodeStopped,
  OutcomeUnknown,
  ProposalDropped,
  type RaftError,
  RaftRejected,
  StateMachineFailure,
  StorageFailure,
} from "./effects/errors.ts";
export type { NodeStatus, RaftEvent, RaftListener } from "./effects/events.ts";
export {
  type ChunkResult,
  LogStore,
  type PersistBatch,
  type RecoveredLog,
  type SnapshotSink,
  SnapshotStore,
  StateMachine,
  type StoredSnapshot,
  Transport,
  type TransportHandlers,
} from "./effects/services.ts";
export {
  logStoreFromPort,
  logStoreLayer,
  type LogStorePort,
  type SnapshotReceiverPort,
  snapshotStoreFromPort,
  snapshotStoreLayer,
  type SnapshotStorePort,
  transportFromPort,
  transportLayer,
  type TransportPort,
} from "./effects/ports.ts";
export { makeNode, type NodeHandle, type NodeServices, type RuntimeOptions } from "./effects/runtime.ts";
export { MemoryHub, MemoryLogStore, type MemoryLogStoreOptions, MemorySnapshotStore } from "./adapters/memory/mod.ts";
export type {
  Entry,
  Index,
  Membership,
  Message,
  NodeId,
  RejectReason,
  Role,
  SnapshotMeta,
  Term,
} from "./core/types.ts";
