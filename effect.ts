/**
 * plank's Effect API (`@plank/raft/effect`): a running node as the
 * {@link Raft} service, provided by {@link layer} for the lifetime of its
 * scope (closing the scope stops the node cleanly). The node runs over the
 * {@link LogStore}, {@link SnapshotStore} and {@link Transport} services from
 * the context; {@link portsLayer} (or {@link logStoreLayer},
 * {@link snapshotStoreLayer}, {@link transportLayer}) builds them from the
 * Promise ports of `@plank/raft` — the write-ahead log and transports of
 * `@plank/raft/deno`/`bun`, the in-memory ones of `@plank/raft/memory` — or
 * implement the services directly. {@link schemaCodec} turns an
 * `effect/Schema` schema into a command codec (for `createNode` too).
 *
 * ```ts
 * import { Effect, Layer, Schema } from "effect";
 * import { layer, portsLayer, Raft } from "@plank/raft/effect";
 * import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "@plank/raft/memory";
 *
 * const Command = Schema.Struct({ add: Schema.Number });
 * let total = 0;
 * const hub = new MemoryHub();
 * const node = layer({
 *   id: "solo",
 *   peers: { solo: "solo" },
 *   command: Command, // typed and validated; or schemaCodec(Command)
 *   stateMachine: { apply: (c: typeof Command.Type) => (total += c.add) },
 * }).pipe(Layer.provide(portsLayer({
 *   logStore: new MemoryLogStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 *   transport: hub.transport("solo"),
 * })));
 *
 * const program = Effect.gen(function* () {
 *   const raft = yield* Raft;
 *   // A new cluster elects its leader first.
 *   while ((yield* raft.status).leader === undefined) yield* Effect.sleep("10 millis");
 *   return yield* raft.propose({ add: 2 }); // 2, once committed and applied
 * });
 * await Effect.runPromise(Effect.scoped(Layer.build(node).pipe(
 *   Effect.flatMap((context) => Effect.provideContext(program, context)),
 * )));
 * ```
 *
 * For typed commands and results, make a key with {@link raftService} and
 * give it to `layer(key, options)`. A node logs through the context's effect
 * `Logger`s, records its metrics ({@link METRIC_FAMILIES}) in its
 * `MetricRegistry` and its requests' spans with its `Tracer`.
 *
 * This entry is not checked by `deno doc --lint` (deno 2.9 reports types
 * from `effect` as private), but every export is documented.
 *
 * @module
 */

export {
  layer,
  type LayerOptions,
  type NodeLayer,
  type Ports,
  portsLayer,
  type ProposeError,
  Raft,
  type RaftKey,
  raftService,
} from "./effects/raft_service.ts";
export { METRIC_FAMILIES } from "./effects/runtime/metrics.ts";
export { schemaCodec } from "./effects/schema_codec.ts";
export {
  LogStore,
  type SnapshotSink,
  SnapshotStore,
  StateMachine,
  Transport,
  type TransportHandlers,
} from "./effects/ports/mod.ts";
export {
  logStoreFromPort,
  logStoreLayer,
  snapshotStoreFromPort,
  snapshotStoreLayer,
  transportFromPort,
  transportLayer,
} from "./effects/ports/mod.ts";
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  makeNode,
  type NodeHandle,
  type NodeServices,
  type ProposeOptions,
  type RuntimeOptions,
  type SetPeersOptions,
  type TraceParent,
} from "./effects/runtime/mod.ts";
export type {
  ChunkResult,
  LogStorePort,
  PersistBatch,
  RecoveredLog,
  SnapshotData,
  SnapshotReader,
  SnapshotReceiverPort,
  SnapshotStorePort,
  StoredSnapshot,
  TransportPort,
} from "./effects/ports/mod.ts";
export type { CommandCodec } from "./effects/command.ts";
export {
  type ForcedCluster,
  forceNewCluster,
  type ForceNewClusterOptions,
  RecoveryRefused,
} from "./effects/recovery.ts";

export type { CommandOf, NodeConfig, NodeSpec, ResultOf, UserStateMachine } from "./effects/raft_node.ts";
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
export type { NodeStatus, PeerProgress, RaftEvent, RaftListener } from "./effects/events.ts";
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
export { type CreateHostOptions, hostLayer, RaftHost } from "./effects/host/api.ts";
