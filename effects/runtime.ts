/**
 * The production interpreter: one long-lived fiber per node runs the pure
 * core's `step` over batches of inputs and carries out the effects.
 *
 * Each loop iteration:
 * 1. takes every ready input (blocking only for the first); client
 *    proposals are coalesced into ONE `Propose` input;
 * 2. folds `step` over them, collecting the effects in order;
 * 3. sends at once what may go at once: messages emitted before any
 *    `Persist`, and the leader's `AppendEntries` (thesis §10.2.1);
 * 4. writes all `Persist`s with one `append` and makes them durable with ONE
 *    `sync` (group commit, DESIGN.md rule 4), then feeds `Persisted` back;
 * 5. carries out the rest in order: held-back sends (rule 1: votes and
 *    acknowledgements never outrun the disk), `Apply` through the state
 *    machine, request outcomes, snapshots, compaction, events.
 *
 * Effect wraps the loop, not each entry: callers enqueue with
 * `Queue.offerUnsafe` and await plain Promises settled by the loop.
 *
 * @module
 */

import { Cause, Clock, Effect, Exit, type Fiber, Queue, Result, type Scope } from "effect";
import type { RaftConfig } from "../core/config.ts";
import { describeEffect } from "../core/describe.ts";
import { termAt } from "../core/log.ts";
import { allMembers, isLearner } from "../core/membership.ts";
import type { Progress } from "../core/progress.ts";
import { leaderOf, membershipOf, type RaftState } from "../core/state.ts";
import { start, step, type StepResult } from "../core/step.ts";
import type {
  ConfChange,
  Entry,
  Index,
  Input,
  Membership,
  Message,
  NodeId,
  Proposal,
  RaftEffect,
  SnapshotMeta,
  Term,
  TimerKind,
} from "../core/types.ts";
import { BatchBuilder } from "./batch.ts";
import { NodeStopped, RaftRejected, SnapshotChecksumMismatch, StateMachineFailure, StorageFailure } from "./errors.ts";
import { Listeners, type NodeStatus, type PeerProgress, type RaftListener } from "./events.ts";
import { PendingRequests } from "./pending.ts";
import type { StoredSnapshot } from "./ports.ts";
import { LogStore, type SnapshotSink, SnapshotStore, StateMachine, Transport } from "./services.ts";

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
}

/** Default of {@link RuntimeOptions.requestTimeoutMs}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Options of {@link NodeHandle.setPeers}. */
export interface SetPeersOptions {
  /** Replace the whole address book instead of merging into it (to forget removed nodes). Default false. */
  readonly replace?: boolean;
}

/** A running node, driven by its loop fiber. Methods enqueue and return Promises; none blocks. */
export interface NodeHandle {
  /** Proposes a command; resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<unknown>;
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
  /** Stops after the in-flight batch is durable; resolves when the loop has ended (rejects with a fatal error). */
  stop(): Promise<void>;
  /** Settles when the loop ends, however it ends. */
  readonly done: Promise<void>;
}

type LoopItem =
  | { readonly kind: "input"; readonly input: Input }
  | { readonly kind: "propose"; readonly proposal: Proposal }
  | { readonly kind: "timer"; readonly timer: TimerKind; readonly gen: number }
  | { readonly kind: "stop" }
  /** Work off the loop (storing or sending a snapshot) hit a storage failure: the node stops with it. */
  | { readonly kind: "fatal"; readonly error: StorageFailure };

/** InstallSnapshot chunks in flight beyond the follower's acknowledged offset. */
const SNAPSHOT_WINDOW = 4;

/** One snapshot stream to a follower. */
interface OutgoingSnapshot {
  readonly term: Term;
  readonly meta: SnapshotMeta;
  /** Offset the follower confirmed. */
  acked: number;
  /** Next offset to send. */
  sent: number;
  /** Offset last resumed from after a gap report (-1: none). */
  resumedAt: number;
  /** Consecutive election timeouts without an answer. */
  idle: number;
  running: boolean;
  aborted: boolean;
  finished: boolean;
  /** Wakes the sending loop when an answer arrives. */
  wake: (() => void) | undefined;
}

/** Heartbeat sends remembered for round-trip measurement. */
const SEQ_MEMORY = 64;

/** Everything a node needs from its environment. */
export type NodeServices = LogStore | SnapshotStore | Transport | StateMachine;

/**
 * Recovers a node from its stores and starts its loop in the current scope.
 * Closing the scope stops the node cleanly (as `stop()` does).
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
    if (latest) {
      const bytes = yield* readAll(latest);
      yield* Effect.tryPromise({
        try: async () => await sm.restore(bytes),
        catch: (e) => new StateMachineFailure("restore", e),
      });
    }
    let initial: StepResult;
    try {
      initial = start(options.config, {
        membership: options.membership,
        hardState: recovered.hardState,
        entries: recovered.entries,
        snapshot: latest?.meta,
      });
    } catch (e) {
      return yield* Effect.fail(new StorageFailure("recover", e));
    }
    const queue = yield* Queue.unbounded<LoopItem>();
    const node = new NodeLoop(options, queue, log, snapshots, transport, sm, initial.state, latest?.meta);
    node.pushPeers();
    transport.listen({
      onMessage: (message) => void Queue.offerUnsafe(queue, { kind: "input", input: { type: "Receive", message } }),
      onUnreachable: (to) => void Queue.offerUnsafe(queue, { kind: "input", input: { type: "Unreachable", to } }),
    });
    yield* Effect.forkScoped(node.run(initial.effects));
    yield* Effect.addFinalizer(() => Effect.promise(() => node.stop().catch(() => {})));
    return node.handle();
  });
}

function readAll(snap: StoredSnapshot): Effect.Effect<Uint8Array, StorageFailure> {
  return Effect.tryPromise({
    try: async () => {
      const parts: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of snap.read()) {
        parts.push(chunk);
        size += chunk.length;
      }
      if (parts.length === 1) return parts[0]!;
      const out = new Uint8Array(size);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    },
    catch: (e) => new StorageFailure("snapshot read", e),
  });
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** The loop and the interpreter's bookkeeping around the core's state. */
class NodeLoop {
  private state: RaftState;
  private readonly pending: PendingRequests;
  /** The one address book of this node (see {@link NodeHandle.setPeers}); the transport gets copies. */
  private book: Map<NodeId, string>;
  /** The status' progress view, rebuilt only when the leader's progress map or the membership changes. */
  private progressView:
    | { progress: ReadonlyMap<NodeId, Progress>; membership: Membership; view: ReadonlyMap<NodeId, PeerProgress> }
    | undefined = undefined;
  private readonly listeners = new Listeners();
  /** Inputs produced by the loop itself (Persisted, SnapshotRestored), stepped first next iteration. */
  private carry: LoopItem[] = [];
  private stopping = false;
  private stoppedWith: { error: unknown } | undefined = undefined;
  private readonly timerGen: Record<TimerKind, number> = { election: 0, heartbeat: 0, quorum: 0, transfer: 0 };
  private readonly timerFibers = new Map<TimerKind, Fiber.Fiber<void>>();
  /** When each timer must fire (loop clock), and when its sleeper wakes next. */
  private readonly timerDeadline: Record<TimerKind, number> = { election: 0, heartbeat: 0, quorum: 0, transfer: 0 };
  private readonly timerWake: Record<TimerKind, number> = { election: 0, heartbeat: 0, quorum: 0, transfer: 0 };
  /** Last entry the state machine applied (or snapshot it restored): guards exactly-once apply. */
  private appliedIndex: Index;
  private appliedTerm: Term;
  private snapshotInProgress = false;
  /** Snapshot streams to followers (kept after a failure so a retry resumes where the follower is). */
  private readonly outgoing = new Map<NodeId, OutgoingSnapshot>();
  /** Snapshots sent (or being sent) whose final answer has not arrived, by follower. */
  private readonly snapshotsInFlight = new Map<NodeId, SnapshotMeta>();
  private receiving: SnapshotSink | undefined = undefined;
  /** Leader and term the partial snapshot in `receiving` comes from. */
  private receivingFrom: { readonly from: NodeId; readonly term: Term } | undefined = undefined;
  private now = 0;
  private readonly seqSentAt = new Map<number, number>();
  private readonly lastWarning = new Map<NodeId, number>();
  private lastTerm: Term;
  private lastMembers: Set<NodeId>;
  private statusCache: NodeStatus;
  private readonly chunkBytes: number;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  private readonly donePromise: Promise<void>;

  constructor(
    private readonly options: RuntimeOptions,
    private readonly queue: Queue.Queue<LoopItem>,
    private readonly log: LogStore,
    private readonly snapshots: SnapshotStore,
    private readonly transport: Transport,
    private readonly sm: StateMachine,
    state: RaftState,
    snapshot: SnapshotMeta | undefined,
  ) {
    this.state = state;
    this.pending = new PendingRequests(options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.book = new Map(options.peers ?? []);
    this.appliedIndex = snapshot?.index ?? 0;
    this.appliedTerm = snapshot?.term ?? 0;
    this.lastTerm = state.term;
    this.lastMembers = new Set(allMembers(membershipOf(state)));
    this.chunkBytes = options.snapshotChunkBytes ?? options.config.maxMessageBytes;
    this.statusCache = this.buildStatus();
    this.donePromise = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Nobody may be listening for a fatal error; don't report it as unhandled.
    this.donePromise.catch(() => {});
  }

  /** The ReadIndex round outstanding, if any. */
  private readInFlight: Promise<Index> | undefined;
  /** Reads waiting for the round after it. */
  private readNext: { promise: Promise<Index>; resolve: (i: Index) => void; reject: (e: unknown) => void } | undefined;

  handle(): NodeHandle {
    return {
      propose: (data) => this.request("propose", (requestId) => ({ kind: "propose", proposal: { requestId, data } })),
      readIndex: () => this.coalescedReadIndex(),
      changeMembership: (change, address) => {
        if (address !== undefined && (change.type === "addVoter" || change.type === "addLearner")) {
          this.setPeerAddress(change.node, address);
        }
        return this.request(
          "conf",
          (requestId) => ({ kind: "input", input: { type: "ProposeConfChange", requestId, change } }),
        );
      },
      transferLeadership: (to) =>
        this.request(
          "transfer",
          (requestId) => ({ kind: "input", input: { type: "TransferLeadership", requestId, to } }),
        ),
      status: () => this.statusCache,
      subscribe: (listener) => this.listeners.add(listener),
      setPeerAddress: (id, address) => this.setPeerAddress(id, address),
      setPeers: (peers, options) => {
        const next = options?.replace ? new Map<NodeId, string>() : new Map(this.book);
        for (const [id, address] of peers) next.set(id, address);
        this.book = next;
        this.pushPeers();
      },
      peerAddresses: () => new Map(this.book),
      stop: () => this.stop(),
      done: this.donePromise,
    };
  }

  /**
   * Linearizable reads share ReadIndex rounds (as etcd's read loop does): a
   * read that arrives while a round is outstanding waits for the next one,
   * which starts only after the outstanding one settles, hence after the read
   * arrived (thesis §6.4: the read index is fixed after the request). Under
   * load this is one round per round trip instead of one per read.
   */
  private coalescedReadIndex(): Promise<Index> {
    if (this.readNext) return this.readNext.promise;
    if (this.readInFlight === undefined) return this.startReadRound();
    let resolve!: (index: Index) => void, reject!: (e: unknown) => void;
    const promise = new Promise<Index>((res, rej) => ((resolve = res), (reject = rej)));
    this.readNext = { promise, resolve, reject };
    return promise;
  }

  private startReadRound(): Promise<Index> {
    const round = this.request<Index>(
      "read",
      (requestId) => ({ kind: "input", input: { type: "ReadIndex", requestId } }),
    );
    this.readInFlight = round;
    const settled = () => {
      this.readInFlight = undefined;
      const next = this.readNext;
      if (next === undefined) return;
      this.readNext = undefined;
      this.startReadRound().then(next.resolve, next.reject);
    };
    round.then(settled, settled);
    return round;
  }

  private setPeerAddress(id: NodeId, address: string): void {
    if (this.book.get(id) === address) return;
    this.book = new Map(this.book).set(id, address);
    this.pushPeers();
  }

  /** Hands the transport the full address book, this node excluded. */
  pushPeers(): void {
    const others = new Map(this.book);
    others.delete(this.options.config.id);
    this.transport.setPeers(others);
  }

  private request<A>(
    kind: "propose" | "read" | "conf" | "transfer",
    item: (requestId: number) => LoopItem,
  ): Promise<A> {
    // After a fatal error, every request fails with that error itself, as the pending ones did.
    if (this.stoppedWith || this.stopping) return Promise.reject(this.stoppedWith?.error ?? new NodeStopped());
    const { requestId, promise } = this.pending.register<A>(kind);
    Queue.offerUnsafe(this.queue, item(requestId));
    return promise;
  }

  stop(): Promise<void> {
    if (!this.stoppedWith && !this.stopping) {
      this.stopping = true;
      Queue.offerUnsafe(this.queue, { kind: "stop" });
    }
    return this.donePromise;
  }

  /** The loop fiber: runs until stopped or a fatal error, then fails every pending request. */
  run(initial: readonly RaftEffect[]): Effect.Effect<void> {
    const loop = Effect.gen({ self: this }, function* () {
      this.now = yield* Clock.currentTimeMillis;
      yield* this.interpret(initial);
      this.statusCache = this.buildStatus();
      // `stopping` is also set by stop() from outside; the loop ends once it has seen the stop item.
      let seenStop = false;
      while (!seenStop) {
        let items: LoopItem[];
        if (this.carry.length > 0) {
          items = this.carry;
          this.carry = [];
          for (const more of yield* Queue.clear(this.queue)) items.push(more);
        } else {
          items = yield* Queue.takeAll(this.queue);
        }
        this.now = yield* Clock.currentTimeMillis;
        const effects: RaftEffect[] = [];
        const proposals: Proposal[] = [];
        for (const item of items) {
          switch (item.kind) {
            case "input":
              // Reads carry the loop's clock so the core can serve them from a lease (§6.4.1).
              this.stepInto(item.input.type === "ReadIndex" ? { ...item.input, now: this.now } : item.input, effects);
              break;
            case "propose":
              proposals.push(item.proposal);
              break;
            case "timer":
              if (item.gen === this.timerGen[item.timer]) {
                this.stepInto({ type: "Timeout", timer: item.timer, now: this.now }, effects);
              }
              break;
            case "stop":
              seenStop = true;
              break;
            case "fatal":
              return yield* Effect.fail(item.error);
          }
        }
        if (proposals.length > 0) this.stepInto({ type: "Propose", proposals }, effects);
        if (effects.length > 0) yield* this.interpret(effects);
        this.statusCache = this.buildStatus();
      }
    });
    return Effect.exit(loop).pipe(
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          let error: unknown = undefined;
          if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) error = Cause.squash(exit.cause);
          this.finish(error);
        })
      ),
    );
  }

  private finish(error: unknown): void {
    this.stoppedWith = { error };
    this.stopping = true;
    for (const f of this.timerFibers.values()) f.interruptUnsafe();
    this.timerFibers.clear();
    for (const o of this.outgoing.values()) {
      o.aborted = true;
      o.wake?.();
    }
    // A fatal error reaches every waiting caller as itself; a clean stop as NodeStopped.
    this.pending.failAll(error ?? new NodeStopped());
    this.statusCache = this.buildStatus();
    this.listeners.emit({ type: "stopped", error });
    if (error === undefined) this.resolveDone();
    else this.rejectDone(error);
  }

  private stepInto(input: Input, out: RaftEffect[]): void {
    if (input.type === "Receive") {
      const m = input.message;
      if (m.type === "AppendEntriesResponse") this.measure(m);
      else if (m.type === "InstallSnapshotResponse") this.snapshotAnswered(m);
    }
    const r = step(this.state, input);
    this.state = r.state;
    for (const e of r.effects) out.push(e);
    if (input.type === "Unreachable") this.snapshotLost(input.to, out);
  }

  /**
   * Shim: the core leaves a follower in snapshot state until it answers, and
   * `Unreachable` does not reset that state, so a snapshot lost on the way
   * would stall the follower for good. When its peer is reported unreachable,
   * tell the core the transfer failed, as the follower itself would (it
   * probes again, and resends the snapshot once the peer answers).
   */
  private snapshotLost(to: NodeId, out: RaftEffect[]): void {
    const meta = this.snapshotsInFlight.get(to);
    if (meta === undefined || this.state.role.kind !== "leader") return;
    this.snapshotsInFlight.delete(to);
    const message: Message = {
      group: this.options.config.group,
      from: to,
      to: this.options.config.id,
      term: this.state.term,
      type: "InstallSnapshotResponse",
      index: meta.index,
      offset: 0,
      done: true,
      success: false,
    };
    const r = step(this.state, { type: "Receive", message });
    this.state = r.state;
    for (const e of r.effects) out.push(e);
  }

  /** Carries out one iteration's effects in order (see the module doc). */
  private interpret(effects: readonly RaftEffect[]): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      // A partial snapshot from an earlier term is abandoned: the new leader starts its own.
      if (this.receiving && this.receivingFrom?.term !== this.state.term) {
        yield* this.receiving.abort;
        this.receiving = undefined;
      }
      // Persists and compactions reach the store in effect order: a restored snapshot
      // moves the log's start (Compact) before the entries that follow it in the same
      // iteration are appended. One stage per Compact; usually there is just one.
      let stage: { readonly batch: BatchBuilder; compactTo: Index } = { batch: new BatchBuilder(), compactTo: 0 };
      const stages = [stage];
      const rest: RaftEffect[] = [];
      const timers = new Map<TimerKind, number>();
      // A Persist's deferred effects follow it (the hold-back rule below keeps them behind its write).
      const flat = effects.flatMap((e): readonly RaftEffect[] => (e.type === "Persist" ? [e, ...e.after] : [e]));
      for (const e of flat) {
        if (e.type === "Persist" && e.entries.length === 0 && !e.hardState && e.truncateFrom === undefined) continue;
        if (e.type === "Persist") {
          if (stage.compactTo > 0) stages.push(stage = { batch: new BatchBuilder(), compactTo: 0 });
          stage.batch.add(e);
        } else if (e.type === "Compact") stage.compactTo = Math.max(stage.compactTo, e.index);
        // Thesis §10.2.1 lets a leader's appends outrun its own entry writes, but never
        // the write of the term it leads in: a crash would let it reuse that term with
        // a different log (found by the simulator, seed 247 on one voter).
        else if (
          e.type === "Send" &&
          (stages.every((st) => st.batch.isEmpty) ||
            (e.message.type === "AppendEntries" && !stages.some((st) => st.batch.hasHardState)))
        ) {
          this.transmit(e.message);
        } else if (e.type === "SetTimer") timers.set(e.timer, e.ms);
        else rest.push(e);
      }
      for (const [timer, ms] of timers) yield* this.arm(timer, ms);
      let last: Entry | undefined;
      let unsynced = false;
      for (const st of stages) {
        if (!st.batch.isEmpty) {
          yield* this.log.append(st.batch.build());
          unsynced = true;
          last = st.batch.last ?? last;
        }
        if (st.compactTo > 0) {
          if (unsynced) yield* this.log.sync;
          unsynced = false;
          yield* this.log.compact(st.compactTo);
        }
      }
      if (unsynced) yield* this.log.sync;
      if (last) this.carry.push({ kind: "input", input: { type: "Persisted", index: last.index, term: last.term } });
      for (const e of rest) {
        switch (e.type) {
          case "Send":
            this.transmit(e.message);
            break;
          case "Apply": {
            const wait = this.applyFrom(e.entries, 0);
            if (wait) yield* Effect.promise(() => wait);
            break;
          }
          case "Proposed":
            this.pending.proposed(e.requestId, e.index, e.term, this.appliedIndex);
            break;
          case "Reject":
            this.pending.fail(e.requestId, new RaftRejected(e.reason, e.leader));
            break;
          case "ReadReady":
            this.pending.readReady(e.requestId, e.index, this.appliedIndex);
            break;
          case "TransferDone":
            if (e.ok) this.pending.succeed(e.requestId, undefined);
            else this.pending.fail(e.requestId, new RaftRejected("timeout", leaderOf(this.state)));
            break;
          case "TakeSnapshot":
            yield* this.takeSnapshot(e.index);
            break;
          case "SendSnapshot":
            yield* this.sendSnapshot(e.to, e.term, e.meta);
            break;
          case "ReceiveSnapshotChunk":
            yield* this.receiveChunk(e);
            break;
          case "RoleChanged":
            this.noteTerm(e.term);
            this.listeners.emit({ type: "role", role: e.role, term: e.term });
            break;
          case "LeaderChanged":
            this.noteTerm(e.term);
            // Answers owed by the previous leader will not come: fail them now, not at the timeout.
            if (e.leader !== this.options.config.id) this.pending.leaderLost();
            this.listeners.emit({ type: "leader", leader: e.leader, term: e.term });
            break;
          case "Committed":
            if (this.listeners.active) this.listeners.emit({ type: "commit", index: e.index });
            break;
          case "MembershipChanged":
            this.noteMembership(e.membership, e.index);
            break;
          case "SnapshotAck":
          case "RoundAcked":
            break;
          default:
            throw new Error(`unexpected effect ${describeEffect(e)}`);
        }
      }
      this.noteTerm(this.state.term);
    });
  }

  private transmit(message: Message): void {
    if (message.type === "AppendEntries" && !this.seqSentAt.has(message.seq)) {
      this.seqSentAt.set(message.seq, this.now);
      if (this.seqSentAt.size > SEQ_MEMORY) this.seqSentAt.delete(this.seqSentAt.keys().next().value!);
    }
    if (!this.transport.send(message)) {
      this.carry.push({ kind: "input", input: { type: "Unreachable", to: message.to } });
    }
  }

  /** Heartbeat round trips (via the echoed `seq`): warn when one nears the election timeout. */
  private measure(m: Extract<Message, { type: "AppendEntriesResponse" }>): void {
    const sent = this.seqSentAt.get(m.seq);
    if (sent === undefined) return;
    const rtt = this.now - sent;
    const limit = this.options.config.electionTimeoutMs / 2;
    if (rtt < limit || !this.listeners.active) return;
    const last = this.lastWarning.get(m.from) ?? -Infinity;
    if (this.now - last < this.options.config.electionTimeoutMs) return;
    this.lastWarning.set(m.from, this.now);
    this.listeners.emit({
      type: "warning",
      message:
        `heartbeat round trip to ${m.from} took ${rtt} ms (election timeout ${this.options.config.electionTimeoutMs} ms)`,
      peer: m.from,
      roundTripMs: rtt,
    });
  }

  /**
   * Replaces the timer of that kind (DESIGN.md rule 3); a stale firing is
   * ignored by generation. A follower re-arms its election timer on every
   * append, so a sleeper that wakes no later than the new deadline is kept
   * and, on waking early, sleeps the rest; only an earlier deadline costs a
   * new fiber.
   */
  private arm(timer: TimerKind, ms: number): Effect.Effect<void> {
    ++this.timerGen[timer];
    const deadline = this.now + ms;
    this.timerDeadline[timer] = deadline;
    const running = this.timerFibers.get(timer);
    if (running !== undefined && this.timerWake[timer] <= deadline) return Effect.void;
    running?.interruptUnsafe();
    return Effect.map(Effect.forkChild(this.sleeper(timer, ms)), (fiber) => void this.timerFibers.set(timer, fiber));
  }

  /** Sleeps until the timer's latest deadline, then hands the loop a firing of its latest generation. */
  private sleeper(timer: TimerKind, ms: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      let wait = ms;
      while (true) {
        this.timerWake[timer] = (yield* Clock.currentTimeMillis) + wait;
        yield* Effect.sleep(wait);
        wait = this.timerDeadline[timer] - (yield* Clock.currentTimeMillis);
        if (wait <= 0) break;
      }
      this.timerFibers.delete(timer);
      Queue.offerUnsafe(this.queue, { kind: "timer", timer, gen: this.timerGen[timer] });
    });
  }

  /**
   * Applies entries in log order, each exactly once (DESIGN.md rule 2):
   * synchronously while results are plain values; returns a Promise only if
   * the state machine returned one, continuing after it in order.
   */
  private applyFrom(entries: readonly Entry[], from: number): Promise<void> | undefined {
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index <= this.appliedIndex) continue;
      if (e.kind !== "command") {
        this.applied(e, true, undefined);
        continue;
      }
      let value: unknown;
      try {
        value = this.sm.apply(e);
      } catch (err) {
        this.applied(e, false, err);
        continue;
      }
      if (isThenable(value)) {
        const pending = value;
        return (async () => {
          try {
            this.applied(e, true, await pending);
          } catch (err) {
            this.applied(e, false, err);
          }
          await this.applyFrom(entries, i + 1);
        })();
      }
      this.applied(e, true, value);
    }
    return undefined;
  }

  private applied(e: Entry, ok: boolean, value: unknown): void {
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    this.pending.applied(e, ok, value);
    this.pending.serveReads(e.index);
  }

  /**
   * The state machine captures its state now (exactly `index` is applied);
   * storing it runs off the loop, then `SnapshotTaken` lets the core compact.
   */
  private takeSnapshot(index: Index): Effect.Effect<void> {
    if (this.snapshotInProgress || index !== this.appliedIndex) return Effect.void;
    const configs = this.state.configs;
    const membership = (configs.findLast((c) => c.index <= index) ?? configs[0]!).membership;
    const meta: SnapshotMeta = { index, term: termAt(this.state.log, index) ?? this.appliedTerm, membership };
    let captured: Uint8Array | PromiseLike<Uint8Array>;
    try {
      captured = this.sm.snapshot();
    } catch (e) {
      this.warn(`state machine snapshot at ${index} failed: ${String(e)}`);
      return Effect.void;
    }
    this.snapshotInProgress = true;
    const work = Effect.gen({ self: this }, function* () {
      const bytes = yield* Effect.tryPromise({
        try: async () => await captured,
        catch: (e) => new StateMachineFailure("snapshot", e),
      });
      yield* this.snapshots.write(meta, bytes);
      Queue.offerUnsafe(this.queue, { kind: "input", input: { type: "SnapshotTaken", meta } });
    }).pipe(
      // A failed write or fsync is fail-stop (DESIGN.md "Durability"); a state machine that cannot snapshot is not.
      Effect.catch((e) =>
        Effect.sync(() =>
          e instanceof StorageFailure ? this.fatal(e) : this.warn(`snapshot at ${index} not stored: ${e.message}`)
        )
      ),
      Effect.ensuring(Effect.sync(() => void (this.snapshotInProgress = false))),
    );
    return Effect.asVoid(Effect.forkChild(work));
  }

  /**
   * A follower's answer about a snapshot transfer. The final one (`done`)
   * ends the stream; the others acknowledge chunks (`success`) or, after a
   * lost or reordered chunk, name the offset it needs next, from which the
   * stream resumes (once per offset: the chunks behind the gap each report it).
   */
  private snapshotAnswered(m: Extract<Message, { type: "InstallSnapshotResponse" }>): void {
    const o = this.outgoing.get(m.from);
    if (m.done) {
      this.snapshotsInFlight.delete(m.from);
      if (o) {
        o.finished = true;
        this.outgoing.delete(m.from);
        o.wake?.();
      }
      return;
    }
    if (!o || o.meta.index !== m.index || o.term !== m.term) return;
    if (m.offset > o.acked) {
      o.acked = m.offset;
      o.idle = 0;
    }
    if (!m.success && m.offset < o.sent && m.offset !== o.resumedAt) {
      o.sent = m.offset;
      o.resumedAt = m.offset;
    }
    o.wake?.();
  }

  /**
   * Streams the latest snapshot to `to` as InstallSnapshot chunks of at most
   * `snapshotChunkBytes`, off the loop, with at most {@link SNAPSHOT_WINDOW}
   * chunks beyond the follower's acknowledged offset. A repeated request for
   * the same snapshot resumes from that offset; a newer snapshot, a new term
   * or lost leadership aborts the stream.
   */
  private sendSnapshot(to: NodeId, term: Term, meta: SnapshotMeta): Effect.Effect<void> {
    this.snapshotsInFlight.set(to, meta);
    const current = this.outgoing.get(to);
    if (current && current.term === term && current.meta.index === meta.index && current.meta.term === meta.term) {
      current.sent = current.acked;
      current.resumedAt = -1;
      current.idle = 0;
      if (current.running) {
        current.wake?.();
        return Effect.void;
      }
    } else if (current) {
      current.aborted = true;
      current.wake?.();
    }
    const o: OutgoingSnapshot = current && !current.aborted ? current : {
      term,
      meta,
      acked: 0,
      sent: 0,
      resumedAt: -1,
      idle: 0,
      running: false,
      aborted: false,
      finished: false,
      wake: undefined,
    };
    this.outgoing.set(to, o);
    o.running = true;
    const header = { group: this.options.config.group, from: this.options.config.id, to, term };
    const work = Effect.gen({ self: this }, function* () {
      const snap = yield* this.snapshots.latest;
      if (!snap || snap.meta.index !== meta.index || snap.meta.term !== meta.term) {
        this.warn(`snapshot ${meta.index}/${meta.term} for ${to} is not the latest stored`);
        o.aborted = true;
        Queue.offerUnsafe(this.queue, { kind: "input", input: { type: "Unreachable", to } });
        return;
      }
      const ok = yield* Effect.tryPromise({
        try: () => this.streamSnapshot(o, snap, header),
        catch: (e) => new StorageFailure("snapshot read", e),
      });
      if (!ok && !o.aborted && !o.finished) {
        Queue.offerUnsafe(this.queue, { kind: "input", input: { type: "Unreachable", to } });
      }
    }).pipe(
      Effect.catch((e) =>
        Effect.gen({ self: this }, function* () {
          // A newer snapshot replacing this one mid-stream explains the failure: the core will ask
          // for the new one. Otherwise this node cannot read (or vouch for) its own snapshot: it stops.
          const now = yield* Effect.result(this.snapshots.latest);
          const replaced = Result.isSuccess(now) && now.success !== undefined &&
            (now.success.meta.index !== meta.index || now.success.meta.term !== meta.term);
          if (!replaced) return this.fatal(e);
          this.warn(`sending snapshot to ${to} stopped: ${e.message}`);
          Queue.offerUnsafe(this.queue, { kind: "input", input: { type: "Unreachable", to } });
        })
      ),
      Effect.ensuring(Effect.sync(() => void (o.running = false))),
    );
    return Effect.asVoid(Effect.forkChild(work));
  }

  /**
   * The sending loop of one stream. Returns false when the transport refused
   * a chunk or the follower went silent (the core then probes and asks again,
   * which resumes), true when the stream finished or was aborted.
   */
  private async streamSnapshot(
    o: OutgoingSnapshot,
    snap: StoredSnapshot,
    header: { group: number; from: NodeId; to: NodeId; term: Term },
  ): Promise<boolean> {
    const size = snap.size;
    const chunk = Math.max(1, this.chunkBytes);
    const idleMs = this.options.config.electionTimeoutMs;
    let reader: AsyncIterator<Uint8Array> | undefined;
    let readerAt = -1;
    let emptySent = false;
    try {
      for (;;) {
        const s = this.state;
        if (o.aborted || o.finished || s.term !== o.term || s.role.kind !== "leader" || this.stopping) return true;
        // An empty snapshot is one empty, final chunk.
        const complete = size === 0 ? emptySent : o.sent >= size;
        if (complete || o.sent >= o.acked + SNAPSHOT_WINDOW * chunk) {
          // Wait for an answer; silence for an election timeout resends from the acknowledged offset.
          if (!(await this.waitForAnswer(o, idleMs))) {
            if (++o.idle > 3) return false;
            o.sent = o.acked;
            o.resumedAt = -1;
            emptySent = false;
          }
          continue;
        }
        if (size === 0) {
          const empty = new Uint8Array();
          const message = {
            ...header,
            type: "InstallSnapshot" as const,
            meta: o.meta,
            offset: 0,
            data: empty,
            done: true,
            checksum: snap.checksum,
          };
          if (!this.transport.send(message)) return false;
          emptySent = true;
          continue;
        }
        if (reader === undefined || readerAt !== o.sent) {
          await reader?.return?.();
          reader = snap.read(o.sent, chunk)[Symbol.asyncIterator]();
          readerAt = o.sent;
        }
        const next = await reader.next();
        if (next.done) throw new Error(`snapshot ended at ${readerAt} of ${size} bytes`);
        const data = next.value;
        const offset = readerAt;
        readerAt += data.length;
        if (o.sent !== offset) continue; // resumed elsewhere while reading
        const done = offset + data.length >= size;
        const checksum = done ? snap.checksum : undefined;
        if (!this.transport.send({ ...header, type: "InstallSnapshot", meta: o.meta, offset, data, done, checksum })) {
          return false;
        }
        o.sent = offset + data.length;
      }
    } finally {
      await reader?.return?.();
    }
  }

  /** Resolves true when the follower answers (or the stream is told to move on), false after `ms` of silence. */
  private waitForAnswer(o: OutgoingSnapshot, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        o.wake = undefined;
        resolve(false);
      }, ms);
      o.wake = () => {
        clearTimeout(timer);
        o.wake = undefined;
        resolve(true);
      };
    });
  }

  /**
   * Stores a received chunk: chunks come in order from one leader in one
   * term. Each accepted chunk is acknowledged with the next offset expected;
   * a duplicate is acknowledged too; a chunk past a gap (a lost one) is
   * answered with the offset to resume from (`success: false`, not done). A
   * chunk of another snapshot, leader or term discards the partial one. The
   * last chunk restores the state machine and reports `SnapshotRestored`
   * (whose reply, from the core, is the final answer).
   */
  private receiveChunk(
    e: Extract<RaftEffect, { type: "ReceiveSnapshotChunk" }>,
  ): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      const term = this.state.term;
      const answer = (offset: number, success: boolean) =>
        this.transport.send({
          group: this.options.config.group,
          from: this.options.config.id,
          to: e.from,
          term,
          type: "InstallSnapshotResponse",
          index: e.meta.index,
          offset,
          done: false,
          success,
        });
      const same = this.receiving !== undefined && this.receiving.meta.index === e.meta.index &&
        this.receiving.meta.term === e.meta.term && this.receivingFrom?.from === e.from &&
        this.receivingFrom.term === term;
      if (!same || e.offset === 0) {
        if (this.receiving) yield* this.receiving.abort;
        this.receiving = undefined;
        this.receivingFrom = undefined;
        if (e.offset !== 0) {
          answer(0, false);
          return;
        }
        this.receiving = yield* this.snapshots.receive(e.meta);
        this.receivingFrom = { from: e.from, term };
      }
      const sink = this.receiving!;
      const result = yield* sink.writeChunk(e.offset, e.data);
      if (!result.accepted) {
        answer(result.expected, e.offset < result.expected);
        return;
      }
      if (!e.done) {
        answer(result.expected, true);
        return;
      }
      this.receiving = undefined;
      this.receivingFrom = undefined;
      // End to end: the store makes the bytes current only if they are the
      // leader's (its checksum); otherwise they are dropped and asked for again.
      const finished = yield* Effect.result(sink.finish(e.checksum));
      if (Result.isFailure(finished)) {
        if (!(finished.failure instanceof SnapshotChecksumMismatch)) return yield* Effect.fail(finished.failure);
        this.warn(`${finished.failure.message} from ${e.from}: discarded, asking for it again`);
        answer(0, false);
        return;
      }
      const stored = finished.success;
      const bytes = yield* readAll(stored);
      yield* Effect.tryPromise({
        try: async () => await this.sm.restore(bytes),
        catch: (err) => new StateMachineFailure("restore", err),
      });
      this.appliedIndex = e.meta.index;
      this.appliedTerm = e.meta.term;
      this.pending.skippedTo(e.meta.index);
      this.pending.serveReads(e.meta.index);
      this.carry.push({ kind: "input", input: { type: "SnapshotRestored", meta: e.meta } });
    });
  }

  /** Stops the loop with `error` (from work off the loop). */
  private fatal(error: StorageFailure): void {
    Queue.offerUnsafe(this.queue, { kind: "fatal", error });
  }

  private warn(message: string): void {
    this.listeners.emit({ type: "warning", message });
  }

  private noteTerm(term: Term): void {
    if (term <= this.lastTerm) return;
    this.lastTerm = term;
    this.listeners.emit({ type: "term", term });
  }

  private noteMembership(membership: Membership, index: Index): void {
    const members = new Set(allMembers(membership));
    this.listeners.emit({ type: "membership", membership, index });
    for (const id of members) if (!this.lastMembers.has(id)) this.listeners.emit({ type: "peerAdded", peer: id });
    for (const id of this.lastMembers) if (!members.has(id)) this.listeners.emit({ type: "peerRemoved", peer: id });
    this.lastMembers = members;
  }

  private buildStatus(): NodeStatus {
    const s = this.state;
    return {
      id: s.config.id,
      role: s.role.kind,
      term: s.term,
      leader: leaderOf(s),
      commit: s.commit,
      applied: this.appliedIndex,
      membership: membershipOf(s),
      progress: s.role.kind === "leader" ? this.progressOf(s.role.progress, membershipOf(s)) : undefined,
      stopped: this.stoppedWith !== undefined,
      error: this.stoppedWith?.error,
    };
  }

  /** The status' view of the leader's progress; reused while the core's map and the membership are unchanged. */
  private progressOf(
    progress: ReadonlyMap<NodeId, Progress>,
    membership: Membership,
  ): ReadonlyMap<NodeId, PeerProgress> {
    const cached = this.progressView;
    if (cached && cached.progress === progress && cached.membership === membership) return cached.view;
    const view = new Map<NodeId, PeerProgress>();
    for (const [id, pr] of progress) {
      view.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        learner: isLearner(membership, id),
        active: pr.active,
      });
    }
    this.progressView = { progress, membership, view };
    return view;
  }
}
