/**
 * The Promise facade: `createNode` runs a node over plain Promise-style
 * ports and returns a {@link RaftNode}. Its signatures mention no `effect`
 * types; the Effect API (`raft_service.ts`) shares the spec and helpers here.
 *
 * @module
 */

import { Context, Effect, Exit, Layer, Logger, Metric, References, Scope } from "effect";
import { defaultConfig, makeConfig, type RaftConfig } from "../core/config.ts";
import { NodeStopped, RaftRejected } from "./errors.ts";
import { emptyMembership, membershipOf } from "../core/membership.ts";
import type { ConfChange, Entry, Index, NodeId, SnapshotMeta } from "../core/types.ts";
import { type CommandCodec, jsonCodec } from "./command.ts";
import { ApplyFailure, CommandCodecError } from "./errors.ts";
import type { NodeStatus, RaftListener } from "./events.ts";
import {
  loggingContext,
  type LogLevelName,
  type MetricSeries,
  metricSeries,
  type NodeLogger,
  prometheusText,
} from "./observability.ts";
import { logStoreLayer, snapshotStoreLayer, transportLayer } from "./ports/mod.ts";
import type { LogStorePort, SnapshotStorePort, TransportPort } from "./ports/mod.ts";
import { makeNode, type NodeHandle, type RuntimeOptions, type SetPeersOptions } from "./runtime/mod.ts";
import { type RestoreInProgress, type SnapshotData, type SnapshotReader, StateMachine } from "./ports/mod.ts";
import { isThenable } from "./thenable.ts";

/**
 * The user's state machine. `apply` runs once per committed command, in log
 * order, on every node.
 *
 * Snapshots stream both ways: `snapshot()` may return its bytes in one
 * buffer or as chunks (an iterable or async iterable of `Uint8Array`s, each
 * written to the store as it comes), and `restore()` reads a stored
 * snapshot chunk by chunk (`for await (const chunk of snapshot)`), or whole
 * with `await snapshot.bytes()`.
 */
export interface UserStateMachine<C, R> {
  /** Applies a committed command and returns the proposer's result (a throw fails only that proposal). */
  apply(command: C, index: Index): R | Promise<R>;
  /**
   * Captures the state for a snapshot — synchronously at the call, as of the
   * last applied entry (the node applies the next entries while the chunks
   * are written). Without it the log cannot be compacted and grows in memory.
   */
  snapshot?(): SnapshotData;
  /** Replaces the state with a stored snapshot's. Needed to catch up from snapshots. */
  restore?(snapshot: SnapshotReader): void | Promise<void>;
  /**
   * Optional, beside `restore`: decode a snapshot sent by the leader while
   * it arrives, leaving the state untouched until `commit` (see
   * {@link RestoreInProgress}).
   */
  beginRestore?(meta: SnapshotMeta): RestoreInProgress;
  /**
   * For a state machine that persists itself: the index of the last entry
   * its durable state includes (it may trail what `apply` saw). At start the
   * node restores no snapshot it already holds and replays only what follows.
   */
  appliedIndex?(): Index | Promise<Index>;
}

/**
 * Snapshot every this many applied entries unless `config.snapshotEvery`
 * says otherwise, when the state machine has `snapshot()` (the core's own
 * default, 0, never would, and its log would grow in memory forever).
 */
export const DEFAULT_SNAPSHOT_EVERY = 10_000;

/** The command type a state machine accepts. */
// deno-lint-ignore no-explicit-any
export type CommandOf<SM> = SM extends UserStateMachine<infer C, any> ? C : never;
/** The result type a state machine's `apply` produces. */
// deno-lint-ignore no-explicit-any
export type ResultOf<SM> = SM extends { apply(command: any, index: Index): infer R } ? Awaited<R> : never;

/** The core's tunables a node accepts (its id comes from {@link NodeSpec.id}). */
export type NodeConfig = Partial<Omit<RaftConfig, "id">>;

/**
 * What a node is made of, apart from its ports; shared by `createNode`,
 * `startNode` and the Effect `layer`. `C` is the command type: the codec's
 * (a Schema's `Type`) when one is given, else what `apply` takes.
 */
// deno-lint-ignore no-explicit-any
export interface NodeSpec<SM extends UserStateMachine<any, any>, C = CommandOf<SM>> {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * The cluster: node id → transport address (`"host:port"`), this node
   * included. A new cluster starts with all of them as voters; a joining
   * node (`join: true`) only learns the addresses. They seed the node's
   * address book (see {@link RaftNode.setPeers}).
   */
  readonly peers: Readonly<Record<NodeId, string>> | ReadonlyMap<NodeId, string>;
  /** Start with no membership, waiting to be added by the cluster's leader (`addVoter`/`addLearner`). */
  readonly join?: boolean;
  /** The replicated state machine. */
  readonly stateMachine: SM;
  /**
   * Command codec: JSON by default. For typed, validated commands pass
   * `schemaCodec(schema)` from `@plank/raft/effect`, or any {@link CommandCodec}.
   */
  readonly command?: CommandCodec<C>;
  /** Core tunables (election timeout, heartbeat, snapshots, flow control). */
  readonly config?: NodeConfig;
  /** Largest InstallSnapshot chunk in bytes (default: `config.maxMessageBytes`). */
  readonly snapshotChunkBytes?: number;
  /**
   * How long a proposal, read, membership change or leadership transfer may
   * wait for its outcome before it fails with `OutcomeUnknown` — an answer
   * can be lost on the network, e.g. a forwarded proposal's. Default 10,000
   * ms; `Infinity` waits forever.
   */
  readonly requestTimeoutMs?: number;
  /**
   * While no leader is known (at start, during an election), proposals and
   * reads wait up to this long for one instead of failing at once with
   * `RaftRejected("not-leader")`. A refusal by a node that knows no leader
   * means nothing was appended, so retrying is safe. Default: three election
   * timeouts; 0 fails at once.
   */
  readonly leaderWaitMs?: number;
  /**
   * Where the node's log lines go (leveled, structured: elections, leader
   * and membership changes, snapshots, storage failures, slow fsyncs, peers
   * unreachable and back). Promise API only; without it the node logs
   * nothing. The Effect API logs through the host's effect `Logger`s instead.
   */
  readonly logger?: NodeLogger;
  /** The least severe level given to `logger`. Default `"info"`. */
  readonly logLevel?: LogLevelName;
  /** A log fsync slower than this (ms) is logged as a warning and counted. Default 1000. */
  readonly slowFsyncMs?: number;
}

/** Options of {@link createNode}: the spec plus the node's three ports. */
// deno-lint-ignore no-explicit-any
export interface NodeOptions<SM extends UserStateMachine<any, any>, C = CommandOf<SM>> extends NodeSpec<SM, C> {
  /** The durable log (a write-ahead log, or `MemoryLogStore` from `@plank/raft/memory`). Closed by `stop()`. */
  readonly logStore: LogStorePort;
  /** The snapshot store. Closed by `stop()`. */
  readonly snapshotStore: SnapshotStorePort;
  /** The peer transport. Its address book is managed by the node. Closed by `stop()`. */
  readonly transport: TransportPort;
}

/** Options of one {@link RaftNode.propose}. */
export interface ProposeOptions {
  /**
   * Aborting it gives up on the proposal. While it still waits on this node
   * (queued, or for a leader to be known) it is cancelled: it rejects with
   * `ProposalCancelled` and is never applied. Once handed to the leader it
   * may still commit: it rejects with `OutcomeUnknown` as soon as the node's
   * loop takes the abort (with the outcome itself if that came first), and
   * its eventual outcome is logged (warn) and counted in
   * `plank_proposals_abandoned_total` — never silently dropped.
   */
  readonly signal?: AbortSignal;
}

/** A running Raft node (Promise facade). */
export interface RaftNode<C, R, SM> {
  /** This node's id. */
  readonly id: NodeId;
  /**
   * Replicates `command` and resolves with the state machine's result once
   * it is applied on this node. On a follower the core forwards it to the
   * leader. Fails with `RaftRejected` (e.g. no leader; safe to retry),
   * `ProposalDropped` (overwritten by a new leader; it did not take effect),
   * `OutcomeUnknown` (no answer within `requestTimeoutMs`, or its entry was
   * replaced by a snapshot: the command **may or may not have been
   * applied**) or `NodeStopped`.
   */
  propose(command: C, options?: ProposeOptions): Promise<R>;
  /** Runs `fn` against the state machine at a linearizable point (ReadIndex, thesis §6.4). */
  read<T>(fn: (stateMachine: SM) => T | Promise<T>): Promise<T>;
  /** A linearizable read index, already applied on this node (fails like {@link RaftNode.propose}). */
  readIndex(): Promise<Index>;
  /**
   * Resolves once everything committed before the call is applied to this
   * node's state machine (hashicorp/raft's `Barrier`), with the applied
   * index: e.g. a new leader's state machine before it serves from it. A
   * ReadIndex round (§6.4): it appends nothing. Fails like {@link RaftNode.readIndex}.
   */
  barrier(): Promise<Index>;
  /**
   * Resolves with the leader's id once this node knows one (at once if it
   * does); rejects with `RaftRejected("timeout")` after `timeoutMs`
   * (default: three election timeouts), or `NodeStopped`.
   */
  waitForLeader(timeoutMs?: number): Promise<NodeId>;
  /** The node's state as of its last loop iteration (on the leader, with every peer's progress). */
  status(): NodeStatus;
  /**
   * A snapshot of the node's metrics (etcd's raft set: leader, term,
   * indexes, proposals, fsync and append histograms, round trips, snapshot
   * transfers, ReadIndex rounds, refusals), as plain series.
   */
  metrics(): readonly MetricSeries[];
  /** The same metrics in Prometheus' text exposition format (effect's exporter), for a `/metrics` endpoint. */
  prometheusMetrics(): string;
  /** Adds an event listener; returns the unsubscribe function. */
  subscribe(listener: RaftListener): () => void;
  /**
   * Adds a voter at `address` (one server at a time, thesis §4.1); the
   * address enters the address book first. A node that is not yet a member
   * joins as a learner marked for promotion, and the leader promotes it once
   * it has caught up (thesis §4.2.1); an existing learner is promoted at once.
   * Resolves with the (first) config entry's index once applied here.
   */
  addVoter(id: NodeId, address: string): Promise<Index>;
  /**
   * Adds a non-voting learner at `address` (thesis §4.2.1). It has caught
   * up once the leader's `status().progress.get(id).match` reaches the
   * commit index; then {@link RaftNode.promote} it.
   */
  addLearner(id: NodeId, address: string): Promise<Index>;
  /** Makes a learner a voter. */
  promote(id: NodeId): Promise<Index>;
  /** Removes a node from the membership (its address stays in the book; `setPeers(…, { replace: true })` prunes). */
  removeNode(id: NodeId): Promise<Index>;
  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): Promise<void>;
  /**
   * Takes a snapshot now: captures the state machine at the applied index,
   * stores it, and compacts the log behind it (keeping `keepAfterSnapshot`
   * entries). Resolves with what the stored snapshot covers (the latest one
   * at once if nothing was applied since, or a snapshot installed from the
   * leader meanwhile that covers what was applied). Fails with `StateMachineFailure`
   * if the state machine cannot snapshot (the node goes on), `NodeStopped`.
   */
  snapshot(): Promise<SnapshotMeta>;
  /** Records (or changes) one node's address; the transport gets the full book. */
  setPeerAddress(id: NodeId, address: string): void;
  /**
   * Merges `peers` into the address book — or replaces the book with them
   * when `options.replace` is set — and hands the transport the full book.
   */
  setPeers(
    peers: Readonly<Record<NodeId, string>> | ReadonlyMap<NodeId, string>,
    options?: SetPeersOptions,
  ): void;
  /** The address book: every node id → address this node knows (itself included if given). */
  peerAddresses(): ReadonlyMap<NodeId, string>;
  /** Stops: finishes the in-flight sync, fails pending requests, closes transport and stores. */
  stop(): Promise<void>;
  /**
   * Settles when the node has stopped: resolves after `stop()`, rejects with
   * the fatal error that stopped it otherwise (a `StorageFailure` — a failed
   * write or fsync is fail-stop — or a `StateMachineFailure`); the node then
   * closes its stores and transport by itself, as `stop()` would. A process
   * hosting the node should exit (non-zero) on a rejection so that its
   * supervisor restarts it; the restarted node recovers from disk and
   * catches up.
   */
  readonly done: Promise<void>;
}

/** This process's id on Deno or Bun (undefined elsewhere, e.g. in a browser). */
export const PID: number | undefined = (globalThis as { process?: { pid?: number } }).process?.pid ??
  (globalThis as { Deno?: { pid?: number } }).Deno?.pid;

/** The leader's id once `handle` knows one; see {@link RaftNode.waitForLeader}. */
export function waitForLeader(handle: NodeHandle, timeoutMs: number): Promise<NodeId> {
  const known = handle.status();
  if (known.stopped) return Promise.reject(new NodeStopped());
  if (known.leader !== undefined) return Promise.resolve(known.leader);
  return new Promise<NodeId>((resolve, reject) => {
    const done = (settle: () => void) => {
      clearTimeout(timer);
      clearInterval(poll);
      unsubscribe();
      settle();
    };
    const unsubscribe = handle.subscribe((e) => {
      if (e.type === "leader" && e.leader !== undefined) done(() => resolve(e.leader!));
      else if (e.type === "stopped") done(() => reject(e.error ?? new NodeStopped()));
    });
    // status() is refreshed at the end of a loop iteration, events during it: a leader
    // announced between the check above and the subscription shows in the status.
    const poll = setInterval(() => {
      const s = handle.status();
      if (s.leader !== undefined) done(() => resolve(s.leader!));
      else if (s.stopped) done(() => reject(s.error ?? new NodeStopped()));
    }, 20);
    const timer = setTimeout(() => done(() => reject(new RaftRejected("timeout", undefined))), timeoutMs);
  });
}

/** A peer list given as a record or a map, as a fresh map. */
export function peerMap(peers: Readonly<Record<NodeId, string>> | ReadonlyMap<NodeId, string>): Map<NodeId, string> {
  return peers instanceof Map ? new Map(peers) : new Map(Object.entries(peers as Record<NodeId, string>));
}

/**
 * The byte-level state machine service over the user's typed one. An entry
 * that does not decode fails its proposal with a `CommandCodecError` (the
 * state machine never sees it). What `apply` throws (or rejects with) fails
 * only its proposal: as itself (the Promise API), or — `wrapFailures`, for
 * the Effect API's exactly typed errors — as an `ApplyFailure` carrying it.
 */
// deno-lint-ignore no-explicit-any
export function stateMachineService<SM extends UserStateMachine<any, any>, C>(
  sm: SM,
  codec: CommandCodec<C>,
  wrapFailures = false,
): StateMachine {
  return {
    apply: (entry: Entry) => {
      let command: C;
      try {
        command = codec.decode(entry.data);
      } catch (e) {
        throw new CommandCodecError("decode", e);
      }
      if (!wrapFailures) return sm.apply(command, entry.index);
      const failed = (e: unknown): never => {
        throw new ApplyFailure(e, entry.index);
      };
      let result: unknown;
      try {
        result = sm.apply(command, entry.index);
      } catch (e) {
        return failed(e);
      }
      return isThenable(result) ? Promise.resolve(result).catch(failed) : result;
    },
    snapshot: () => {
      if (!sm.snapshot) throw new Error("the state machine has no snapshot()");
      return sm.snapshot();
    },
    restore: (snapshot) => {
      if (!sm.restore) throw new Error("the state machine has no restore()");
      return sm.restore(snapshot);
    },
    ...(sm.appliedIndex ? { appliedIndex: () => sm.appliedIndex!() } : {}),
    ...(sm.beginRestore ? { beginRestore: (meta: SnapshotMeta) => sm.beginRestore!(meta) } : {}),
  };
}

/** The interpreter's options from a spec. */
// deno-lint-ignore no-explicit-any
export function runtimeOptions(spec: Omit<NodeSpec<any>, "command">): RuntimeOptions {
  const peers = peerMap(spec.peers);
  const snapshotEvery = spec.stateMachine.snapshot ? DEFAULT_SNAPSHOT_EVERY : 0;
  return {
    // Election jitter must differ between nodes; the core takes its randomness as a seed (docs/DESIGN.md).
    config: makeConfig({
      seed: 1 + Math.floor(Math.random() * 0x7ffffffe),
      snapshotEvery,
      ...spec.config,
      id: spec.id,
    }),
    membership: spec.join ? emptyMembership : membershipOf([...peers.keys()]),
    snapshotChunkBytes: spec.snapshotChunkBytes,
    peers,
    requestTimeoutMs: spec.requestTimeoutMs,
    leaderWaitMs: spec.leaderWaitMs,
    slowFsyncMs: spec.slowFsyncMs,
  };
}

/** Encodes `command`, failing with a `CommandCodecError` (an invalid command never reaches the log). */
export function encodeCommand<C>(codec: CommandCodec<C>, command: C): Uint8Array {
  try {
    return codec.encode(command);
  } catch (e) {
    throw new CommandCodecError("encode", e);
  }
}

// deno-lint-ignore no-explicit-any
function wrap<SM extends UserStateMachine<any, any>, C>(
  spec: NodeSpec<SM, C>,
  handle: NodeHandle,
  codec: CommandCodec<C>,
  metrics: Context.Context<never>,
  close: () => Promise<void>,
): RaftNode<C, ResultOf<SM>, SM> {
  const change = (c: ConfChange, address?: string): Promise<Index> => handle.changeMembership(c, address);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= handle.stop().finally(close);
    return stopping;
  };
  // A node stopped by a fatal error releases its stores, transport and data directory at once.
  handle.done.catch(() => stop().catch(() => {}));
  return {
    id: spec.id,
    propose: (command, options) => {
      let data: Uint8Array;
      try {
        data = encodeCommand(codec, command);
      } catch (e) {
        return Promise.reject(e);
      }
      return handle.propose(data, options) as Promise<ResultOf<SM>>;
    },
    read: async (fn) => {
      await handle.readIndex();
      return await fn(spec.stateMachine);
    },
    readIndex: () => handle.readIndex(),
    barrier: () => handle.readIndex(),
    waitForLeader: (timeoutMs) =>
      waitForLeader(handle, timeoutMs ?? 3 * (spec.config?.electionTimeoutMs ?? defaultConfig.electionTimeoutMs)),
    status: () => ({ ...handle.status(), pid: PID }),
    metrics: () => metricSeries(metrics),
    prometheusMetrics: () => prometheusText(metrics),
    subscribe: (listener) => handle.subscribe(listener),
    addVoter: (id, address) => change({ type: "addVoter", node: id }, address),
    addLearner: (id, address) => change({ type: "addLearner", node: id }, address),
    promote: (id) => change({ type: "promote", node: id }),
    removeNode: (id) => change({ type: "remove", node: id }),
    transferLeadership: (to) => handle.transferLeadership(to),
    snapshot: () => handle.snapshot(),
    setPeerAddress: (id, address) => handle.setPeerAddress(id, address),
    setPeers: (peers, options) => handle.setPeers(peerMap(peers), options),
    peerAddresses: () => handle.peerAddresses(),
    stop,
    done: handle.done,
  };
}

/**
 * Starts a node: recovers from the stores, then runs its loop until
 * `stop()`. Rejects with `StorageFailure`/`StateMachineFailure` if recovery
 * fails (the ports are closed then). The node keeps its metrics in a
 * registry of its own (`metrics()`), and logs to `logger` if one is given.
 *
 * ```ts
 * const node = await createNode({ id: "a", peers: { a: "127.0.0.1:7001" },
 *   stateMachine: { apply: (n: number) => n + 1 }, logStore, snapshotStore, transport });
 * await node.propose(41); // 42
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function createNode<SM extends UserStateMachine<C, any>, C = CommandOf<SM>>(
  options: NodeOptions<SM, C>,
): Promise<RaftNode<C, ResultOf<SM>, SM>> {
  const codec = options.command ?? jsonCodec<C>();
  const services = Layer.mergeAll(
    logStoreLayer(options.logStore),
    snapshotStoreLayer(options.snapshotStore),
    transportLayer(options.transport),
    Layer.succeed(StateMachine, stateMachineService(options.stateMachine, codec)),
  );
  const scope = Effect.runSync(Scope.make());
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void));
  const program = Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(services, scope);
    return yield* makeNode(runtimeOptions(options)).pipe(Effect.provideContext(context), Scope.provide(scope));
  });
  // Each node has its own registry and loggers: a Promise user has no effect context to share.
  const registry: Metric.MetricRegistry = new Map();
  const logging = loggingContext(options.logger, options.logLevel);
  const observed = program.pipe(
    Effect.provideService(Metric.MetricRegistry, registry),
    Effect.provideService(Logger.CurrentLoggers, logging.loggers),
    Effect.provideService(References.MinimumLogLevel, logging.minimum),
  );
  let handle: NodeHandle;
  try {
    handle = await Effect.runPromise(observed);
  } catch (e) {
    await close();
    throw e;
  }
  return wrap(options, handle, codec, Context.make(Metric.MetricRegistry, registry), close);
}
