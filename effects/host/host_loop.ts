/**
 * The production host: many groups in one process, a thin I/O shell around
 * the {@link HostDriver} on Effect (one fiber, one queue, Effect's `Clock`).
 * Each iteration takes the ready items (up to `maxBatch`), hands them to the host, then carries
 * out the host's work until it asks for nothing more: every group's sends
 * (one transport, so one connection and one write per peer process), one
 * record of every group's writes and one fsync ({@link MultiGroupLogPort}),
 * each group's applies; then it sleeps until the host's next deadline.
 *
 * Groups here keep their logs (no snapshot capture or install yet: a group's
 * state machine is not snapshotted, and a follower too far behind catches up
 * from the log only).
 *
 * @module
 */

import { Cause, Clock, Effect, Exit, type Fiber, Queue } from "effect";
import { makeConfig, type RaftConfig } from "../../core/config.ts";
import { sliceLog } from "../../core/log.ts";
import { lastIndex } from "../../core/log.ts";
import type { ConfChange, Entry, GroupId, Index, Membership, Message, NodeId } from "../../core/types.ts";
import type { NodeDriver } from "../driver/driver.ts";
import type { Settle } from "../driver/requests.ts";
import { NodeStopped, RaftRejected, type StorageFailure } from "../errors.ts";
import type { NodeStatus } from "../events.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import { attempt } from "../ports/attempt.ts";
import type { PersistBatch, RecoveredLog, TransportPort } from "../ports/mod.ts";
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
  /** Inputs (messages, calls, ticks) handled per iteration at most (default 4,096). */
  readonly maxBatch?: number;
}

/** A hosted group's status: a node's, and whether the group is quiescent on this host. */
export interface HostGroupStatus extends NodeStatus {
  /** The group is idle here: no heartbeats (leader) or election timer (follower) until something wakes it. */
  readonly quiescent: boolean;
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
  /** The group's current state (a removed group's last, marked stopped). */
  status(): HostGroupStatus;
}

type Item =
  | { readonly kind: "receive"; readonly message: Message }
  | { readonly kind: "unreachable"; readonly peer: NodeId }
  | { readonly kind: "tick"; readonly gen: number }
  | { readonly kind: "call"; readonly run: (now: number) => void }
  | { readonly kind: "stop" };

/** The shell around one host driver. */
export class HostLoop {
  readonly #queue: Queue.Queue<Item>;
  readonly #log: MultiGroupLogPort;
  readonly #transport: TransportPort;
  readonly #options: HostOptions;
  readonly #machines = new Map<GroupId, HostStateMachine>();
  readonly #recovered: Map<GroupId, RecoveredLog>;
  /** The hosted groups (each with its status when added, for a handle of a group removed before it was read). */
  readonly #status = new Map<GroupId, HostGroupStatus>();
  #host!: HostDriver;
  #now = 0;
  #tickGen = 0;
  #tickAt = Infinity;
  #sleeper: Fiber.Fiber<void> | undefined;
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
      const now = yield* Clock.currentTimeMillis;
      const election = options.config?.electionTimeoutMs ?? 1000;
      loop.#host = new HostDriver({
        self: options.id,
        heartbeatMs: options.config?.heartbeatMs ?? election / 10,
        failureTimeoutMs: election,
      }, now);
      const others = new Map(options.peers);
      others.delete(options.id);
      transport.setPeers(others);
      transport.onMessage((message) => void Queue.offerUnsafe(queue, { kind: "receive", message }));
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
   * resumes from the log if the group is in it.
   */
  addGroup(group: GroupId, membership: Membership, stateMachine: HostStateMachine): Promise<HostGroup> {
    return this.#callRaw((now) => {
      const recovered = this.#recovered.get(group);
      this.#recovered.delete(group);
      const driver = this.#host.addGroup(
        group,
        {
          config: makeConfig({
            seed: 1 + Math.floor(Math.random() * 0x7ffffffe),
            ...this.#options.config,
            id: this.#options.id,
            group,
            quiesce: this.#options.config?.quiesce ?? true,
          }),
          membership,
          requestTimeoutMs: this.#options.requestTimeoutMs,
        },
        { hardState: recovered?.hardState, entries: recovered?.entries },
        now,
      );
      this.#machines.set(group, stateMachine);
      this.#status.set(group, statusOf(driver));
      return this.#handle(group);
    });
  }

  /** Stops hosting `group` and forgets its log (its pending requests fail with `NodeStopped`). */
  removeGroup(group: GroupId): Promise<void> {
    return this.#callRaw(() => {
      this.#host.removeGroup(group);
      this.#machines.delete(group);
      this.#status.delete(group);
      this.#removals.push(group);
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

  /** A hosted group's API. */
  group(group: GroupId): HostGroup | undefined {
    return this.#status.has(group) ? this.#handle(group) : undefined;
  }

  /** Stops the loop after the in-flight write; closes the log and the transport. */
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
        let stop = false;
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
            case "stop":
              stop = true;
          }
        }
        // Due, and nothing left queued behind this batch; behind a full batch the backlog goes first
        // (a timer only lengthens), for 8 batches at most (a backlog that lasts must not stop the timers).
        if (tick && (items.length < max || ++carried > 8)) {
          tick = false;
          carried = 0;
          this.#tickAt = Infinity;
          this.#host.tick(this.#now);
        }
        yield* this.#drain();
        if (stop) return;
      }
    });
    return Effect.exit(loop).pipe(Effect.flatMap((exit) =>
      Effect.gen({ self: this }, function* () {
        this.#stopped = true;
        this.#sleeper?.interruptUnsafe();
        const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause);
        const error = failed ? Cause.squash(exit.cause) : undefined;
        this.#host.stop(error);
        // Calls queued behind the end are refused by the stopped host, not left waiting.
        for (const item of yield* Queue.clear(this.#queue)) if (item.kind === "call") item.run(this.#now);
        yield* Effect.promise(() => this.#transport.close().catch(() => {}));
        yield* Effect.promise(() => this.#log.close().catch(() => {}));
        if (error === undefined) this.#resolveDone();
        else this.#rejectDone(error);
      })
    ));
  }

  #drain(): Effect.Effect<void, StorageFailure> {
    return Effect.gen({ self: this }, function* () {
      const host = this.#host;
      while (host.hasWork || this.#removals.length > 0) {
        const work = host.take();
        for (const m of work.sends) {
          if (!this.#transport.send(m)) {
            host.unreachable(m.to, this.#now, m.type === "HostHeartbeat" ? undefined : m.group);
          }
        }
        const ops = this.#ops(work.write);
        if (ops.length > 0) {
          yield* attempt("write", () => this.#log.write(ops));
          yield* attempt("sync", () => this.#log.sync());
        }
        if (work.write) host.written(work.write.id, this.#now);
        for (const { group, entries } of work.applies) {
          const sm = this.#machines.get(group);
          if (!sm) continue;
          const wait = host.applyAll(group, entries, (e) => sm.apply(e));
          if (wait) yield* Effect.promise(() => wait);
        }
      }
      const at = host.nextDeadline();
      if (at < this.#tickAt) {
        this.#tickAt = at;
        const gen = ++this.#tickGen;
        this.#sleeper?.interruptUnsafe();
        const queue = this.#queue;
        this.#sleeper = yield* Effect.forkDetach(
          Effect.sleep(Math.max(0, at - this.#now)).pipe(
            Effect.andThen(Effect.sync(() => void Queue.offerUnsafe(queue, { kind: "tick", gen }))),
          ),
        );
      }
    });
  }

  /** The iteration's log operations: every group's stages in order, removals, then a few checkpoints. */
  #ops(unit: HostWriteUnit | undefined): HostLogOp[] {
    const ops: HostLogOp[] = [];
    for (const g of this.#removals.splice(0)) ops.push({ group: g, remove: true });
    for (const { group, unit: u } of unit?.parts ?? []) {
      for (const st of u.stages) {
        if (st.batch) ops.push({ group, batch: st.batch });
        if (st.compactTo > 0) ops.push({ group, compactTo: st.compactTo });
      }
    }
    if (ops.length === 0) return ops;
    for (const group of this.#log.pinning(this.#options.checkpointBehind ?? 4096, 4)) {
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
  return { ...driver.status(), quiescent: isQuiescent(driver.state) };
}
