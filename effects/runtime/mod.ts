/**
 * The production interpreter: recover a node from its stores, build its
 * {@link NodeDriver}, and run its loop (`loop.ts`) in the current scope.
 *
 * @module
 */

import { Clock, Effect, type Scope } from "effect";
import type { RaftConfig } from "../../core/config.ts";
import type { Membership, NodeId } from "../../core/types.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS, NodeDriver, type SnapshotInfo } from "../driver/driver.ts";
import { StateMachineFailure, StorageFailure } from "../errors.ts";
import { Listeners } from "../events.ts";
import { LogStore, SnapshotStore, StateMachine, Transport } from "../ports/mod.ts";
import { type NodeHandle, NodeLoop } from "./loop.ts";
import { NodeObserver } from "./observe.ts";
import { restoreFrom } from "./snapshot_io.ts";

export type { NodeHandle, ProposeOptions, SetPeersOptions } from "./loop.ts";
export type { TraceParent } from "./tracing.ts";

/** Default of {@link RuntimeOptions.slowFsyncMs}: etcd's threshold for a slow fdatasync. */
export const DEFAULT_SLOW_FSYNC_MS = 1000;
export { DEFAULT_REQUEST_TIMEOUT_MS };

/** Settings of the interpreter itself (the core's are in `config`). */
export interface RuntimeOptions {
  /** The core's configuration. */
  readonly config: RaftConfig;
  /** Membership used when neither the log nor a snapshot carries one (a new cluster's voters). */
  readonly membership: Membership;
  /** Largest InstallSnapshot chunk, in bytes (default: `config.maxMessageBytes`). */
  readonly snapshotChunkBytes?: number;
  /**
   * The initial address book (node id → `"host:port"`, this node may be
   * included). The node hands the transport the full book at start and
   * whenever it changes. Default: empty.
   */
  readonly peers?: ReadonlyMap<NodeId, string>;
  /**
   * How long a request (proposal, read, membership change, transfer) may
   * wait for its outcome before failing with `OutcomeUnknown`. Default
   * 10,000 ms; `Infinity` waits forever.
   */
  readonly requestTimeoutMs?: number;
  /**
   * While no leader is known, proposals and reads wait up to this long for
   * one (then fail with `RaftRejected("not-leader")`). Default: three
   * election timeouts; 0 fails at once.
   */
  readonly leaderWaitMs?: number;
  /** Where this start's request ids begin (default: drawn at random, so ids never repeat across restarts). */
  readonly firstRequestId?: number;
  /** A log fsync slower than this (ms) is logged as a warning and counted. Default 1000. */
  readonly slowFsyncMs?: number;
}

/** Everything a node needs from its environment. */
export type NodeServices = LogStore | SnapshotStore | Transport | StateMachine;

/**
 * Recovers a node from its stores and starts its loop in the current scope.
 * Closing the scope stops the node cleanly (as `stop()` does). The node logs
 * through the loggers of the current context (at its minimum log level),
 * records its metrics in the context's `MetricRegistry` and its proposals'
 * spans with the caller's tracer (see `observe.ts`).
 */
export function makeNode(
  options: RuntimeOptions,
): Effect.Effect<NodeHandle, StorageFailure | StateMachineFailure, NodeServices | Scope.Scope> {
  return Effect.gen(function* () {
    const log = yield* LogStore;
    const snapshots = yield* SnapshotStore;
    const transport = yield* Transport;
    const sm = yield* StateMachine;
    const recovered = yield* log.load;
    const latest = yield* snapshots.latest;
    // A state machine that persists itself says how far it got: it replays only what follows.
    const applied = sm.appliedIndex === undefined ? 0 : yield* Effect.tryPromise({
      try: async () => await sm.appliedIndex!(),
      catch: (e) => new StateMachineFailure("appliedIndex", e),
    });
    const logEnd = Math.max(recovered.entries.at(-1)?.index ?? 0, latest?.meta.index ?? 0);
    if (!Number.isSafeInteger(applied) || applied < 0 || applied > logEnd) {
      // It holds entries this node's log never had: another node's state, or a log that lost its end.
      return yield* Effect.fail(
        new StateMachineFailure(
          "appliedIndex",
          new Error(`the state machine reports index ${applied} applied, but the log ends at ${logEnd}`),
        ),
      );
    }
    if (latest && applied < latest.meta.index) yield* restoreFrom(sm, latest);
    const snapshot: SnapshotInfo | undefined = latest && {
      meta: latest.meta,
      size: latest.size,
      checksum: latest.checksum,
    };
    const queue = yield* NodeLoop.queue();
    const listeners = new Listeners();
    const chunkBytes = options.snapshotChunkBytes ?? options.config.maxMessageBytes;
    const loop = new NodeLoop(
      queue,
      { log, snapshots, transport, sm },
      listeners,
      options.config.id,
      options.peers ?? new Map(),
      chunkBytes,
    );
    const now = yield* Clock.currentTimeMillis;
    let driver: NodeDriver;
    try {
      driver = new NodeDriver(
        {
          config: options.config,
          membership: options.membership,
          snapshotChunkBytes: chunkBytes,
          requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          leaderWaitMs: options.leaderWaitMs,
          firstRequestId: options.firstRequestId ?? 1 + Math.floor(Math.random() * 2 ** 31) * 2 ** 21,
          onEvent: (event) => loop.emit(event),
          onObserve: (observation) => loop.observe(observation),
        },
        { hardState: recovered.hardState, entries: recovered.entries, snapshot, applied },
        now,
      );
    } catch (e) {
      return yield* Effect.fail(new StorageFailure("recover", e));
    }
    const observer = new NodeObserver({
      id: options.config.id,
      group: options.config.group,
      context: yield* Effect.context<never>(),
      status: () => driver.status(),
      slowFsyncMs: options.slowFsyncMs ?? DEFAULT_SLOW_FSYNC_MS,
      quietMs: 10 * options.config.electionTimeoutMs,
    });
    observer.started(driver.status(), snapshot?.meta.index);
    loop.attach(driver, observer, latest);
    loop.pushPeers();
    loop.listen();
    yield* Effect.forkScoped(loop.run());
    yield* Effect.addFinalizer(() => Effect.promise(() => loop.stop().catch(() => {})));
    return loop.handle();
  });
}
