/**
 * The production host: many groups in one process, a thin I/O shell around
 * the {@link HostDriver} on Effect (one fiber, one queue, Effect's `Clock`).
 * Each iteration takes the ready items (up to `maxBatch`), hands them to the host, then carries
 * out the host's work until it asks for nothing more: every group's sends
 * (one transport, so one connection and one write per peer process), one
 * record of every group's writes ({@link MultiGroupLogPort}), each group's
 * applies; then it sleeps until the host's next deadline. The records go to
 * a writer fiber beside the loop, which syncs every record queued behind the
 * last fsync with one fsync (as the single-group runtime's writer,
 * `effects/runtime/loop.ts`), so the loop keeps serving while the disk works.
 *
 * Snapshots are per group, with the single-group runtime's rules and code
 * (`effects/runtime/snapshot_io.ts`): with a {@link GroupSnapshotsPort}
 * (e.g. `FileGroupSnapshots`) and a state machine that can snapshot, a
 * group captures its state every `snapshotEvery` applied entries, stores it
 * in its own store, and only once it is durable does its core compact behind
 * it (§7; thesis §5.1): the compaction is written to the multi-group log
 * with a checkpoint of the group, so the shared log drops the group's prefix
 * once no other group pins those records. A crash between the snapshot and
 * the compaction record leaves both the snapshot and the whole log, which
 * replay reconciles. A follower behind a group's compacted prefix is sent the
 * snapshot in InstallSnapshot chunks over the host's transport, checksummed
 * end to end (thesis §5.3). At `addGroup`, a group restores its state machine
 * from its latest snapshot, then replays the log suffix.
 *
 * @module
 */

import { Cause, Clock, Effect, Exit, Fiber, Queue } from "effect";
import { makeConfig, type RaftConfig } from "../../core/config.ts";
import { sliceLog } from "../../core/log.ts";
import { lastIndex } from "../../core/log.ts";
import type { ConfChange, Entry, GroupId, Index, Membership, Message, NodeId, SnapshotMeta } from "../../core/types.ts";
import type { ChunkSend, NodeDriver, SnapshotInfo } from "../driver/driver.ts";
import type { Settle } from "../driver/requests.ts";
import { NodeStopped, RaftRejected, StateMachineFailure, type StorageFailure } from "../errors.ts";
import type { NodeStatus } from "../events.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import { attempt } from "../ports/attempt.ts";
import {
  type PersistBatch,
  type RecoveredLog,
  type RestoreInProgress,
  type SnapshotData,
  type SnapshotReader,
  type SnapshotStore,
  snapshotStoreFromPort,
  type SnapshotStorePort,
  type StateMachine,
  type StoredSnapshot,
  transportFromPort,
  type TransportPort,
} from "../ports/mod.ts";
import {
  captureSnapshot,
  ChunkStreams,
  holdFor,
  type IntakeReports,
  letGoOf,
  restoreFrom,
  SnapshotIntake,
} from "../runtime/snapshot_io.ts";
import { HostDriver, type HostWriteUnit } from "./host_driver.ts";

/** One group's operation in a host write (see `adapters/storage/multi_log.ts`). */
export type HostLogOp =
  | { readonly group: GroupId; readonly batch: PersistBatch }
  | { readonly group: GroupId; readonly compactTo: Index }
  | {
    readonly group: GroupId;
    readonly checkpoint: {
      readonly hardState: RecoveredLog["hardState"];
      readonly offset: Index;
      readonly entries: readonly Entry[];
    };
  }
  | { readonly group: GroupId; readonly remove: true };

/** The log of every group of a host (a `MultiGroupLog`, or anything alike). */
export interface MultiGroupLogPort {
  /** Each group's recovered log (once). */
  load(): Map<GroupId, RecoveredLog>;
  /** One record of the iteration's operations; not durable until `sync`. */
  write(ops: readonly HostLogOp[]): Promise<void>;
  /** One fsync of every earlier write. */
  sync(): Promise<void>;
  /** Groups to checkpoint so the shared log can shrink: pinned more than `behind` records back, at most `max`. */
  pinning(behind: number, max: number): GroupId[];
  /** Releases the store. */
  close(): Promise<void>;
}

/** A group's byte-level state machine (the host applies committed commands to it). */
export interface HostStateMachine {
  /** Applies a committed command; its result answers the proposer. */
  apply(entry: Entry): unknown;
  /**
   * Captures the state as of the last applied entry, synchronously at the
   * call (as `StateMachine.snapshot`). Without it the group never snapshots
   * here.
   */
  snapshot?(): SnapshotData;
  /** Replaces the whole state with a snapshot's (at start, or one received from the group's leader). */
  restore?(snapshot: SnapshotReader): void | PromiseLike<void>;
  /** Optional: decodes a snapshot from the group's leader as it arrives (as `StateMachine.beginRestore`). */
  beginRestore?(meta: SnapshotMeta): RestoreInProgress;
}

/**
 * Every hosted group's snapshot store (`FileGroupSnapshots` in
 * `adapters/storage/snapshots.ts`: one `FileSnapshotStore` per group).
 */
export interface GroupSnapshotsPort {
  /** Group `group`'s store (the same one on every call). */
  open(group: GroupId): Promise<SnapshotStorePort>;
  /** Deletes group `group`'s snapshots durably (it left this host, or starts with no log). */
  remove(group: GroupId): Promise<void>;
}

/** Per-group settings of {@link HostLoop.addGroup}. */
export interface HostGroupOptions {
  /** Snapshot after this many applied entries (0: never; default the host's `config.snapshotEvery`, else 0). */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot for slow followers (default the host's `config.keepAfterSnapshot`). */
  readonly keepAfterSnapshot?: number;
}

/** Settings of a host. */
export interface HostOptions {
  /** This process's node id, the same in every group. */
  readonly id: NodeId;
  /** Every peer process's transport address (this one may be included). */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** The groups' core tunables (each group's `id` and `group` are set by the host). */
  readonly config?: Partial<Omit<RaftConfig, "id" | "group">>;
  /** How long a request may wait for its outcome (default 10,000 ms). */
  readonly requestTimeoutMs?: number;
  /** Checkpoint groups pinning records older than this many host records (default 4,096). */
  readonly checkpointBehind?: number;
  /**
   * Send the groups' heartbeats and their answers to each peer process as one
   * message per iteration (default true; see `coalesce.ts`). Turn off while a
   * peer process runs a version that does not know these messages.
   */
  readonly coalesceHeartbeats?: boolean;
  /** The groups' snapshot stores; without them no group snapshots (and none can install one). */
  readonly snapshots?: GroupSnapshotsPort;
  /** Largest InstallSnapshot chunk, in bytes (default: the groups' `maxMessageBytes`). */
  readonly snapshotChunkBytes?: number;
  /** Inputs (messages, calls, ticks) handled per iteration at most (default 4,096). */
  readonly maxBatch?: number;
}

/** A hosted group's status: a node's, and whether the group is quiescent on this host. */
export interface HostGroupStatus extends NodeStatus {
  /** The group is idle here: no heartbeats (leader) or election timer (follower) until something wakes it. */
  readonly quiescent: boolean;
  /** Index the group's latest stored snapshot covers here (0: none). */
  readonly snapshotIndex: Index;
  /** The group's log here starts after this index (compacted behind a snapshot; 0: never compacted). */
  readonly compactedIndex: Index;
}

/** A group's snapshot store, opened at `addGroup`, with the latest snapshot its state machine was restored from. */
interface OpenedSnapshots {
  readonly store: SnapshotStore;
  readonly latest: SnapshotInfo | undefined;
  /** The stored snapshot the group starts from (held by its streams). */
  readonly stored?: StoredSnapshot;
}

/** A group's snapshot I/O on this host: its store, the snapshot being received, the streams to followers. */
interface GroupIo {
  readonly store: SnapshotStore;
  readonly sm: HostStateMachine;
  readonly intake: SnapshotIntake;
  readonly intakeReports: IntakeReports;
  readonly streams: ChunkStreams;
}

/** A group's Promise API on a host. */
export interface HostGroup {
  /** The group id. */
  readonly group: GroupId;
  /** Replicates `data`; resolves with the state machine's result once applied on this host. */
  propose(data: Uint8Array): Promise<unknown>;
  /** A linearizable read index, applied on this host (§6.4). */
  readIndex(): Promise<Index>;
  /** A membership change of this group. */
  changeMembership(change: ConfChange): Promise<Index>;
  /** Hands this group's leadership to `to`. */
  transferLeadership(to: NodeId): Promise<void>;
  /**
   * Captures and stores this group's snapshot at its applied index now, then
   * compacts its log behind it (§7). Refused when the host has no snapshot
   * stores or the group's state machine has no `snapshot()`.
   */
  snapshot(): Promise<SnapshotMeta>;
  /** The group's current state (a removed group's last, marked stopped). */
  status(): HostGroupStatus;
}

type Item =
  | { readonly kind: "receive"; readonly message: Message }
  | { readonly kind: "unreachable"; readonly peer: NodeId }
  | { readonly kind: "tick"; readonly gen: number }
  | { readonly kind: "call"; readonly run: (now: number) => void }
  /** The writer made writes durable ({@link HostLoop.#durable}); wakes the loop to report them. */
  | { readonly kind: "durable" }
  /** Snapshot I/O off the loop hit a storage failure: the host stops with it (fail-stop). */
  | { readonly kind: "fatal"; readonly error: StorageFailure }
  | { readonly kind: "stop" };

/** An iteration longer than this (ms) waits for its write instead of overlapping the next iteration with it. */
const LONG_ITERATION_MS = 20;

/** One iteration's write for the writer fiber. */
interface PendingWrite {
  /** The record's operations (none: nothing to write, but reported in order). */
  readonly ops: readonly HostLogOp[];
  /** The host unit reported durable once the record is (none: the iteration had no group unit). */
  readonly id: number | undefined;
  /** Groups removed by this record, whose snapshots go once it is durable. */
  readonly drops: readonly GroupId[];
}

/** The shell around one host driver. */
export class HostLoop {
  readonly #queue: Queue.Queue<Item>;
  /** When each peer's latest frame reached the transport callback (heard before the next tick). */
  readonly #arrivals = new Map<NodeId, number>();
  readonly #log: MultiGroupLogPort;
  readonly #transport: TransportPort;
  readonly #options: HostOptions;
  readonly #machines = new Map<GroupId, HostStateMachine>();
  readonly #io = new Map<GroupId, GroupIo>();
  /** Groups whose snapshot streams read or hold a snapshot ({@link ChunkStreams.sweep}). */
  readonly #streaming = new Set<GroupIo>();
  /** Removed groups whose snapshots go once their removal record is durable. */
  readonly #dropSnapshots: GroupId[] = [];
  /** Groups to checkpoint in the next write (their core's log is not what the multi-group log replays). */
  readonly #checkpointSoon = new Set<GroupId>();
  /** Groups being added (their snapshot store is open: a removal's clean-up must not delete it). */
  readonly #adding = new Set<GroupId>();
  readonly #recovered: Map<GroupId, RecoveredLog>;
  /** The hosted groups (each with its status when added, for a handle of a group removed before it was read). */
  readonly #status = new Map<GroupId, HostGroupStatus>();
  #host!: HostDriver;
  #now = 0;
  #tickGen = 0;
  #tickAt = Infinity;
  #sleeper: Fiber.Fiber<void> | undefined;
  /** Writes queued for the writer fiber, oldest first. */
  #writes: PendingWrite[] = [];
  #writing = false;
  #writerFiber: Fiber.Fiber<void> | undefined;
  /** The snapshot capture each group incarnation (its I/O) is storing, if one is. */
  readonly #captures = new Map<GroupIo, Fiber.Fiber<void>>();
  /** Host units made durable by the writer, not yet reported (oldest first). */
  readonly #durable: number[] = [];
  /** A write or sync failed: the host is stopping, nothing more is written. */
  #writeFailed = false;
  #writeError: StorageFailure | undefined;
  /**
   * Removed groups whose removal record is not durable yet, each settled
   * when it is: hosting such a group again must not wipe its snapshots
   * before then — a crash would replay the old incarnation without them.
   */
  readonly #removing = new Map<GroupId, { promise: Promise<void>; settle: (ok: boolean) => void; pending: number }>();
  #stopped = false;
  #resolveDone!: () => void;
  #rejectDone!: (e: unknown) => void;
  /** Settles when the loop ends (rejects with a fatal storage failure). */
  readonly done: Promise<void>;

  private constructor(
    queue: Queue.Queue<Item>,
    log: MultiGroupLogPort,
    transport: TransportPort,
    options: HostOptions,
  ) {
    this.#queue = queue;
    this.#log = log;
    this.#transport = transport;
    this.#options = options;
    this.#recovered = log.load();
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    this.done.catch(() => {});
  }

  /** Starts a host over `log` and `transport`; the loop runs until {@link stop}. */
  static start(log: MultiGroupLogPort, transport: TransportPort, options: HostOptions): Promise<HostLoop> {
    return Effect.runPromise(Effect.gen(function* () {
      const queue = yield* Queue.unbounded<Item>();
      const loop = new HostLoop(queue, log, transport, options);
      const clock = yield* Clock.Clock;
      const arrivals = loop.#arrivals;
      const now = clock.currentTimeMillisUnsafe();
      const election = options.config?.electionTimeoutMs ?? 1000;
      loop.#host = new HostDriver({
        self: options.id,
        heartbeatMs: options.config?.heartbeatMs ?? election / 10,
        failureTimeoutMs: election,
        coalesceHeartbeats: options.coalesceHeartbeats,
      }, now);
      const others = new Map(options.peers);
      others.delete(options.id);
      transport.setPeers(others);
      transport.onMessage((message) => {
        // Heard as of now, though the loop may reach the message later: a backlog here is not the peer's silence.
        arrivals.set(message.from, clock.currentTimeMillisUnsafe());
        Queue.offerUnsafe(queue, { kind: "receive", message });
      });
      transport.onUnreachable((peer) => void Queue.offerUnsafe(queue, { kind: "unreachable", peer }));
      Effect.runFork(loop.#run());
      return loop;
    }));
  }

  /** Groups found in the log at start (add them again, with their state machines, to run them). */
  recoveredGroups(): GroupId[] {
    return [...this.#recovered.keys()];
  }

  /**
   * Hosts `group` with `membership` (used if its log holds none: a new
   * group's voters, or empty to wait to be added) and its state machine;
   * resumes from the log if the group is in it: the state machine is first
   * restored from the group's latest snapshot (if any), then the log suffix
   * is applied. A group absent from the log starts without snapshots (any
   * left belong to an earlier incarnation and are deleted).
   */
  async addGroup(
    group: GroupId,
    membership: Membership,
    stateMachine: HostStateMachine,
    options: HostGroupOptions = {},
  ): Promise<HostGroup> {
    if (this.#stopped) throw new NodeStopped();
    // Before its snapshots are touched: a second add of a hosted group must not wipe them.
    if (this.#adding.has(group) || this.#status.has(group)) throw new RangeError(`group ${group} is already hosted`);
    this.#adding.add(group);
    let opened: OpenedSnapshots | undefined;
    try {
      opened = await this.#openSnapshots(group, stateMachine);
    } catch (e) {
      this.#adding.delete(group);
      throw e;
    }
    return this.#callRaw((now) => {
      this.#adding.delete(group);
      // Asked while the host was stopping: run from the queue the stopped host clears, it must not add a group.
      if (this.#stopped) throw new NodeStopped();
      if (this.#status.has(group)) throw new RangeError(`group ${group} is already hosted`);
      const recovered = this.#recovered.get(group);
      this.#recovered.delete(group);
      const base = this.#options.config ?? {};
      const snapshotEvery = opened && stateMachine.snapshot ? options.snapshotEvery ?? base.snapshotEvery ?? 0 : 0;
      const keep = options.keepAfterSnapshot ?? base.keepAfterSnapshot;
      const config = makeConfig({
        seed: 1 + Math.floor(Math.random() * 0x7ffffffe),
        ...base,
        id: this.#options.id,
        group,
        quiesce: base.quiesce ?? true,
        snapshotEvery,
        ...(keep === undefined ? {} : { keepAfterSnapshot: keep }),
      });
      const driver = this.#host.addGroup(
        group,
        {
          config,
          membership,
          requestTimeoutMs: this.#options.requestTimeoutMs,
          snapshotChunkBytes: this.#options.snapshotChunkBytes,
        },
        { hardState: recovered?.hardState, entries: recovered?.entries, snapshot: opened?.latest },
        now,
      );
      // Restored from a snapshot the log may not reach (a crash after a received snapshot was stored,
      // before its compaction record): the core then drops the log (§7), and the group's part of the
      // multi-group log must follow before anything is appended behind the snapshot: a checkpoint.
      if (opened?.latest && recovered) this.#checkpointSoon.add(group);
      this.#machines.set(group, stateMachine);
      if (opened) {
        const io = this.#groupIo(group, opened.store, stateMachine, config.maxMessageBytes);
        io.streams.offer(opened.stored);
        this.#io.set(group, io);
      }
      this.#status.set(group, statusOf(driver));
      return this.#handle(group);
    });
  }

  /**
   * Opens `group`'s snapshot store and restores `sm` from its latest
   * snapshot, before the group runs (replay then starts after it, docs/DESIGN.md rule 2).
   */
  async #openSnapshots(
    group: GroupId,
    sm: HostStateMachine,
  ): Promise<OpenedSnapshots | undefined> {
    const port = this.#options.snapshots;
    if (port === undefined) return undefined;
    // A snapshot is only meaningful with the log it compacted: without one, it is an earlier incarnation's —
    // once that incarnation's removal is durable (until then a crash would bring it back, needing them).
    await this.#removing.get(group)?.promise;
    if (!this.#recovered.has(group)) await port.remove(group);
    const store = snapshotStoreFromPort(await port.open(group));
    const latest = await Effect.runPromise(store.latest);
    if (latest === undefined) return { store, latest: undefined };
    await Effect.runPromise(restoreFrom(restorer(group, sm), latest));
    return { store, latest: { meta: latest.meta, size: latest.size, checksum: latest.checksum }, stored: latest };
  }

  #groupIo(group: GroupId, store: SnapshotStore, sm: HostStateMachine, maxMessageBytes: number): GroupIo {
    const queue = this.#queue;
    const call = (run: (now: number) => void) => void Queue.offerUnsafe(queue, { kind: "call", run });
    const io: GroupIo = {
      store,
      sm,
      intake: new SnapshotIntake(store, restorer(group, sm)),
      intakeReports: {
        refused: (from, meta, reason) => void this.#host.call(group, (d) => d.receiveRefused(from, meta, reason)),
        installed: (info, stored) => {
          this.#host.call(group, (d) => d.snapshotInstalled(info, this.#now));
          io.streams.offer(stored);
        },
        fellBack: (meta, reason) => void this.#host.call(group, (d) => d.restoreFellBack(meta, reason)),
      },
      streams: new ChunkStreams(
        store,
        transportFromPort(this.#transport),
        this.#options.snapshotChunkBytes ?? maxMessageBytes,
        {
          unreachable: (peer) => call((now) => this.#host.unreachable(peer, now, group)),
          // A group removed meanwhile: its store going away is no failure of the host.
          fatal: (error) => {
            if (this.#io.get(group) === io) Queue.offerUnsafe(queue, { kind: "fatal", error });
          },
          streaming: (peer) => this.#host.driver(group)?.streaming(peer),
        },
      ),
    };
    return io;
  }

  /** Stops hosting `group` and forgets its log (its pending requests fail with `NodeStopped`). */
  removeGroup(group: GroupId): Promise<void> {
    return this.#callRaw(() => {
      this.#host.removeGroup(group);
      this.#machines.delete(group);
      this.#status.delete(group);
      this.#removals.push(group);
      const io = this.#io.get(group);
      this.#io.delete(group);
      io?.streams.stop();
      // A snapshot it was receiving is abandoned, its file closed and removed (best effort; the store goes later).
      if (io) void Effect.runPromise(io.intake.close());
      if (io) {
        this.#dropSnapshots.push(group);
        const removing = this.#removing.get(group);
        if (removing) removing.pending++; // Removed again before the last removal was durable: wait for both.
        else {
          let settle!: (ok: boolean) => void;
          const promise = new Promise<void>((resolve, reject) => {
            settle = (ok) => (ok ? resolve() : reject(new NodeStopped()));
          });
          promise.catch(() => {});
          this.#removing.set(group, { promise, settle, pending: 1 });
        }
      }
    });
  }

  /** The hosted groups. */
  groups(): GroupId[] {
    return [...this.#status.keys()];
  }

  /** A group's status, read from its driver (not refreshed every iteration: idle groups cost nothing). */
  status(group: GroupId): HostGroupStatus | undefined {
    const driver = this.#status.has(group) ? this.#host.driver(group) : undefined;
    return driver && statusOf(driver);
  }

  /** Coalesced heartbeats so far: group messages sent and received inside coalesced messages, and those received. */
  coalescing(): { readonly out: number; readonly in: number; readonly messagesIn: number } {
    const h = this.#host;
    return { out: h.coalescedOut, in: h.coalescedIn, messagesIn: h.coalescedMessagesIn };
  }

  /** A hosted group's API. */
  group(group: GroupId): HostGroup | undefined {
    return this.#status.has(group) ? this.#handle(group) : undefined;
  }

  /** Stops the loop after every write taken is durable; closes the log and the transport. */
  async stop(): Promise<void> {
    if (!this.#stopped) Queue.offerUnsafe(this.#queue, { kind: "stop" });
    await this.done.catch(() => {});
  }

  readonly #removals: GroupId[] = [];

  #handle(group: GroupId): HostGroup {
    const call = <A>(f: (d: NodeDriver, now: number, settle: Settle) => void): Promise<A> =>
      new Promise<A>((resolve, reject) => {
        const settle: Settle = (o) => (o.ok ? resolve(o.value as A) : reject(o.error));
        if (this.#stopped) return reject(new NodeStopped());
        Queue.offerUnsafe(this.#queue, {
          kind: "call",
          run: (now) => {
            const done = this.#host.call(group, (d) => f(d, now, settle));
            if (done === undefined && !this.#host.driver(group)) {
              settle({ ok: false, error: new RaftRejected("not-leader", undefined) });
            }
          },
        });
      });
    let last = this.#status.get(group);
    return {
      group,
      propose: (data) => call((d, now, settle) => d.propose(data, now, settle)),
      readIndex: () => call((d, now, settle) => d.read(now, settle)),
      changeMembership: (change) => call((d, now, settle) => d.changeMembership(change, now, settle)),
      transferLeadership: (to) => call((d, now, settle) => d.transferLeadership(to, now, settle)),
      snapshot: () =>
        call((d, now, settle) => {
          // Without a store (or a state machine that can capture) nothing would ever settle the waiter.
          if (!this.#io.has(group) || !this.#machines.get(group)?.snapshot) {
            const why = this.#io.has(group) ? "its state machine has no snapshot()" : "the host has no snapshot stores";
            return settle({
              ok: false,
              error: new StateMachineFailure("snapshot", new Error(`group ${group}: ${why}`)),
            });
          }
          d.snapshot(now, settle);
        }),
      status: () => {
        // A removed group keeps answering with its last status, marked stopped.
        const now = this.status(group);
        if (now !== undefined) return (last = now);
        return { ...(last ?? statusOf(this.#host.driver(group))), stopped: true };
      },
    };
  }

  #callRaw<A>(f: (now: number) => A): Promise<A> {
    if (this.#stopped) return Promise.reject(new NodeStopped());
    return new Promise<A>((resolve, reject) => {
      Queue.offerUnsafe(this.#queue, {
        kind: "call",
        run: (now) => {
          try {
            resolve(f(now));
          } catch (e) {
            reject(e);
          }
        },
      });
    });
  }

  #run(): Effect.Effect<void> {
    const loop = Effect.gen({ self: this }, function* () {
      let tick = false;
      let carried = 0;
      for (;;) {
        // A bounded batch: a backlog of 10^4 messages is handled over several iterations, each short
        // enough that beacons and heartbeats keep going out (peers do not time this process out).
        const max = this.#options.maxBatch ?? 4096;
        const items = yield* Queue.takeBetween(this.#queue, 1, max);
        this.#now = yield* Clock.currentTimeMillis;
        this.#reportDurable();
        let stop = false;
        // A fatal failure ends the loop after the batch: items taken behind it (calls whose callers wait) are
        // handled, then refused by the stopped host, not dropped unsettled.
        let fatal: StorageFailure | undefined;
        for (const item of items) {
          switch (item.kind) {
            case "receive":
              this.#host.receive(item.message, this.#now);
              break;
            case "unreachable":
              this.#host.unreachable(item.peer, this.#now);
              break;
            case "tick":
              // After the messages queued before it: what arrived before a deadline is heard before it fires.
              tick ||= item.gen === this.#tickGen;
              break;
            case "call":
              item.run(this.#now);
              break;
            case "durable":
              break;
            case "fatal":
              fatal ??= item.error;
              break;
            case "stop":
              stop = true;
          }
        }
        if (fatal) return yield* Effect.fail(fatal);
        // Due, and nothing left queued behind this batch; behind a full batch the backlog goes first
        // (a timer only lengthens), for 8 batches at most (a backlog that lasts must not stop the timers).
        if (tick && (items.length < max || ++carried > 8)) {
          tick = false;
          carried = 0;
          this.#tickAt = Infinity;
          for (const [peer, at] of this.#arrivals) this.#host.heard(peer, at);
          this.#arrivals.clear();
          this.#host.tick(this.#now);
        }
        yield* this.#drain();
        if (stop) return;
      }
    });
    return Effect.exit(loop).pipe(Effect.flatMap((exit) =>
      Effect.gen({ self: this }, function* () {
        // A stop ends after every write taken is durable; a failure elsewhere must not close the log under one.
        yield* this.#writesSettled();
        // Captures being stored finish before their stores are closed (a write does not stop with its fiber).
        for (const fiber of this.#captures.values()) yield* Fiber.await(fiber);
        this.#captures.clear();
        this.#stopped = true;
        this.#sleeper?.interruptUnsafe();
        for (const io of this.#io.values()) {
          io.streams.stop();
          yield* io.intake.close(); // A snapshot half received is abandoned, its file not left open.
        }
        const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause);
        // A write that failed after the loop ended (a stop during its fsync) is the host's failure too.
        const error = failed ? Cause.squash(exit.cause) : this.#writeError;
        this.#host.stop(error);
        for (const r of this.#removing.values()) r.settle(false);
        this.#removing.clear();
        // Calls queued behind the end are refused by the stopped host, not left waiting.
        for (const item of yield* Queue.clear(this.#queue)) if (item.kind === "call") item.run(this.#now);
        yield* Effect.promise(() => this.#transport.close().catch(() => {}));
        yield* Effect.promise(() => this.#log.close().catch(() => {}));
        if (error === undefined) this.#resolveDone();
        else this.#rejectDone(error);
      })
    ));
  }

  #drain(): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      const host = this.#host;
      for (;;) {
        this.#reportDurable();
        if (!host.hasWork && this.#removals.length === 0 && this.#checkpointSoon.size === 0) break;
        const work = host.take();
        // A coalesced message that is refused reaches every group it carried.
        for (const m of work.sends) {
          if (!this.#transport.send(m)) host.sendFailed(m, this.#now);
        }
        // A snapshot being received: its store operations in order, the last restoring the state machine.
        for (const { group, op } of work.receive) {
          const io = this.#io.get(group);
          if (io) yield* io.intake.run(op, io.intakeReports);
        }
        // Computed now, in the order the host took the units: a checkpoint reads its group's core as of this unit.
        yield* this.#queueWrite({
          ops: this.#ops(work.write),
          id: work.write?.id,
          drops: this.#dropSnapshots.splice(0),
        });
        // An iteration this long (a backlog: thousands of groups electing) would hold the write's report
        // back by a whole next iteration — every vote and ack waiting on it, past election timeouts. The
        // overlap gains nothing then: wait for the disk now, and answer in this iteration.
        if ((yield* Clock.currentTimeMillis) - this.#now > LONG_ITERATION_MS) yield* this.#writesSettled();
        for (const { group, entries } of work.applies) {
          const sm = this.#machines.get(group);
          if (!sm) continue;
          const wait = host.applyAll(group, entries, (e) => sm.apply(e));
          if (wait) yield* Effect.promise(() => wait);
        }
        for (const g of work.captures) yield* this.#capture(g);
        const chunks = new Map<GroupId, ChunkSend[]>();
        for (const { group, chunk } of work.chunks) {
          const list = chunks.get(group);
          if (list) list.push(chunk);
          else chunks.set(group, [chunk]);
        }
        for (const [g, list] of chunks) {
          const io = this.#io.get(g);
          if (io) yield* io.streams.send(list);
          if (io) this.#streaming.add(io);
        }
        // Streams the groups' drivers ended let go of the snapshots they held.
        for (const io of this.#streaming) {
          io.streams.sweep();
          if (!io.streams.active) this.#streaming.delete(io);
        }
      }
      const at = host.nextDeadline();
      if (at < this.#tickAt) {
        this.#tickAt = at;
        const gen = ++this.#tickGen;
        this.#sleeper?.interruptUnsafe();
        const queue = this.#queue;
        // From the clock now, not the iteration's start: the writes and applies took time.
        const now = yield* Clock.currentTimeMillis;
        this.#sleeper = yield* Effect.forkDetach(
          Effect.sleep(Math.max(0, at - now)).pipe(
            Effect.andThen(Effect.sync(() => void Queue.offerUnsafe(queue, { kind: "tick", gen }))),
          ),
        );
      }
    });
  }

  /**
   * Hands one iteration's write to the writer fiber, which runs beside the
   * loop: while one fsync is in flight the loop goes on taking messages and
   * proposals (thesis §10.2.1: only what waits for the disk waits — each
   * group's driver holds back its unit's `after` effects until the host
   * reports it durable, in the order the units were taken). A write with
   * nothing to write and nothing before it is durable already.
   */
  #queueWrite(w: PendingWrite): Effect.Effect<void> {
    if (this.#writeFailed) return Effect.void; // Fail-stop: nothing after a failed write is written or reported.
    if (w.ops.length === 0 && w.drops.length === 0 && !this.#writing) {
      this.#reportDurable(); // The writer's last writes, done but not yet reported, come first.
      if (w.id !== undefined) this.#host.written(w.id, this.#now);
      return Effect.void;
    }
    this.#writes.push(w);
    if (this.#writing) return Effect.void;
    this.#writing = true;
    return Effect.map(
      Effect.forkChild(this.#writer(), { startImmediately: true }),
      (fiber) => void (this.#writerFiber = fiber),
    );
  }

  /**
   * The writer: takes every write queued so far, appends them as one record
   * and makes them durable with one sync (group commit across the
   * iterations that queued behind the last fsync), reports them to the loop
   * in order, and repeats until none is left. A failed write or sync is
   * fatal to the host (fail-stop).
   */
  #writer(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      while (this.#writes.length > 0) {
        const writes = this.#writes.splice(0);
        const failed = yield* this.#write(writes).pipe(
          Effect.as(false),
          Effect.catch((error) =>
            Effect.sync(() => {
              this.#writeFailed = true;
              this.#writeError = error;
              this.#writes = [];
              Queue.offerUnsafe(this.#queue, { kind: "fatal", error });
              return true;
            })
          ),
        );
        if (failed) break;
        // Heard at the loop's next iteration, before what queued meanwhile: a backlog (10^4 groups electing)
        // must not hold back the votes and acks waiting on this write, or elections outlast their timeouts.
        for (const w of writes) if (w.id !== undefined) this.#durable.push(w.id);
        Queue.offerUnsafe(this.#queue, { kind: "durable" });
      }
      this.#writing = false;
    });
  }

  /** `writes`' operations as one record, one sync, then the snapshots of groups whose removal is now durable. */
  #write(writes: readonly PendingWrite[]): Effect.Effect<void, StorageFailure> {
    return Effect.gen({ self: this }, function* () {
      // One record for all of them: replay folds a record's operations in order, as it folds records, so
      // this is the iterations' records back to back — but one write, not one await per iteration (each
      // await here waits behind a loop iteration, which with 10^4 groups can be long).
      const ops = writes.length === 1 ? writes[0]!.ops : writes.flatMap((w) => w.ops);
      if (ops.length > 0) {
        yield* attempt("write", () => this.#log.write(ops));
        yield* attempt("sync", () => this.#log.sync());
      }
      const port = this.#options.snapshots;
      for (const g of writes.flatMap((w) => w.drops)) {
        // The removal record is durable: the snapshots may go (best effort; addGroup wipes leftovers),
        // unless the group is being hosted again meanwhile.
        if (port && !this.#adding.has(g) && !this.#io.has(g)) {
          yield* Effect.promise(() => port.remove(g).catch(() => {}));
        }
        const removing = this.#removing.get(g);
        if (removing && --removing.pending === 0) {
          removing.settle(true);
          this.#removing.delete(g);
        }
      }
    });
  }

  /** Tells the host which writes the writer has made durable since the last call, oldest first. */
  #reportDurable(): void {
    if (this.#durable.length === 0 || this.#stopped) return;
    for (const id of this.#durable.splice(0)) this.#host.written(id, this.#now);
  }

  /** Waits until the writer has made every queued write durable (or failed). */
  #writesSettled(): Effect.Effect<void> {
    const fiber = this.#writerFiber;
    return this.#writing && fiber !== undefined ? Effect.asVoid(Fiber.await(fiber)) : Effect.void;
  }

  /** Sends `m`; a failure is reported to its group (or, for a host message, to none). */
  #transmit(m: Message, group: GroupId | undefined): void {
    if (!this.#transport.send(m)) this.#host.unreachable(m.to, this.#now, group);
  }

  /**
   * Group `g` captures its state machine now (exactly the applied index,
   * `NodeDriver.captureMeta`) and stores it off the loop; its driver hears
   * it is durable on the loop, and only then does its core compact (§7).
   */
  #capture(g: GroupId): Effect.Effect<void> {
    const io = this.#io.get(g);
    if (!io) return Effect.void;
    const meta = this.#host.call(g, (d) => d.captureMeta());
    if (meta === undefined) return Effect.void;
    const queue = this.#queue;
    const call = (run: (now: number) => void) => void Queue.offerUnsafe(queue, { kind: "call", run });
    const sm = io.sm;
    const capture = captureSnapshot(
      meta,
      {
        snapshot: () => {
          if (!sm.snapshot) throw new Error(`group ${g}'s state machine has no snapshot()`);
          return sm.snapshot();
        },
      },
      io.store,
      {
        stored: (info, stored) => {
          // Held from now: until the group's driver hears of it, it may still ask to stream the one before.
          const held = holdFor(stored);
          call((now) => {
            this.#captures.delete(io);
            // The group removed (and maybe hosted again) meanwhile: this capture is not the new incarnation's.
            if (this.#io.get(g) !== io) return letGoOf(held);
            this.#host.call(g, (d) => d.snapshotStored(info, now));
            io.streams.offer(stored, held);
          });
        },
        failed: (reason) =>
          call(() => {
            this.#captures.delete(io);
            if (this.#io.get(g) !== io) return;
            this.#host.call(g, (d) => d.captureFailed(reason));
          }),
        // A group removed meanwhile: its store going away is no failure of the host.
        fatal: (error) => {
          call(() => void this.#captures.delete(io));
          if (this.#io.get(g) === io) Queue.offerUnsafe(queue, { kind: "fatal", error });
        },
      },
    );
    // One capture per incarnation of a group at a time (its driver's); stop waits for every one still storing,
    // a removed incarnation's included (it writes into the store stop closes).
    return Effect.map(capture, (fiber) => void (fiber ? this.#captures.set(io, fiber) : this.#captures.delete(io)));
  }

  /**
   * The iteration's log operations: every group's stages in order, removals,
   * then checkpoints: of each group that compacted (so the shared log can
   * drop its prefix, the compaction having followed a durable snapshot) and
   * of a few groups pinning old records.
   */
  #ops(unit: HostWriteUnit | undefined): HostLogOp[] {
    const ops: HostLogOp[] = [];
    const checkpoint = new Set<GroupId>(this.#checkpointSoon);
    this.#checkpointSoon.clear();
    for (const g of this.#removals.splice(0)) ops.push({ group: g, remove: true });
    for (const { group, unit: u } of unit?.parts ?? []) {
      for (const st of u.stages) {
        if (st.batch) ops.push({ group, batch: st.batch });
        if (st.compactTo > 0) {
          ops.push({ group, compactTo: st.compactTo });
          checkpoint.add(group);
        }
      }
    }
    if (ops.length === 0 && checkpoint.size === 0) return ops;
    for (const group of this.#log.pinning(this.#options.checkpointBehind ?? 4096, 4)) checkpoint.add(group);
    for (const group of checkpoint) {
      const d = this.#host.driver(group);
      if (!d) continue;
      const s = d.state;
      ops.push({
        group,
        checkpoint: {
          hardState: { term: s.term, vote: s.vote, commit: s.commit },
          offset: s.log.offset,
          entries: sliceLog(s.log, s.log.offset + 1, lastIndex(s.log)),
        },
      });
    }
    return ops;
  }
}

/** A group driver's status with its quiescence (a removed group's reads as stopped). */
function statusOf(driver: NodeDriver | undefined): HostGroupStatus {
  if (driver === undefined) throw new NodeStopped();
  return {
    ...driver.status(),
    quiescent: isQuiescent(driver.state),
    snapshotIndex: driver.latestSnapshot?.meta.index ?? 0,
    compactedIndex: driver.state.log.offset,
  };
}

/** `sm`'s restores, failing (as a state machine's failure) if it has no `restore`. */
function restorer(group: GroupId, sm: HostStateMachine): Pick<StateMachine, "restore" | "beginRestore"> {
  return {
    restore: (r) => {
      if (!sm.restore) throw new Error(`group ${group}'s state machine has no restore(): it cannot install a snapshot`);
      return sm.restore(r);
    },
    ...(sm.beginRestore ? { beginRestore: (meta: SnapshotMeta) => sm.beginRestore!(meta) } : {}),
  };
}
