/**
 * The public node API: the Promise facade `createNode` and, for Effect
 * users, the `RaftNode` service with its `layer`.
 *
 * @module
 */

import { Context, Effect, Exit, Layer, type Schema, Scope } from "effect";
import { makeConfig, type RaftConfig } from "../core/config.ts";
import { emptyMembership, membershipOf } from "../core/membership.ts";
import type { ConfChange, Entry, Index, NodeId } from "../core/types.ts";
import { type CommandCodec, toCommandCodec } from "./command.ts";
import type { RaftError, StateMachineFailure, StorageFailure } from "./errors.ts";
import type { NodeStatus, RaftListener } from "./events.ts";
import {
  logStoreLayer,
  type LogStorePort,
  snapshotStoreLayer,
  type SnapshotStorePort,
  transportLayer,
  type TransportPort,
} from "./ports.ts";
import { makeNode, type NodeHandle, type RuntimeOptions } from "./runtime.ts";
import { type LogStore, type SnapshotStore, StateMachine, type Transport } from "./services.ts";

/** The user's state machine. `apply` runs once per committed command, in log order, on every node. */
export interface UserStateMachine<C, R> {
  /** Applies a committed command and returns the proposer's result (a throw fails only that proposal). */
  apply(command: C, index: Index): R | Promise<R>;
  /** Captures the state (synchronously at the call) for a snapshot. Needed when `snapshotEvery` > 0. */
  snapshot?(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the state with a snapshot's bytes. Needed to catch up from snapshots. */
  restore?(bytes: Uint8Array): void | Promise<void>;
}

/** The command type a state machine accepts. */
// deno-lint-ignore no-explicit-any
export type CommandOf<SM> = SM extends UserStateMachine<infer C, any> ? C : never;
/** The result type a state machine's `apply` produces. */
// deno-lint-ignore no-explicit-any
export type ResultOf<SM> = SM extends { apply(command: any, index: Index): infer R } ? Awaited<R> : never;

/** What a node is made of, shared by {@link createNode} and {@link layer}. */
// deno-lint-ignore no-explicit-any
export interface NodeSpec<SM extends UserStateMachine<any, any>> {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * The cluster: node id → transport address (`"host:port"`), this node
   * included. A new cluster starts with all of them as voters.
   */
  readonly peers: Readonly<Record<NodeId, string>> | ReadonlyMap<NodeId, string>;
  /** Start with no membership, waiting to be added by the cluster's leader (`addVoter`/`addLearner`). */
  readonly join?: boolean;
  /** The replicated state machine. */
  readonly stateMachine: SM;
  /** Command codec: JSON by default; pass a Schema for typed, validated commands. */
  readonly command?: CommandCodec<CommandOf<SM>> | Schema.Codec<CommandOf<SM>, unknown, never, never>;
  /** Core tunables (election timeout, heartbeat, snapshots, flow control). */
  readonly config?: Partial<Omit<RaftConfig, "id">>;
  /** Largest InstallSnapshot chunk in bytes (default: `config.maxMessageBytes`). */
  readonly snapshotChunkBytes?: number;
}

/** A store or transport given either as a plain Promise-based object or as an effect Layer. */
export type ServiceInput<Port, S> = Port | Layer.Layer<S, unknown>;

/** Options of {@link createNode}. */
// deno-lint-ignore no-explicit-any
export interface NodeOptions<SM extends UserStateMachine<any, any>> extends NodeSpec<SM> {
  /** The durable log (e.g. a write-ahead log, or `MemoryLogStore`). Closed by `stop()`. */
  readonly logStore: ServiceInput<LogStorePort, LogStore>;
  /** The snapshot store. Closed by `stop()`. */
  readonly snapshotStore: ServiceInput<SnapshotStorePort, SnapshotStore>;
  /** The peer transport. Closed by `stop()`. */
  readonly transport: ServiceInput<TransportPort, Transport>;
}

/** A running Raft node (Promise facade). */
export interface RaftNode<C, R, SM> {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * Replicates `command` and resolves with the state machine's result once
   * it is applied on this node. On a follower the core forwards it to the
   * leader. Fails with `RaftRejected`, `ProposalDropped`, `OutcomeUnknown`
   * or `NodeStopped`.
   */
  propose(command: C): Promise<R>;
  /** Runs `fn` against the state machine at a linearizable point (ReadIndex, §6.4). */
  read<T>(fn: (stateMachine: SM) => T | Promise<T>): Promise<T>;
  /** A linearizable read index, already applied on this node. */
  readIndex(): Promise<Index>;
  /** The node's state as of its last loop iteration. */
  status(): NodeStatus;
  /** Adds an event listener; returns the unsubscribe function. */
  subscribe(listener: RaftListener): () => void;
  /** Adds a voter at `address` (one server at a time, thesis §4.1). Resolves with the config entry's index. */
  addVoter(id: NodeId, address: string): Promise<Index>;
  /** Adds a non-voting learner at `address`. */
  addLearner(id: NodeId, address: string): Promise<Index>;
  /** Makes a learner a voter. */
  promote(id: NodeId): Promise<Index>;
  /** Removes a node from the membership. */
  removeNode(id: NodeId): Promise<Index>;
  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): Promise<void>;
  /** Stops: finishes the in-flight sync, fails pending requests, closes transport and stores. */
  stop(): Promise<void>;
}

function peerMap(peers: NodeSpec<UserStateMachine<unknown, unknown>>["peers"]): Map<NodeId, string> {
  return peers instanceof Map ? new Map(peers) : new Map(Object.entries(peers as Record<NodeId, string>));
}

function withoutSelf(peers: ReadonlyMap<NodeId, string>, self: NodeId): Map<NodeId, string> {
  const others = new Map(peers);
  others.delete(self);
  return others;
}

// deno-lint-ignore no-explicit-any
function stateMachineService<SM extends UserStateMachine<any, any>>(
  sm: SM,
  codec: CommandCodec<CommandOf<SM>>,
): StateMachine {
  return {
    apply: (entry: Entry) => sm.apply(codec.decode(entry.data), entry.index),
    snapshot: () => {
      if (!sm.snapshot) throw new Error("the state machine has no snapshot()");
      return sm.snapshot();
    },
    restore: (bytes) => {
      if (!sm.restore) throw new Error("the state machine has no restore()");
      return sm.restore(bytes);
    },
  };
}

// deno-lint-ignore no-explicit-any
function runtimeOptions(spec: NodeSpec<any>): RuntimeOptions {
  const peers = peerMap(spec.peers);
  return {
    // Election jitter must differ between nodes; the core takes its randomness as a seed (DESIGN.md).
    config: makeConfig({ seed: 1 + Math.floor(Math.random() * 0x7ffffffe), ...spec.config, id: spec.id }),
    membership: spec.join ? emptyMembership : membershipOf([...peers.keys()]),
    snapshotChunkBytes: spec.snapshotChunkBytes,
  };
}

// deno-lint-ignore no-explicit-any
function wrap<SM extends UserStateMachine<any, any>>(
  spec: NodeSpec<SM>,
  handle: NodeHandle,
  codec: CommandCodec<CommandOf<SM>>,
  close: () => Promise<void>,
): RaftNode<CommandOf<SM>, ResultOf<SM>, SM> {
  const peers = peerMap(spec.peers);
  const change = (c: ConfChange, address?: string): Promise<Index> => {
    if ((c.type === "addVoter" || c.type === "addLearner") && address !== undefined) {
      peers.set(c.node, address);
      handle.setPeers(withoutSelf(peers, spec.id));
    }
    return handle.changeMembership(c);
  };
  let stopping: Promise<void> | undefined;
  return {
    id: spec.id,
    propose: (command) => {
      let data: Uint8Array;
      try {
        data = codec.encode(command);
      } catch (e) {
        return Promise.reject(e); // An invalid command never reaches the log.
      }
      return handle.propose(data) as Promise<ResultOf<SM>>;
    },
    read: async (fn) => {
      await handle.readIndex();
      return await fn(spec.stateMachine);
    },
    readIndex: () => handle.readIndex(),
    status: () => handle.status(),
    subscribe: (listener) => handle.subscribe(listener),
    addVoter: (id, address) => change({ type: "addVoter", node: id }, address),
    addLearner: (id, address) => change({ type: "addLearner", node: id }, address),
    promote: (id) => change({ type: "promote", node: id }),
    removeNode: (id) => change({ type: "remove", node: id }),
    transferLeadership: (to) => handle.transferLeadership(to),
    stop: () => {
      stopping ??= handle.stop().finally(close);
      return stopping;
    },
  };
}

function asLayer<Port, S>(
  input: ServiceInput<Port, S>,
  fromPort: (port: Port) => Layer.Layer<S>,
): Layer.Layer<S, unknown> {
  return Layer.isLayer(input) ? input as Layer.Layer<S, unknown> : fromPort(input as Port);
}

/**
 * Starts a node: recovers from the stores, then runs its loop until
 * `stop()`. Rejects with `StorageFailure`/`StateMachineFailure` if recovery
 * fails.
 *
 * ```ts
 * const node = await createNode({ id: "a", peers: { a: "127.0.0.1:7001" },
 *   stateMachine: { apply: (n: number) => n + 1 }, logStore, snapshotStore, transport });
 * await node.propose(41); // 42
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function createNode<SM extends UserStateMachine<any, any>>(
  options: NodeOptions<SM>,
): Promise<RaftNode<CommandOf<SM>, ResultOf<SM>, SM>> {
  const codec = toCommandCodec<CommandOf<SM>>(options.command);
  const services = Layer.mergeAll(
    asLayer(options.logStore, logStoreLayer),
    asLayer(options.snapshotStore, snapshotStoreLayer),
    asLayer(options.transport, transportLayer),
    Layer.succeed(StateMachine, stateMachineService(options.stateMachine, codec)),
  );
  const scope = Effect.runSync(Scope.make());
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void));
  const program = Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(services, scope);
    return yield* makeNode(runtimeOptions(options)).pipe(Effect.provideContext(context), Scope.provide(scope));
  });
  let handle: NodeHandle;
  try {
    handle = await Effect.runPromise(program);
  } catch (e) {
    await close();
    throw e;
  }
  return wrap(options, handle, codec, close);
}

/** A running node for Effect users (see {@link RaftNode} for the Promise facade). Commands and results are untyped here; use {@link layer}'s options to type them. */
export interface RaftNodeEffect {
  /** Replicates a command; succeeds with the state machine's result once applied here. */
  propose(command: unknown): Effect.Effect<unknown, RaftError>;
  /** A linearizable read index, already applied here. */
  readonly readIndex: Effect.Effect<Index, RaftError>;
  /** The node's state. */
  readonly status: Effect.Effect<NodeStatus>;
  /** Adds an event listener; returns the unsubscribe function. */
  subscribe(listener: RaftListener): Effect.Effect<() => void>;
  /** Proposes a membership change. */
  changeMembership(change: ConfChange): Effect.Effect<Index, RaftError>;
  /** Hands leadership to `to`. */
  transferLeadership(to: NodeId): Effect.Effect<void, RaftError>;
}

/** The {@link RaftNodeEffect} service key. */
export const RaftNode: Context.Service<RaftNodeEffect, RaftNodeEffect> = Context.Service<RaftNodeEffect>(
  "@plank/raft/RaftNode",
);

function fromPromise<A>(f: () => Promise<A>): Effect.Effect<A, RaftError> {
  return Effect.tryPromise({ try: f, catch: (e) => e as RaftError });
}

/**
 * A Layer running a node for the lifetime of its scope (closing the scope
 * stops it cleanly). The log store, snapshot store and transport come from
 * the context, so any Layers (memory, files, custom) plug in.
 */
// deno-lint-ignore no-explicit-any
export function layer<SM extends UserStateMachine<any, any>>(
  spec: NodeSpec<SM>,
): Layer.Layer<RaftNodeEffect, StorageFailure | StateMachineFailure, LogStore | SnapshotStore | Transport> {
  const codec = toCommandCodec<CommandOf<SM>>(spec.command);
  return Layer.effect(
    RaftNode,
    Effect.gen(function* () {
      const handle = yield* makeNode(runtimeOptions(spec)).pipe(
        Effect.provideService(StateMachine, stateMachineService(spec.stateMachine, codec)),
      );
      const service: RaftNodeEffect = {
        propose: (command) => fromPromise(() => handle.propose(codec.encode(command as CommandOf<SM>))),
        readIndex: fromPromise(() => handle.readIndex()),
        status: Effect.sync(() => handle.status()),
        subscribe: (listener) => Effect.sync(() => handle.subscribe(listener)),
        changeMembership: (change) => fromPromise(() => handle.changeMembership(change)),
        transferLeadership: (to) => fromPromise(() => handle.transferLeadership(to)),
      };
      return service;
    }),
  );
}
