/**
 * The production loop: a thin I/O shell around the {@link NodeDriver}. One
 * long-lived fiber per node; each iteration
 *
 * 1. takes every ready item (blocking only for the first): messages,
 *    unreachable peers, timer firings, API calls, completions of work done
 *    off the loop — and hands each to the driver with the clock's reading;
 * 2. carries out what the driver asks, round after round until it asks for
 *    nothing more: sends; snapshot-store operations of a snapshot being
 *    received; the round's write, handed to the writer fiber beside the
 *    loop (one append per unit, one fsync for every unit queued behind the
 *    last: group commit), reported back with `written` once durable;
 *    entries to apply; a snapshot to capture; snapshot chunks to read and
 *    send (off the loop);
 * 3. arms the core's timers and the driver's own deadline on Effect's
 *    `Clock` (so `TestClock` drives every timer, request timeouts included).
 *
 * The rules — what waits for the disk, how requests settle, how a snapshot
 * streams — are the driver's, written once and shared with the simulator.
 *
 * @module
 */

import { Cause, Clock, Effect, Exit, Fiber, Queue } from "effect";
import type { ConfChange, Index, Message, NodeId, SnapshotMeta, TimerKind } from "../../core/types.ts";

import type { NodeDriver, Work, WriteUnit } from "../driver/driver.ts";
import type { Observation } from "../driver/observations.ts";
import type { Settle } from "../driver/requests.ts";
import {
  NodeStopped,
  OutcomeUnknown,
  ProposalCancelled,
  type StateMachineFailure,
  type StorageFailure,
} from "../errors.ts";
import type { Listeners, NodeStatus, RaftEvent, RaftListener } from "../events.ts";
import type { LogStore, SnapshotStore, StateMachine, StoredSnapshot, Transport } from "../ports/mod.ts";
import type { NodeObserver } from "./observe.ts";
import { captureSnapshot, ChunkStreams, holdFor, type IntakeReports, SnapshotIntake } from "./snapshot_io.ts";
import { Timers } from "./timers.ts";
import type { TraceParent } from "./tracing.ts";

/** Options of {@link NodeHandle.setPeers}. */
export interface SetPeersOptions {
  /** Replace the whole address book instead of merging into it (to forget removed nodes). Default false. */
  readonly replace?: boolean;
}

/** Options of one {@link NodeHandle.propose}. */
export interface ProposeOptions {
  /**
   * Aborting it gives up on the proposal. Not yet handed to the leader (still
   * queued on this node, or waiting for a leader to be known), it is
   * cancelled: it fails with `ProposalCancelled` and is never applied. Once
   * handed over it may still commit: the Promise fails with
   * `OutcomeUnknown` as soon as the node's loop takes the abort (with the
   * outcome itself if that came first), and the eventual outcome is logged
   * (Warn) and counted in `plank_proposals_abandoned_total`.
   */
  readonly signal?: AbortSignal;
  /** The caller's span: the proposal's spans (WAL write, quorum round, apply) are recorded as its children. */
  readonly trace?: TraceParent;
}

/** A running node, driven by its loop fiber. Methods enqueue and return Promises; none blocks. */
export interface NodeHandle {
  /** Proposes a command; resolves with the state machine's result once applied here. */
  propose(data: Uint8Array, options?: ProposeOptions): Promise<unknown>;
  /** Resolves with a linearizable read index once this node's state machine has applied it (§6.4). */
  readIndex(): Promise<Index>;
  /**
   * Proposes a membership change; resolves with the config entry's index
   * once applied. `address`, if given, enters the address book first (so the
   * new member is reachable as soon as it is added).
   */
  changeMembership(change: ConfChange, address?: string): Promise<Index>;
  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): Promise<void>;
  /** Captures and stores a snapshot at the applied index now, then compacts the log behind it. */
  snapshot(): Promise<SnapshotMeta>;
  /** The node's state as of its last loop iteration. */
  status(): NodeStatus;
  /** Adds an event listener; returns the unsubscribe function. */
  subscribe(listener: RaftListener): () => void;
  /** Records (or changes) the address of one node and hands the full book to the transport. */
  setPeerAddress(id: NodeId, address: string): void;
  /** Merges `peers` into the address book (or replaces it), then hands the full book to the transport. */
  setPeers(peers: ReadonlyMap<NodeId, string>, options?: SetPeersOptions): void;
  /** The address book: every node id → address this node knows. */
  peerAddresses(): ReadonlyMap<NodeId, string>;
  /** Stops once every write taken is durable; resolves when the loop has ended (rejects with a fatal error). */
  stop(): Promise<void>;
  /** Settles when the loop ends: resolves after a clean stop, rejects with the fatal error otherwise. */
  readonly done: Promise<void>;
}

/** What the loop is fed. */
type Item =
  | { readonly kind: "receive"; readonly message: Message }
  | { readonly kind: "unreachable"; readonly peer: NodeId }
  | { readonly kind: "timer"; readonly timer: TimerKind | "deadline"; readonly gen: number }
  /** Something to do on the loop with the driver (an API call, a completion of work done off the loop). */
  | { readonly kind: "call"; readonly run: (now: number) => void }
  | { readonly kind: "stop" }
  /** Work off the loop hit a storage failure: the node stops with it (fail-stop). */
  | { readonly kind: "fatal"; readonly error: StorageFailure };

/** The ports the loop does I/O with. */
export interface LoopPorts {
  /** The durable log. */
  readonly log: LogStore;
  /** Snapshot storage. */
  readonly snapshots: SnapshotStore;
  /** Peer messages. */
  readonly transport: Transport;
  /** The user's state machine. */
  readonly sm: StateMachine;
}

/** The shell around one node's driver. */
export class NodeLoop {
  readonly #queue: Queue.Queue<Item>;
  readonly #ports: LoopPorts;
  readonly #listeners: Listeners;
  // Set by attach(); undefined only while the driver is being built (recovery emits no events).
  #obs!: NodeObserver;
  readonly #timers: Timers<TimerKind | "deadline">;
  readonly #streams: ChunkStreams;
  #driver!: NodeDriver;
  #statusCache!: NodeStatus;
  #book: Map<NodeId, string>;
  readonly #self: NodeId;
  #now = 0;
  #stopping = false;
  #stoppedWith: { error: unknown } | undefined = undefined;
  /** The snapshot being received (the driver's store operations, carried out in order). */
  readonly #intake: SnapshotIntake;
  readonly #intakeReports: IntakeReports = {
    refused: (from, meta, reason) => this.#driver.receiveRefused(from, meta, reason),
    installed: (info, stored) => {
      this.#driver.snapshotInstalled(info, this.#now);
      this.#streams.offer(stored);
    },
    fellBack: (meta, reason) => this.#driver.restoreFellBack(meta, reason),
  };
  #deadline: number | undefined = undefined;
  /** Write units taken from the driver and not yet handed to the log store, oldest first. */
  #writes: WriteUnit[] = [];
  /** Units the writer made durable that the driver has not yet heard of, oldest first. */
  #durable: number[] = [];
  /** Whether the writer fiber is running (it clears this itself when the queue is empty). */
  #writing = false;
  /** The snapshot capture last started (its store write may still run). */
  #captureFiber: Fiber.Fiber<void> | undefined = undefined;
  /** The writer fiber last started. */
  #writerFiber: Fiber.Fiber<void> | undefined = undefined;
  /** A write failed: the node is stopping with it, and nothing more is written. */
  #writeFailed = false;
  #resolveDone!: () => void;
  #rejectDone!: (e: unknown) => void;
  readonly #done: Promise<void>;

  /** A loop over `ports` fed by `queue`; `listeners` hear the driver's events. */
  constructor(
    queue: Queue.Queue<Item>,
    ports: LoopPorts,
    listeners: Listeners,
    self: NodeId,
    book: ReadonlyMap<NodeId, string>,
    chunkBytes: number,
  ) {
    this.#queue = queue;
    this.#ports = ports;
    this.#listeners = listeners;
    this.#self = self;
    this.#book = new Map(book);
    this.#timers = new Timers((timer, gen) => void Queue.offerUnsafe(queue, { kind: "timer", timer, gen }));
    this.#intake = new SnapshotIntake(ports.snapshots, ports.sm);
    this.#streams = new ChunkStreams(ports.snapshots, ports.transport, chunkBytes, {
      unreachable: (peer) => void Queue.offerUnsafe(queue, { kind: "unreachable", peer }),
      fatal: (error) => void Queue.offerUnsafe(queue, { kind: "fatal", error }),
      streaming: (peer) => this.#driver.streaming(peer),
    });
    this.#done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // Nobody may be listening for a fatal error; don't report it as unhandled.
    this.#done.catch(() => {});
  }

  /** The loop's queue type, for `makeNode`. */
  static queue(): Effect.Effect<Queue.Queue<Item>> {
    return Queue.unbounded<Item>();
  }

  /**
   * Hands the loop its driver (built once recovery is done), the observer of
   * its node, and the snapshot recovery started from (held for streams).
   */
  attach(driver: NodeDriver, observer: NodeObserver, snapshot?: StoredSnapshot): void {
    this.#streams.offer(snapshot);
    this.#driver = driver;
    this.#obs = observer;
    this.#statusCache = driver.status();
  }

  /** Feeds transport callbacks into the loop. */
  listen(): void {
    this.#ports.transport.listen({
      onMessage: (message) => void Queue.offerUnsafe(this.#queue, { kind: "receive", message }),
      onUnreachable: (peer) => void Queue.offerUnsafe(this.#queue, { kind: "unreachable", peer }),
    });
  }

  /** Hands the transport the full address book, this node excluded. */
  pushPeers(): void {
    const others = new Map(this.#book);
    others.delete(this.#self);
    this.#ports.transport.setPeers(others);
  }

  /** The caller's view of the node. */
  handle(): NodeHandle {
    return {
      propose: (data, options) => this.#propose(data, options),
      readIndex: () => this.#call<Index>((now, settle) => this.#driver.read(now, settle)),
      changeMembership: (change, address) => {
        if (address !== undefined && (change.type === "addVoter" || change.type === "addLearner")) {
          this.#setPeerAddress(change.node, address);
        }
        return this.#call<Index>((now, settle) => this.#driver.changeMembership(change, now, settle));
      },
      transferLeadership: (to) => this.#call<void>((now, settle) => this.#driver.transferLeadership(to, now, settle)),
      snapshot: () => this.#call<SnapshotMeta>((now, settle) => this.#driver.snapshot(now, settle)),
      status: () => this.#statusCache,
      subscribe: (listener) => this.#listeners.add(listener),
      setPeerAddress: (id, address) => this.#setPeerAddress(id, address),
      setPeers: (peers, options) => {
        const next = options?.replace ? new Map<NodeId, string>() : new Map(this.#book);
        for (const [id, address] of peers) next.set(id, address);
        this.#book = next;
        this.pushPeers();
      },
      peerAddresses: () => new Map(this.#book),
      stop: () => this.stop(),
      done: this.#done,
    };
  }

  #setPeerAddress(id: NodeId, address: string): void {
    if (this.#book.get(id) === address) return;
    this.#book = new Map(this.#book).set(id, address);
    this.pushPeers();
  }

  /** Runs `start` on the loop with a settle callback that ends the returned Promise. */
  #call<A>(start: (now: number, settle: Settle) => void): Promise<A> {
    // After a fatal error, every request fails with that error itself, as the pending ones did.
    if (this.#stoppedWith || this.#stopping) return Promise.reject(this.#stoppedWith?.error ?? new NodeStopped());
    return new Promise<A>((resolve, reject) => {
      const settle: Settle = (o) => (o.ok ? resolve(o.value as A) : reject(o.error));
      Queue.offerUnsafe(this.#queue, { kind: "call", run: (now) => start(now, settle) });
    });
  }

  /**
   * A proposal, observed (pending, outcome, duration), traced under the
   * caller's span if given, and cancelled or abandoned when its signal aborts
   * (see {@link ProposeOptions.signal}).
   */
  #propose(data: Uint8Array, options: ProposeOptions | undefined): Promise<unknown> {
    if (this.#stoppedWith || this.#stopping) return Promise.reject(this.#stoppedWith?.error ?? new NodeStopped());
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new ProposalCancelled());
    return new Promise<unknown>((resolve, reject) => {
      let id: number | undefined;
      let startedAt = 0;
      let settled = false;
      let toldCaller = false;
      const onAbort = () => Queue.offerUnsafe(this.#queue, { kind: "call", run: () => giveUp() });
      const settle: Settle = (o) => {
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        // Its caller gave up and it was not cancelled: nobody may hear this outcome but the observer.
        const abandoned = signal?.aborted === true && !(!o.ok && o.error instanceof ProposalCancelled);
        this.#obs.proposalSettled(id, o, this.#now - startedAt, abandoned);
        if (toldCaller) return;
        if (o.ok) resolve(o.value);
        else reject(o.error);
      };
      // On the loop, after the abort: cancelled if the core has not seen it, else the caller is told at once.
      const giveUp = () => {
        if (settled || id === undefined || this.#driver.cancel(id, new ProposalCancelled())) return;
        toldCaller = true;
        this.#obs.abandoned(id);
        reject(
          new OutcomeUnknown("the caller gave up after the proposal was handed to the leader: it may still commit"),
        );
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      Queue.offerUnsafe(this.#queue, {
        kind: "call",
        run: (now) => {
          startedAt = now;
          if (signal?.aborted) {
            this.#obs.proposed(undefined, false);
            return settle({ ok: false, error: new ProposalCancelled() });
          }
          const leader = this.#driver.state.role.kind === "leader";
          id = this.#driver.propose(data, now, settle);
          this.#obs.proposed(id, signal !== undefined);
          if (id !== undefined && options?.trace) this.#obs.traces.begin(id, options.trace, !leader);
        },
      });
    });
  }

  /** Asks the loop to stop once the writes taken are durable; resolves when it has ended. */
  stop(): Promise<void> {
    if (!this.#stoppedWith && !this.#stopping) {
      this.#stopping = true;
      Queue.offerUnsafe(this.#queue, { kind: "stop" });
    }
    return this.#done;
  }

  /** The loop fiber: runs until stopped or a fatal error, then ends every request. */
  run(): Effect.Effect<void> {
    const loop = Effect.gen({ self: this }, function* () {
      this.#now = yield* Clock.currentTimeMillis;
      yield* this.#drain();
      let seenStop = false;
      while (!seenStop) {
        const items = yield* Queue.takeAll(this.#queue);
        this.#now = yield* Clock.currentTimeMillis;
        let fatal: StorageFailure | undefined;
        for (const item of items) {
          if (item.kind === "stop") seenStop = true;
          else if (item.kind === "fatal") fatal ??= item.error;
          else this.#feed(item);
        }
        if (fatal) return yield* Effect.fail(fatal);
        yield* this.#drain();
      }
    });
    return Effect.exit(loop).pipe(
      Effect.flatMap((exit) =>
        Effect.gen({ self: this }, function* () {
          let error: unknown = undefined;
          if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) error = Cause.squash(exit.cause);
          // A stop ends after every write taken is durable; a failure elsewhere must not close the log under one.
          yield* this.#writesSettled();
          // A capture being stored finishes before the store is closed (its write does not stop when its fiber would).
          if (this.#captureFiber) yield* Fiber.await(this.#captureFiber);
          // A snapshot half received is abandoned: its file is not left open behind a stopped node.
          yield* this.#intake.close();
          this.#finish(error);
          // Calls that were queued behind the end are refused by the stopped driver, not left waiting.
          for (const item of yield* Queue.clear(this.#queue)) if (item.kind === "call") item.run(this.#now);
          yield* this.#obs.flush;
        })
      ),
    );
  }

  #feed(item: Exclude<Item, { kind: "stop" } | { kind: "fatal" }>): void {
    const d = this.#driver;
    switch (item.kind) {
      case "receive":
        return d.receive(item.message, this.#now);
      case "unreachable":
        return d.unreachable(item.peer, this.#now);
      case "timer":
        if (!this.#timers.current(item.timer, item.gen)) return;
        if (item.timer === "deadline") {
          this.#deadline = undefined;
          return d.tick(this.#now);
        }
        return d.timer(item.timer, this.#now);
      case "call":
        return item.run(this.#now);
    }
  }

  /** Carries out the driver's work, round after round, until it has none; then re-arms its deadline. */
  #drain(): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      const d = this.#driver;
      while (d.hasWork && !d.stopped) yield* this.#execute(d.take());
      const deadline = d.nextDeadline();
      if (deadline !== this.#deadline) {
        this.#deadline = deadline;
        if (deadline === undefined) this.#timers.cancel("deadline");
        else yield* this.#timers.arm("deadline", Math.max(0, deadline - this.#now), this.#now);
      }
      this.#statusCache = d.status();
      yield* this.#obs.flush;
    });
  }

  #execute(work: Work): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      const d = this.#driver;
      for (const m of work.sends) this.#transmit(m);
      for (const [timer, ms] of work.timers) yield* this.#timers.arm(timer, ms, this.#now);
      for (const op of work.receive) {
        if (op.op === "write") this.#obs.snapshotBytes(false, op.data.length);
        yield* this.#intake.run(op, this.#intakeReports);
      }
      if (work.write) yield* this.#queueWrite(work.write);
      if (work.applies.length > 0) {
        const wait = d.applyAll(work.applies, (entry) => this.#ports.sm.apply(entry));
        if (wait) yield* Effect.promise(() => wait);
        this.#obs.applied(work.applies.length);
      }
      if (work.capture) yield* this.#capture();
      if (work.chunks.length > 0) {
        for (const c of work.chunks) this.#obs.snapshotBytes(true, c.chunk.length);
        yield* this.#streams.send(work.chunks);
      }
      if (this.#streams.active) this.#streams.sweep();
    });
  }

  #transmit(message: Message): void {
    if (!this.#ports.transport.send(message)) this.#driver.unreachable(message.to, this.#now);
  }

  /**
   * Hands a write unit to the writer fiber, which runs beside the loop: while
   * one fsync is in flight the loop goes on taking messages and proposals —
   * a leader sends the next entries and counts its followers' answers, a
   * follower appends what arrives next (thesis §10.2.1: only what waits for
   * the disk waits; the driver holds back each unit's `after` effects until
   * it is reported durable, and reports come in the order units were taken).
   * A unit with nothing to write and nothing before it is durable already.
   */
  #queueWrite(unit: WriteUnit): Effect.Effect<void> {
    if (this.#writeFailed) return Effect.void; // Fail-stop: nothing after a failed write is written or reported.
    if (unit.empty && !this.#writing) {
      // The writer may have finished with its report still queued for the loop: those units come first.
      this.#reportDurable(this.#now);
      this.#driver.written(unit.id, this.#now);
      return Effect.void;
    }
    this.#writes.push(unit);
    if (this.#writing) return Effect.void;
    this.#writing = true;
    return Effect.map(Effect.forkChild(this.#writer()), (fiber) => void (this.#writerFiber = fiber));
  }

  /**
   * The writer: takes every unit queued so far and makes them durable with
   * one sync (group commit across the units that queued behind the last
   * fsync), reports them to the loop in order, and repeats until none is
   * left. A failed write is fatal to the node (fail-stop).
   */
  #writer(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      while (this.#writes.length > 0) {
        const units = this.#writes.splice(0);
        const failed = yield* this.#write(units).pipe(
          Effect.as(false),
          Effect.catch((error) =>
            Effect.sync(() => {
              this.#writeFailed = true;
              this.#writes = [];
              Queue.offerUnsafe(this.#queue, { kind: "fatal", error });
              return true;
            })
          ),
        );
        if (failed) break;
        for (const unit of units) this.#durable.push(unit.id);
        Queue.offerUnsafe(this.#queue, { kind: "call", run: (now) => this.#reportDurable(now) });
      }
      this.#writing = false;
    });
  }

  /** Tells the driver which units the writer has made durable since the last call, oldest first. */
  #reportDurable(now: number): void {
    for (const id of this.#durable.splice(0)) if (!this.#driver.stopped) this.#driver.written(id, now);
  }

  /** Waits until the writer has made every queued unit durable (or failed). */
  #writesSettled(): Effect.Effect<void> {
    const fiber = this.#writerFiber;
    return this.#writing && fiber !== undefined ? Effect.asVoid(Fiber.await(fiber)) : Effect.void;
  }

  /**
   * Write units, in order: each stage's append, a compaction after a sync of
   * what precedes it, then one sync — each append's size and each sync's
   * duration measured, and the traced proposals they carry told when the
   * write starts and ends.
   */
  #write(units: readonly WriteUnit[]): Effect.Effect<void, StorageFailure> {
    return Effect.gen({ self: this }, function* () {
      const log = this.#ports.log;
      const obs = this.#obs;
      if (obs.traces.active) {
        const entries = units.flatMap((unit) => unit.stages.flatMap((st) => st.batch?.entries ?? []));
        if (entries.length > 0) obs.traces.writing(entries[0]!.index, entries[entries.length - 1]!.index);
      }
      let unsynced = 0;
      const sync = Effect.gen(function* () {
        const t0 = obs.monotonicMs();
        yield* log.sync;
        obs.fsynced(obs.monotonicMs() - t0, unsynced);
        unsynced = 0;
      });
      for (const st of units.flatMap((unit) => unit.stages)) {
        if (st.batch) {
          yield* log.append(st.batch);
          obs.appended(st.batch.entries.length, dataBytes(st.batch.entries));
          unsynced += Math.max(1, st.batch.entries.length);
        }
        if (st.compactTo > 0) {
          if (unsynced > 0) yield* sync;
          yield* log.compact(st.compactTo);
        }
      }
      if (unsynced > 0) yield* sync;
      obs.traces.written();
    });
  }

  /**
   * The state machine captures its state now (exactly the applied index);
   * storing it runs off the loop, then the driver hears it is durable. A
   * failed store is fail-stop; a state machine that cannot snapshot is not.
   */
  #capture(): Effect.Effect<void> {
    const meta = this.#driver.captureMeta();
    if (meta === undefined) return Effect.void;
    const queue = this.#queue;
    const capture = captureSnapshot(meta, this.#ports.sm, this.#ports.snapshots, {
      stored: (info, stored) => {
        // Held from now: until the driver hears of it, it may still ask to stream the one before.
        const held = holdFor(stored);
        Queue.offerUnsafe(queue, {
          kind: "call",
          run: (now) => {
            this.#driver.snapshotStored(info, now);
            this.#streams.offer(stored, held);
          },
        });
      },
      failed: (reason) =>
        void Queue.offerUnsafe(queue, { kind: "call", run: () => this.#driver.captureFailed(reason) }),
      fatal: (error) => void Queue.offerUnsafe(queue, { kind: "fatal", error }),
    });
    // One capture at a time (the driver's): the latest fiber is the only one that can still be storing.
    return Effect.map(capture, (fiber) => void (this.#captureFiber = fiber));
  }

  #finish(error: unknown): void {
    this.#obs.stopped(error);
    this.#stoppedWith = { error };
    this.#stopping = true;
    this.#timers.stopAll();
    this.#streams.stop();
    // A fatal error reaches every waiting caller as itself; a clean stop as NodeStopped.
    this.#driver.stop(error);
    this.#statusCache = this.#driver.status();
    if (error === undefined) this.#resolveDone();
    else this.#rejectDone(error);
  }

  /** Forwards one driver event to the observer and the listeners (commits only while someone listens). */
  emit(event: RaftEvent): void {
    if (this.#obs === undefined) return;
    this.#obs.event(event);
    if (event.type === "commit" && !this.#listeners.active) return;
    this.#listeners.emit(event);
  }

  /** Forwards one driver observation to the observer. */
  observe(observation: Observation): void {
    if (this.#obs !== undefined) this.#obs.observe(observation);
  }
}

/** Bytes of entry data in `entries`. */
function dataBytes(entries: readonly { readonly data: Uint8Array }[]): number {
  let n = 0;
  for (const e of entries) n += e.data.length;
  return n;
}
