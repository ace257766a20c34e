/**
 * The Effect API: a running node as the `Raft` service, provided by
 * `layer(options)` for the lifetime of its scope, over the `LogStore`,
 * `SnapshotStore` and `Transport` services from the context.
 *
 * @module
 */

import { Context, Effect, Layer, type Schema, Tracer } from "effect";
import type { ConfChange, Index, NodeId, SnapshotMeta } from "../core/types.ts";
import type { CommandCodec } from "./command.ts";
import {
  ApplyFailure,
  CommandCodecError,
  NodeStopped,
  OutcomeUnknown,
  ProposalDropped,
  type RaftError,
  RaftRejected,
  StateMachineFailure,
  StorageFailure,
} from "./errors.ts";
import type { NodeStatus, RaftListener } from "./events.ts";
import { logStoreLayer, snapshotStoreLayer, transportLayer } from "./ports/mod.ts";
import {
  type CommandOf,
  encodeCommand,
  type NodeSpec,
  PID,
  runtimeOptions,
  stateMachineService,
  type UserStateMachine,
  waitForLeader,
} from "./raft_node.ts";
import { defaultConfig } from "../core/config.ts";

import type { LogStorePort, SnapshotStorePort, TransportPort } from "./ports/mod.ts";
import { makeNode, type SetPeersOptions } from "./runtime/mod.ts";
import { type LogStore, type SnapshotStore, StateMachine, type Transport } from "./ports/mod.ts";
import { toCommandCodec } from "./schema_codec.ts";

/**
 * How a proposal can fail in the Effect API: a {@link RaftError}, a command
 * that does not encode or decode ({@link CommandCodecError}), or the state
 * machine's `apply` throwing for it ({@link ApplyFailure}, with what it threw).
 */
export type ProposeError = RaftError | CommandCodecError | ApplyFailure;

/**
 * A running node, as an effect service: `C` is the command type (a
 * Schema's `Type`), `R` the state machine's result. The default {@link Raft}
 * key is untyped (`unknown` in and out); give {@link layer} a key made by
 * {@link raftService} to have commands and results typed end to end.
 *
 * Every request runs in a span (`raft.propose`, `raft.read`, …) with the
 * host's tracer; a proposal's span has children for its WAL write, its
 * quorum round and its apply.
 *
 * Interrupting `propose` (a timeout, a race): while the proposal still waits
 * on this node (queued, or for a leader to be known) it is cancelled and
 * never applied; once handed to the leader it may still commit — its
 * eventual outcome is then logged (Warn) and counted in
 * `plank_proposals_abandoned_total`, never silently dropped. To learn the
 * outcome yourself, bound the wait with `requestTimeoutMs` (failing with
 * `OutcomeUnknown`) rather than by interrupting.
 */
export interface Raft<C = unknown, R = unknown> {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * Replicates a command; succeeds with the state machine's result once
   * applied here. An `OutcomeUnknown` failure (no answer within
   * `requestTimeoutMs`) means the command may or may not have been applied.
   */
  propose(command: C): Effect.Effect<R, ProposeError>;
  /** A linearizable read index, already applied here (thesis §6.4). */
  readonly readIndex: Effect.Effect<Index, RaftError>;
  /** Succeeds once everything committed before it is applied here, with the applied index (hashicorp's Barrier). */
  readonly barrier: Effect.Effect<Index, RaftError>;
  /**
   * Succeeds with the leader's id once one is known; fails with
   * `RaftRejected("timeout")` after `timeoutMs` (default three election
   * timeouts) or `NodeStopped`.
   */
  waitForLeader(timeoutMs?: number): Effect.Effect<NodeId, RaftError>;
  /** The node's state (on the leader, with every peer's progress). */
  readonly status: Effect.Effect<NodeStatus>;
  /** Adds an event listener; succeeds with the unsubscribe function. */
  subscribe(listener: RaftListener): Effect.Effect<() => void>;
  /** Proposes a membership change; `address` (for additions) enters the address book first. */
  changeMembership(change: ConfChange, address?: string): Effect.Effect<Index, RaftError>;
  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): Effect.Effect<void, RaftError>;
  /** Takes a snapshot now (see `RaftNode.snapshot`); succeeds with what it covers. */
  readonly snapshot: Effect.Effect<SnapshotMeta, RaftError | StateMachineFailure>;
  /** Records (or changes) one node's address; the transport gets the full book. */
  setPeerAddress(id: NodeId, address: string): Effect.Effect<void>;
  /** Merges `peers` into the address book (or replaces it), then hands the transport the full book. */
  setPeers(peers: ReadonlyMap<NodeId, string>, options?: SetPeersOptions): Effect.Effect<void>;
  /** The address book. */
  readonly peerAddresses: Effect.Effect<ReadonlyMap<NodeId, string>>;
  /**
   * Waits until the node stops: succeeds after a clean stop (its scope
   * closed), fails with the fatal error that stopped it otherwise (a failed
   * write or fsync is fail-stop).
   */
  readonly done: Effect.Effect<void, StorageFailure | StateMachineFailure>;
}

/** The default {@link Raft} service key: commands and results untyped. */
export const Raft: Context.Service<Raft, Raft> = Context.Service<Raft>("@plank/raft/Raft");

/** A typed key of a {@link Raft} service (made by {@link raftService}). */
export type RaftKey<C, R> = Context.Service<Raft<C, R>, Raft<C, R>>;

/**
 * A key for a node whose commands are `C` and results `R`: give it to
 * {@link layer} with the node's options, and `yield*` it in the program.
 *
 * ```ts
 * const Add = Schema.Struct({ add: Schema.Number });
 * const Counter = raftService<typeof Add.Type, number>("app/Counter");
 * const node = layer(Counter, { id, peers, command: Add, stateMachine: { apply: (c) => (total += c.add) } });
 * const program = Effect.gen(function* () {
 *   const counter = yield* Counter;
 *   const total: number = yield* counter.propose({ add: 1 }); // propose({ add: "x" }) does not compile
 * });
 * ```
 */
export function raftService<C, R>(key: string): RaftKey<C, R> {
  return Context.Service<Raft<C, R>>(key);
}

/** Options of {@link layer}: a node's spec, whose command codec may also be a Schema. */
// deno-lint-ignore no-explicit-any
export interface LayerOptions<SM extends UserStateMachine<any, any>, C = CommandOf<SM>>
  extends Omit<NodeSpec<SM, C>, "command" | "logger" | "logLevel"> {
  /** Command codec: JSON by default; a Schema (or `schemaCodec(schema)`) for typed, validated commands. */
  // deno-lint-ignore no-explicit-any
  readonly command?: CommandCodec<C> | Schema.Codec<C, any, never, never>;
}

/** The library's own errors pass; a fatal error that is not one (a defect) reaches callers as `NodeStopped`. */
function toRaftError(e: unknown): RaftError {
  if (
    e instanceof RaftRejected || e instanceof ProposalDropped || e instanceof OutcomeUnknown ||
    e instanceof NodeStopped || e instanceof StorageFailure
  ) return e;
  return new NodeStopped(e);
}

function toProposeError(e: unknown): ProposeError {
  return e instanceof CommandCodecError || e instanceof ApplyFailure ? e : toRaftError(e);
}

function fromPromise<A>(name: string, f: () => Promise<A>): Effect.Effect<A, RaftError> {
  return Effect.tryPromise({ try: f, catch: toRaftError }).pipe(Effect.withSpan(name));
}

/** The current span and its tracer, when a tracer other than effect's in-memory default is installed. */
const traceParent = Effect.gen(function* () {
  const tracer = yield* Effect.tracer;
  if (tracer === Tracer.nativeTracer) return undefined;
  const span = yield* Effect.currentSpan.pipe(Effect.orElseSucceed(() => undefined));
  return span && { span, tracer };
});

/** A node's Layer: provides the service `S`, can fail to recover, needs the log store, snapshot store and transport. */
export type NodeLayer<S> = Layer.Layer<S, StorageFailure | StateMachineFailure, LogStore | SnapshotStore | Transport>;

/**
 * A Layer running a node for the lifetime of its scope (closing the scope
 * stops it cleanly), as the default untyped {@link Raft} service, or as the
 * typed service of `key` ({@link raftService}): then the command codec (a
 * Schema) must encode `C` and the state machine take `C` and return `R`.
 * The log store, snapshot store and transport come from the context, so any
 * Layers (memory, files, custom) plug in. The node logs through the
 * context's effect `Logger`s, and records its metrics in its `MetricRegistry`.
 */
// deno-lint-ignore no-explicit-any
export function layer<SM extends UserStateMachine<C, any>, C = CommandOf<SM>>(
  options: LayerOptions<SM, C>,
): NodeLayer<Raft>;
/** The node as the typed service of `key`. */
export function layer<C, R, SM extends UserStateMachine<C, R>>(
  key: RaftKey<C, R>,
  options: LayerOptions<SM, C>,
): NodeLayer<Raft<C, R>>;
// deno-lint-ignore no-explicit-any
export function layer(...args: [LayerOptions<any, unknown>] | [RaftKey<unknown, unknown>, LayerOptions<any, unknown>]) {
  const [key, options] = args.length === 1 ? [Raft, args[0]] : args;
  const codec = toCommandCodec<unknown>(options.command);
  return Layer.effect(
    key,
    Effect.gen(function* () {
      const handle = yield* makeNode(runtimeOptions(options)).pipe(
        Effect.provideService(StateMachine, stateMachineService(options.stateMachine, codec, true)),
      );
      const attributes = { "raft.node": options.id };
      const service: Raft = {
        id: options.id,
        propose: (command) =>
          Effect.gen(function* () {
            const data = yield* Effect.try({ try: () => encodeCommand(codec, command), catch: toProposeError });
            const trace = yield* traceParent;
            return yield* Effect.tryPromise({
              try: (signal) => handle.propose(data, { signal, trace }),
              catch: toProposeError,
            });
          }).pipe(Effect.withSpan("raft.propose", { attributes })),
        readIndex: fromPromise("raft.read", () => handle.readIndex()),
        barrier: fromPromise("raft.barrier", () => handle.readIndex()),
        waitForLeader: (timeoutMs) =>
          fromPromise("raft.wait_for_leader", () =>
            waitForLeader(
              handle,
              timeoutMs ?? 3 * (options.config?.electionTimeoutMs ?? defaultConfig.electionTimeoutMs),
            )),
        status: Effect.sync(() => ({ ...handle.status(), pid: PID })),
        subscribe: (listener) => Effect.sync(() => handle.subscribe(listener)),
        changeMembership: (change, address) =>
          fromPromise("raft.change_membership", () => handle.changeMembership(change, address)),
        transferLeadership: (to) => fromPromise("raft.transfer_leadership", () => handle.transferLeadership(to)),
        snapshot: Effect.tryPromise({
          try: () => handle.snapshot(),
          catch: (e) => e instanceof StateMachineFailure ? e : toRaftError(e),
        }).pipe(Effect.withSpan("raft.snapshot")),
        setPeerAddress: (id, address) => Effect.sync(() => handle.setPeerAddress(id, address)),
        setPeers: (peers, setOptions) => Effect.sync(() => handle.setPeers(peers, setOptions)),
        peerAddresses: Effect.sync(() => handle.peerAddresses()),
        done: Effect.tryPromise({
          try: () => handle.done,
          catch: (e) => e as StorageFailure | StateMachineFailure,
        }),
      };
      return service;
    }),
  );
}

/** The three Promise ports a node runs on, for {@link portsLayer}. */
export interface Ports {
  /** The durable log. */
  readonly logStore: LogStorePort;
  /** The snapshot store. */
  readonly snapshotStore: SnapshotStorePort;
  /** The peer transport. */
  readonly transport: TransportPort;
}

/** One Layer providing `LogStore`, `SnapshotStore` and `Transport` from Promise ports; each closed with the scope. */
export function portsLayer(ports: Ports): Layer.Layer<LogStore | SnapshotStore | Transport> {
  return Layer.mergeAll(
    logStoreLayer(ports.logStore),
    snapshotStoreLayer(ports.snapshotStore),
    transportLayer(ports.transport),
  );
}
