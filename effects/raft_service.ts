/**
 * The Effect API: a running node as the `Raft` service, provided by
 * `layer(options)` for the lifetime of its scope, over the `LogStore`,
 * `SnapshotStore` and `Transport` services from the context.
 *
 * @module
 */

import { Context, Effect, Layer, type Schema } from "effect";
import type { ConfChange, Index, NodeId, SnapshotMeta } from "../core/types.ts";

import type { CommandCodec } from "./command.ts";
import type { RaftError, StateMachineFailure, StorageFailure } from "./errors.ts";
import type { NodeStatus, RaftListener } from "./events.ts";
import { logStoreLayer, snapshotStoreLayer, transportLayer } from "./ports/mod.ts";
import {
  type CommandOf,
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
 * A running node, as an effect service. Commands and results are untyped
 * here (`unknown`): the codec given to {@link layer} checks them.
 */
export interface Raft {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * Replicates a command; succeeds with the state machine's result once
   * applied here. An `OutcomeUnknown` failure (no answer within
   * `requestTimeoutMs`) means the command may or may not have been applied.
   */
  propose(command: unknown): Effect.Effect<unknown, RaftError>;
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

/** The {@link Raft} service key. */
export const Raft: Context.Service<Raft, Raft> = Context.Service<Raft>("@plank/raft/Raft");

/** Options of {@link layer}: a node's spec, whose command codec may also be a Schema. */
// deno-lint-ignore no-explicit-any
export interface LayerOptions<SM extends UserStateMachine<any, any>> extends Omit<NodeSpec<SM>, "command"> {
  /** Command codec: JSON by default; a Schema (or `schemaCodec(schema)`) for typed, validated commands. */
  readonly command?: CommandCodec<CommandOf<SM>> | Schema.Codec<CommandOf<SM>, unknown, never, never>;
}

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
  options: LayerOptions<SM>,
): Layer.Layer<Raft, StorageFailure | StateMachineFailure, LogStore | SnapshotStore | Transport> {
  const codec = toCommandCodec<CommandOf<SM>>(options.command);
  return Layer.effect(
    Raft,
    Effect.gen(function* () {
      const handle = yield* makeNode(runtimeOptions(options)).pipe(
        Effect.provideService(StateMachine, stateMachineService(options.stateMachine, codec)),
      );
      const service: Raft = {
        id: options.id,
        propose: (command) =>
          fromPromise(() => {
            const data = codec.encode(command as CommandOf<SM>);
            return handle.propose(data);
          }),
        readIndex: fromPromise(() => handle.readIndex()),
        barrier: fromPromise(() => handle.readIndex()),
        waitForLeader: (timeoutMs) =>
          fromPromise(() =>
            waitForLeader(
              handle,
              timeoutMs ?? 3 * (options.config?.electionTimeoutMs ?? defaultConfig.electionTimeoutMs),
            )
          ),
        status: Effect.sync(() => ({ ...handle.status(), pid: PID })),
        subscribe: (listener) => Effect.sync(() => handle.subscribe(listener)),
        changeMembership: (change, address) => fromPromise(() => handle.changeMembership(change, address)),
        transferLeadership: (to) => fromPromise(() => handle.transferLeadership(to)),
        snapshot: Effect.tryPromise({
          try: () => handle.snapshot(),
          catch: (e) => e as RaftError | StateMachineFailure,
        }),
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
