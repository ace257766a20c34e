/**
 * The node driver: every rule of interpreting the pure core, written once and
 * sans-IO, so that the production loop and the simulator run the same code.
 * The driver steps the core, carries out its effects on its own bookkeeping
 * (requests, snapshot streams, the applied index, events), and tells its
 * I/O shell what to do next as plain data ({@link Work}): messages to send,
 * one write to make durable (group commit), entries to apply, timers to arm,
 * snapshot chunks to read and send, snapshot-store operations. The shell does
 * the I/O and reports back (`written`, `applied` via {@link NodeDriver.applyAll},
 * `snapshotStored`, `snapshotInstalled`, …). Time is data: every call that
 * can depend on it takes `now`, so a virtual clock drives it exactly as a
 * real one does.
 *
 * What the driver decides, so no shell does:
 * - ordering rule 1, as the core states it: a Persist's `after` effects are
 *   carried out only once that write (and every earlier one) is durable;
 * - group commit: every Persist and Compact between two {@link take}s
 *   becomes one {@link WriteUnit} (one append, one sync);
 * - proposals between two `take`s are stepped as one `Propose` input;
 * - request settling, timeouts and leader waits ({@link Requests});
 * - linearizable reads share ReadIndex rounds;
 * - snapshot streams ({@link SnapshotSender}) and reception
 *   ({@link SnapshotReceiver}), and when to capture a snapshot;
 * - exactly-once, in-order apply.
 *
 * @module
 */

import type { RaftConfig } from "../../core/config.ts";
import { lastIndex, termAt } from "../../core/log.ts";
import { allMembers, isLearner } from "../../core/membership.ts";
import type { Progress } from "../../core/progress.ts";
import { leaderOf, membershipOf, type RaftState } from "../../core/state.ts";
import { start, step } from "../../core/step.ts";
import type {
  ConfChange,
  DeferredEffect,
  Entry,
  HardState,
  Index,
  Input,
  Membership,
  Message,
  MessageHeader,
  NodeId,
  Proposal,
  RaftEffect,
  SnapshotMeta,
  Term,
  TimerKind,
} from "../../core/types.ts";
import { NodeStopped, RaftRejected, StateMachineFailure } from "../errors.ts";

import type { NodeStatus, PeerProgress, RaftEvent } from "../events.ts";
import { BatchBuilder } from "../batch.ts";
import type { PersistBatch } from "../ports/mod.ts";
import type { Observation } from "./observations.ts";
import { type Outcome, Requests, type Settle } from "./requests.ts";
import { type ChunkToSend, SNAPSHOT_MAX_IDLE, SNAPSHOT_WINDOW, SnapshotSender } from "./snapshot_sender.ts";
import { type ReceivedChunk, type ReceiverOp, SnapshotReceiver } from "./snapshot_receiver.ts";
import { isThenable } from "../thenable.ts";

/** A stored snapshot, as the driver needs to know it: what it covers, its size and checksum. */
export interface SnapshotInfo {
  /** What it covers. */
  readonly meta: SnapshotMeta;
  /** Size of the state machine's bytes. */
  readonly size: number;
  /** CRC-32C of those bytes. */
  readonly checksum: number;
}

/** What the shell recovered from its stores. */
export interface Recovered {
  /** The persisted hard state. */
  readonly hardState?: HardState;
  /** The durable log entries (contiguous). */
  readonly entries?: readonly Entry[];
  /** The latest durable snapshot (its bytes already restored into the state machine, unless `applied` covers it). */
  readonly snapshot?: SnapshotInfo;
  /**
   * The index a state machine that persists itself has applied (its own
   * report; at most the log's end): entries up to it are not applied again.
   */
  readonly applied?: Index;
}

/** Settings of a driver. */
export interface DriverOptions {
  /** The core's configuration. */
  readonly config: RaftConfig;
  /** Membership used when neither the log nor a snapshot carries one. */
  readonly membership: Membership;
  /** Largest InstallSnapshot chunk, in bytes (default: `config.maxMessageBytes`). */
  readonly snapshotChunkBytes?: number;
  /** Snapshot chunks in flight beyond the follower's acknowledged offset (default 4). */
  readonly snapshotWindow?: number;
  /** How long a request may wait for its outcome (default 10,000 ms; `Infinity`: forever). */
  readonly requestTimeoutMs?: number;
  /** How long a request refused for want of a leader is retried (default three election timeouts). */
  readonly leaderWaitMs?: number;
  /**
   * Where request ids begin. Answers can outlive a process (a leader's answer
   * to a node's previous incarnation), so each start should begin elsewhere;
   * default: derived from `config.seed`.
   */
  readonly firstRequestId?: number;
  /** Hears every event (role, leader, term, commit, membership, warnings, stopped). */
  readonly onEvent?: (event: RaftEvent) => void;
  /** Hears every step, for traces and invariant checks (the simulator's). */
  readonly onStep?: (input: Input, effects: readonly RaftEffect[], state: RaftState) => void;
  /** Hears what only observability needs (request placement, round trips, snapshot transfers, reachability). */
  readonly onObserve?: (observation: Observation) => void;
}

/** Default of {@link DriverOptions.requestTimeoutMs}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** One stage of a write: append a batch (if any), then drop the log up to `compactTo` (if > 0). */
export interface WriteStage {
  /** What to append, or undefined for a compaction-only stage. */
  readonly batch: PersistBatch | undefined;
  /** Drop entries up to and including this index after the append (0: no compaction). */
  readonly compactTo: Index;
}

/**
 * One group-commit write: its stages in order — a restored snapshot moves the
 * log's start before the entries that follow it are appended — then one sync.
 * The shell reports it durable with {@link NodeDriver.written}, in the order
 * the units were taken. A unit may write nothing (it then only orders what
 * waits for it behind earlier units).
 */
export interface WriteUnit {
  /** Identifies the unit in {@link NodeDriver.written}. */
  readonly id: number;
  /** Stages in order. */
  readonly stages: readonly WriteStage[];
  /** Whether anything is written at all. */
  readonly empty: boolean;
}

/** A snapshot chunk to read from the latest stored snapshot and send. */
export interface ChunkSend {
  /** The message header (the stream's term). */
  readonly header: MessageHeader;
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** The byte range. */
  readonly chunk: ChunkToSend;
  /** The snapshot's checksum (sent with the last chunk). */
  readonly checksum: number;
}

/** A snapshot-store operation of a snapshot being received, in order. */
export type StoreOp =
  /** Drop the partial snapshot. */
  | { readonly op: "abort" }
  /** Start receiving `meta`. */
  | { readonly op: "begin"; readonly meta: SnapshotMeta }
  /** Append a chunk. */
  | { readonly op: "write"; readonly offset: number; readonly data: Uint8Array }
  /** Make it durable and current (checking `checksum`), restore the state machine, then call `snapshotInstalled`. */
  | {
    readonly op: "finish";
    readonly from: NodeId;
    readonly meta: SnapshotMeta;
    readonly checksum: number | undefined;
  };

/** The I/O the driver asks for, gathered since the last {@link NodeDriver.take}. */
export interface Work {
  /** Messages to transmit now, in order. */
  readonly sends: readonly Message[];
  /** The write to make durable, if any. */
  readonly write: WriteUnit | undefined;
  /** Committed, durable entries to apply, in order ({@link NodeDriver.applyAll}). */
  readonly applies: readonly Entry[];
  /** Core timers to (re)arm, in ms from now (replacing the pending one of that kind). */
  readonly timers: ReadonlyMap<TimerKind, number>;
  /** After applying: capture a state machine snapshot at {@link NodeDriver.captureMeta}. */
  readonly capture: boolean;
  /** Snapshot chunks to read and send, in order per follower. */
  readonly chunks: readonly ChunkSend[];
  /** Operations on the snapshot being received, in order. */
  readonly receive: readonly StoreOp[];
}

/** How many heartbeat send times are remembered for round-trip measurements. */
const SEQ_MEMORY = 64;

interface OpenUnit {
  stages: { batch: BatchBuilder; compactTo: Index }[];
  after: DeferredEffect[];
  last: Entry | undefined;
}

interface PendingUnit {
  readonly id: number;
  readonly after: readonly DeferredEffect[];
  readonly last: Entry | undefined;
}

interface ReadRound {
  readonly waiters: Settle[];
  /** When its ReadIndex was stepped (for observability). */
  startedAt: number;
}

/** A node's interpreter rules over its pure core, with no I/O of its own. */
export class NodeDriver {
  readonly #options: DriverOptions;
  #state: RaftState;
  readonly #requests: Requests;
  #now: number;
  #stopped: { error: unknown } | undefined = undefined;
  // Work gathered since the last take().
  #sends: Message[] = [];
  #applies: Entry[] = [];
  #timers = new Map<TimerKind, number>();
  #capture = false;
  #chunks: ChunkSend[] = [];
  #receive: StoreOp[] = [];
  #open: OpenUnit | undefined = undefined;
  #proposals: Proposal[] = [];
  // Writes taken and not yet durable, oldest first.
  readonly #pending: PendingUnit[] = [];
  #nextUnit = 1;
  // The state machine's position.
  #appliedIndex: Index;
  #appliedTerm: Term;
  // Snapshots.
  #latest: SnapshotInfo | undefined;
  /**
   * The applied index the next capture must reach, until one is captured:
   * the core's TakeSnapshot (it asks once per `snapshotEvery` entries and
   * never repeats itself), or what was applied when a user asked.
   */
  #captureDue: Index | undefined = undefined;
  /** The index of the capture being stored, if one is. */
  #capturing: Index | undefined = undefined;
  readonly #senders = new Map<NodeId, SnapshotSender>();
  readonly #receiver = new SnapshotReceiver();
  // Requests parked until a leader is known, with what to resubmit.
  readonly #parked = new Map<number, Input | Proposal>();
  // Linearizable reads: the round in flight and the readers waiting for the next.
  #readInFlight: ReadRound | undefined = undefined;
  #readNext: ReadRound | undefined = undefined;
  // Round trips and observability.
  readonly #seqSentAt = new Map<number, number>();
  readonly #lastWarning = new Map<NodeId, number>();
  #lastTerm: Term;
  #lastMembers: Set<NodeId>;

  /** Recovers the core from what the shell read from its stores (`start`), at time `now`. */
  constructor(options: DriverOptions, recovered: Recovered, now: number) {
    this.#options = options;
    this.#now = now;
    this.#requests = new Requests({
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      leaderWaitMs: options.leaderWaitMs ?? 3 * options.config.electionTimeoutMs,
      // Ids must not repeat across restarts (a late answer would settle the wrong request):
      // each start has its own seed, spread over 2^31 bases 2^21 ids apart.
      firstId: options.firstRequestId ?? ((options.config.seed >>> 0) % 0x8000_0000) * 0x20_0000 + 1,
    });
    this.#latest = recovered.snapshot;
    this.#appliedIndex = recovered.snapshot?.meta.index ?? 0;
    this.#appliedTerm = recovered.snapshot?.meta.term ?? 0;
    const persisted = recovered.applied ?? 0;
    if (persisted > this.#appliedIndex) {
      this.#appliedIndex = persisted;
      this.#appliedTerm = recovered.entries?.find((e) => e.index === persisted)?.term ?? this.#appliedTerm;
    }
    const result = start(options.config, {
      membership: options.membership,
      hardState: recovered.hardState,
      entries: recovered.entries,
      snapshot: recovered.snapshot?.meta,
    });
    this.#state = result.state;
    this.#lastTerm = result.state.term;
    this.#lastMembers = new Set(allMembers(membershipOf(result.state)));
    this.#interpret(result.effects);
  }

  // ---------------------------------------------------------------------------
  // What the shell asks

  /** The core's state. */
  get state(): RaftState {
    return this.#state;
  }

  /** Index of the last entry the state machine applied (or the snapshot it restored). */
  get appliedIndex(): Index {
    return this.#appliedIndex;
  }

  /** The latest stored snapshot this node knows of. */
  get latestSnapshot(): SnapshotInfo | undefined {
    return this.#latest;
  }

  /** Whether the node has stopped. */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  /** Whether {@link take} has something (so the shell runs another round before it waits for input). */
  get hasWork(): boolean {
    return this.#sends.length > 0 || this.#open !== undefined || this.#applies.length > 0 || this.#timers.size > 0 ||
      this.#capture || this.#chunks.length > 0 || this.#receive.length > 0 || this.#proposals.length > 0;
  }

  /** The I/O gathered since the last call (stepping the proposals gathered meanwhile first). */
  take(): Work {
    this.#flushProposals();
    let write: WriteUnit | undefined;
    const open = this.#open;
    if (open) {
      const id = this.#nextUnit++;
      const stages = open.stages.map((st) => ({
        batch: st.batch.isEmpty ? undefined : st.batch.build(),
        compactTo: st.compactTo,
      }));
      write = { id, stages, empty: stages.every((st) => st.batch === undefined && st.compactTo === 0) };
      this.#pending.push({ id, after: open.after, last: open.last });
      this.#open = undefined;
    }
    const work: Work = {
      sends: this.#sends,
      write,
      applies: this.#applies,
      timers: this.#timers,
      capture: this.#capture,
      chunks: this.#chunks,
      receive: this.#receive,
    };
    this.#sends = [];
    this.#applies = [];
    this.#timers = new Map();
    this.#capture = false;
    this.#chunks = [];
    this.#receive = [];
    return work;
  }

  /** When {@link tick} next has something to do: a request timeout, a leader wait, an idle snapshot stream. */
  nextDeadline(): number | undefined {
    let next = this.#requests.nextDeadline();
    for (const s of this.#senders.values()) next = next === undefined ? s.deadline : Math.min(next, s.deadline);
    return next;
  }

  /** The node's state, for `status()`. */
  status(): NodeStatus {
    const s = this.#state;
    return {
      id: s.config.id,
      role: s.role.kind,
      term: s.term,
      leader: leaderOf(s),
      commit: s.commit,
      applied: this.#appliedIndex,
      lastIndex: lastIndex(s.log),
      lastContact: new Map(this.#lastHeard),
      membership: membershipOf(s),
      progress: s.role.kind === "leader" ? this.#progressOf(s.role.progress, membershipOf(s)) : undefined,
      stopped: this.#stopped !== undefined,
      error: this.#stopped?.error,
    };
  }

  // ---------------------------------------------------------------------------
  // Requests

  /**
   * Proposes `data`; `settle` hears the state machine's result once applied
   * here (or the typed error). Returns the request's id (for {@link cancel}),
   * or undefined when the node has stopped (`settle` has heard so already).
   */
  propose(data: Uint8Array, now: number, settle: Settle): number | undefined {
    if (this.#refuse(settle)) return undefined;
    this.#now = now;
    const requestId = this.#requests.register("propose", now, settle);
    this.#proposals.push({ requestId, data });
    return requestId;
  }

  /**
   * Cancels proposal `requestId` if it has not been handed to the core yet
   * — still gathered for the next `Propose` input, or parked waiting for a
   * leader (a refusal by a node that knew no leader appended nothing) — and
   * fails it with `error`; returns whether it did. Once the core has seen a
   * proposal (appended it as leader, or forwarded it to the leader) it can no
   * longer be taken back: it may still commit, and this returns false.
   */
  cancel(requestId: number, error: unknown): boolean {
    const gathered = this.#proposals.findIndex((p) => p.requestId === requestId);
    if (gathered >= 0) this.#proposals.splice(gathered, 1);
    else if (this.#parked.has(requestId) && "data" in this.#parked.get(requestId)!) this.#parked.delete(requestId);
    else return false;
    this.#requests.fail(requestId, error);
    return true;
  }

  /**
   * A linearizable read (§6.4): `settle` hears the read index once this
   * node's state machine has applied it. Reads share ReadIndex rounds (as
   * etcd's read loop does): a read that arrives while a round is outstanding
   * waits for the next one, which starts only after the outstanding one
   * settles, hence after the read arrived (the read index is fixed after the
   * request). Under load this is one round per round trip, not one per read.
   */
  read(now: number, settle: Settle): void {
    if (this.#refuse(settle)) return;
    this.#now = now;
    if (this.#readNext) return void this.#readNext.waiters.push(settle);
    if (this.#readInFlight) {
      this.#readNext = { waiters: [settle], startedAt: now };
      return;
    }
    this.#startRead({ waiters: [settle], startedAt: now });
  }

  /** Proposes a membership change; `settle` hears the config entry's index once applied here. */
  changeMembership(change: ConfChange, now: number, settle: Settle): void {
    if (this.#refuse(settle)) return;
    this.#now = now;
    const requestId = this.#requests.register("conf", now, (o) => {
      this.#confChanges.delete(requestId);
      settle(o);
    });
    this.#confChanges.set(requestId, change);
    this.#step({ type: "ProposeConfChange", requestId, change });
  }

  /**
   * A snapshot asked for by the user: `settle` hears the meta of a stored
   * snapshot covering at least what is applied now (at once if the latest
   * does); the core then compacts behind it as after its own.
   */
  snapshot(now: number, settle: Settle): void {
    if (this.#refuse(settle)) return;
    this.#now = now;
    if (this.#latest && this.#latest.meta.index >= this.#appliedIndex) {
      return settle({ ok: true, value: this.#latest.meta });
    }
    if (this.#appliedIndex === 0) {
      return settle({ ok: false, error: new StateMachineFailure("snapshot", new Error("nothing applied yet")) });
    }

    this.#snapshotWaiters.push({ atLeast: this.#appliedIndex, settle });
    this.#due(this.#appliedIndex);
  }

  /** Callers of {@link snapshot} waiting for a stored snapshot reaching `atLeast`. */
  readonly #snapshotWaiters: { readonly atLeast: Index; readonly settle: Settle }[] = [];

  /** A capture reaching at least `index` is due: the next round captures (or defers, see {@link captureMeta}). */
  #due(index: Index): void {
    this.#captureDue = Math.max(this.#captureDue ?? 0, index);
    this.#capture = true;
  }

  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId, now: number, settle: Settle): void {
    if (this.#refuse(settle)) return;
    this.#now = now;
    const requestId = this.#requests.register("transfer", now, settle);
    this.#step({ type: "TransferLeadership", requestId, to });
  }

  #refuse(settle: Settle): boolean {
    if (this.#stopped === undefined) return false;
    // After a fatal error every request fails with that error itself, as the pending ones did.
    settle({ ok: false, error: this.#stopped.error ?? new NodeStopped() });
    return true;
  }

  #startRead(round: ReadRound): void {
    this.#readInFlight = round;
    round.startedAt = this.#now;
    const requestId = this.#requests.register("read", this.#now, (outcome) => this.#readSettled(round, outcome));
    this.#step({ type: "ReadIndex", requestId, now: this.#now });
  }

  #readSettled(round: ReadRound, outcome: Outcome): void {
    this.#observe({
      type: "readRound",
      ms: this.#now - round.startedAt,
      readers: round.waiters.length,
      ok: outcome.ok,
    });
    for (const w of round.waiters) w(outcome);
    if (this.#readInFlight === round) this.#readInFlight = undefined;
    const next = this.#readNext;
    if (next === undefined || this.#stopped) return;
    this.#readNext = undefined;
    this.#startRead(next);
  }

  // ---------------------------------------------------------------------------
  // Inputs from the outside world

  /** When each peer was last heard from (the clock's ms), for `status().lastContact`. */
  readonly #lastHeard = new Map<NodeId, number>();

  /** A message arrived. */
  receive(message: Message, now: number): void {
    this.#now = now;
    this.#lastHeard.set(message.from, now);
    if (this.#unreachable.size > 0 && this.#unreachable.delete(message.from)) {
      this.#observe({ type: "peerReachable", peer: message.from });
    }
    this.#step({ type: "Receive", message });
  }

  /** The transport could not deliver to `peer` (unreachable, queue full). */
  unreachable(peer: NodeId, now: number): void {
    this.#now = now;
    if (!this.#unreachable.has(peer)) {
      this.#unreachable.add(peer);
      this.#observe({ type: "peerUnreachable", peer });
    }
    this.#step({ type: "Unreachable", to: peer });
  }

  /** The host's failure detector lost `peer` (many groups per process): a quiescent group it concerns wakes. */
  peerDown(peer: NodeId, now: number): void {
    this.#now = now;
    this.#step({ type: "PeerDown", peer });
  }

  /** The host's failure detector hears `peer` again: a follower its loss woke may quiesce again. */
  peerUp(peer: NodeId, now: number): void {
    this.#now = now;
    this.#step({ type: "PeerUp", peer });
  }

  /** Peers the transport last failed to reach and that have not been heard from since (observability only). */
  readonly #unreachable = new Set<NodeId>();

  /** A core timer fired. */
  timer(timer: TimerKind, now: number): void {
    this.#now = now;
    this.#step({ type: "Timeout", timer, now });
  }

  /** The snapshot being streamed to `to` now, if any (a paused or ended stream: none). */
  streaming(to: NodeId): SnapshotMeta | undefined {
    return this.#senders.get(to)?.options.meta;
  }

  /** Time passed: requests that waited too long fail; idle snapshot streams resend or give up. */
  tick(now: number): void {
    this.#now = now;
    this.#requests.expire(now);
    for (const [to, sender] of [...this.#senders]) {
      if (sender.tick(now) === "give-up") {
        this.#senders.delete(to);
        this.#observe({ type: "snapshotSendAbandoned", to, index: sender.options.meta.index });
        this.#warn(`snapshot stream to ${to} got no answer; the leader will ask again once it answers a heartbeat`);
        this.#step({ type: "Unreachable", to });
      } else this.#pump(sender);
    }
  }

  // ---------------------------------------------------------------------------
  // Completions of the shell's I/O

  /** The write unit `id` (the oldest not yet reported) is durable. */
  written(id: number, now: number): void {
    this.#now = now;
    const unit = this.#pending[0];
    if (unit === undefined || unit.id !== id) {
      throw new Error(`write ${id} reported durable out of order (expected ${unit?.id ?? "none"})`);
    }
    this.#pending.shift();
    for (const d of unit.after) this.#deferred(d);
    if (unit.last) this.#step({ type: "Persisted", index: unit.last.index, term: unit.last.term });
  }

  /**
   * Applies `entries` in log order, each exactly once (docs/DESIGN.md rule 2),
   * through `apply` for commands (noops and config entries need no state
   * machine): synchronously while results are plain values; returns a
   * Promise only if the state machine returned one, and continues after it.
   * A throw (or rejection) fails only that entry's proposal.
   */
  applyAll(entries: readonly Entry[], apply: (entry: Entry) => unknown): Promise<void> | undefined {
    return this.#applyFrom(entries, 0, apply);
  }

  #applyFrom(entries: readonly Entry[], from: number, apply: (entry: Entry) => unknown): Promise<void> | undefined {
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index <= this.#appliedIndex) continue;
      if (e.kind !== "command") {
        this.#applied(e, true, undefined);
        continue;
      }
      let value: unknown;
      try {
        value = apply(e);
      } catch (err) {
        this.#applied(e, false, err);
        continue;
      }
      if (isThenable(value)) {
        const pending = value;
        return (async () => {
          try {
            this.#applied(e, true, await pending);
          } catch (err) {
            this.#applied(e, false, err);
          }
          await this.#applyFrom(entries, i + 1, apply);
        })();
      }
      this.#applied(e, true, value);
    }
    return undefined;
  }

  #applied(e: Entry, ok: boolean, value: unknown): void {
    this.#appliedIndex = e.index;
    this.#appliedTerm = e.term;
    this.#requests.applied(e, ok, value);
    this.#requests.serveReads(e.index);
    const due = this.#captureDue;
    if (due !== undefined && e.index >= due && this.#capturing === undefined) this.#capture = true;
  }

  /**
   * What a snapshot captured now covers, if one should be captured now: one
   * is due (the core's schedule or a user's request), none is being stored,
   * and the state machine has applied what is due. It covers everything
   * applied now, which may be past what was due. The shell then captures the
   * state machine and stores it. Marks the capture in progress.
   *
   * A due capture is deferred, never dropped: the core asks only once per
   * `snapshotEvery` entries, so dropping it (because more was applied in the
   * same round, or a store was in progress) left a busy leader, whose commit
   * moves several times per round, without snapshots for long stretches.
   */
  captureMeta(): SnapshotMeta | undefined {
    const due = this.#captureDue;
    // While a capture is being stored, the due one waits for snapshotStored (or captureFailed).
    if (due === undefined || this.#capturing !== undefined) return undefined;
    // The entries it covers are still to be applied: #applied asks again once they are.
    if (this.#appliedIndex < due) return undefined;
    this.#captureDue = undefined;
    // The latest snapshot (one installed from the leader) already covers everything applied. A capture at its
    // index would store different bytes under the same name — a state machine need not serialize the same
    // state the same way — while the driver and the streams still hold the first one's size and checksum.
    if (this.#latest !== undefined && this.#latest.meta.index >= this.#appliedIndex) {
      this.#settleSnapshotWaiters(this.#latest.meta);
      return undefined;
    }
    const index = this.#appliedIndex;
    const configs = this.#state.configs;
    const membership = (configs.findLast((c) => c.index <= index) ?? configs[0]!).membership;
    this.#capturing = index;
    this.#capturedAt = this.#now;
    return { index, term: termAt(this.#state.log, index) ?? this.#appliedTerm, membership };
  }

  /** Answers the {@link snapshot} callers that `meta` reaches. */
  #settleSnapshotWaiters(meta: SnapshotMeta): void {
    const waiting = this.#snapshotWaiters.splice(0);
    for (const w of waiting) {
      if (w.atLeast <= meta.index) w.settle({ ok: true, value: meta });
      else this.#snapshotWaiters.push(w);
    }
  }

  /** When the snapshot being stored was captured (for observability). */
  #capturedAt = 0;

  /** The captured snapshot is durable: the core may compact behind it. */
  snapshotStored(info: SnapshotInfo, now: number): void {
    this.#now = now;
    this.#capturing = undefined;
    this.#observe({ type: "snapshotSaved", index: info.meta.index, bytes: info.size, ms: now - this.#capturedAt });
    if (!this.#latest || info.meta.index > this.#latest.meta.index) this.#latest = info;
    this.#step({ type: "SnapshotTaken", meta: info.meta });
    this.#settleSnapshotWaiters(info.meta);
    for (const w of this.#snapshotWaiters) this.#due(w.atLeast);
    // What fell due while this one was being stored is captured now, unless this one covers it.
    if (this.#captureDue !== undefined && this.#captureDue <= info.meta.index) this.#captureDue = undefined;
    if (this.#captureDue !== undefined) this.#capture = true;
  }

  /** Capturing or storing a snapshot failed (not fatal: the log just is not compacted). */
  captureFailed(reason: string): void {
    this.#capturing = undefined;
    // The failed one is not retried (the core asks again later); one that fell due meanwhile is tried now.
    if (this.#captureDue !== undefined) this.#capture = true;
    this.#warn(`snapshot not stored: ${reason}`);
    for (const w of this.#snapshotWaiters.splice(0)) {
      w.settle({ ok: false, error: new StateMachineFailure("snapshot", new Error(reason)) });
    }
  }

  /** A received snapshot is durable and the state machine restored from it. */
  snapshotInstalled(info: SnapshotInfo, now: number): void {
    this.#now = now;
    this.#observe({
      type: "snapshotInstalled",
      index: info.meta.index,
      bytes: info.size,
      ms: now - this.#receivingSince,
    });
    this.#latest = info;
    this.#appliedIndex = info.meta.index;
    this.#appliedTerm = info.meta.term;
    // The leader's snapshot covers what the core asked this node to capture, and the user's requests it reaches:
    // a stored snapshot covering what was applied when they asked (see snapshot()).
    this.#settleSnapshotWaiters(info.meta);
    const due = this.#captureDue;
    if (due !== undefined && due <= info.meta.index && this.#snapshotWaiters.length === 0) {
      this.#captureDue = undefined;
    }
    this.#requests.skippedTo(info.meta.index);
    this.#requests.serveReads(info.meta.index);
    this.#step({ type: "SnapshotRestored", meta: info.meta });
  }

  /**
   * The snapshot store refused what was received from `from` (the checksum
   * over the assembled data did not match): drop it and ask the leader to
   * start over.
   */
  receiveRefused(from: NodeId, meta: SnapshotMeta, reason: string): void {
    this.#receiver.reset();
    this.#warn(`${reason} (snapshot ${meta.index} from ${from}): discarded, asking for it again`);
    this.#answerAfterWrites(this.#snapshotAnswer(from, this.#state.term, meta.index, 0, false));
  }

  /**
   * The state machine's streamed restore (`beginRestore`) of the snapshot
   * being received failed; it will be restored whole once verified. Warned:
   * a decoder that always fails costs the overlap on every install.
   */
  restoreFellBack(meta: SnapshotMeta, reason: string): void {
    this.#warn(`streamed restore of snapshot ${meta.index} dropped (${reason}); restoring it whole once received`);
  }

  /** Stops: every waiting request fails with `error` (or `NodeStopped`); nothing more is accepted. */
  stop(error?: unknown): void {
    if (this.#stopped) return;
    this.#stopped = { error };
    this.#senders.clear();
    this.#paused.clear();
    this.#requests.failAll(error ?? new NodeStopped());
    for (const w of this.#snapshotWaiters.splice(0)) w.settle({ ok: false, error: error ?? new NodeStopped() });
    this.#emit({ type: "stopped", error });
  }

  // ---------------------------------------------------------------------------
  // Stepping the core and interpreting its effects

  #flushProposals(): void {
    if (this.#proposals.length === 0) return;
    const proposals = this.#proposals;
    this.#proposals = [];
    // Kept while the core looks at them: a refusal for want of a leader parks them to resubmit.
    for (const p of proposals) this.#stepping.set(p.requestId, p);
    this.#step({ type: "Propose", proposals });
    this.#stepping.clear();
  }

  /** Membership changes waiting for their outcome, by request id (resubmitted when they wait their turn). */
  readonly #confChanges = new Map<number, ConfChange>();

  /** The proposals being stepped, by request id. */
  readonly #stepping = new Map<number, Proposal>();

  /**
   * Steps `input`. An input that arises while a step's effects are being
   * carried out (a settled read starting the next round, a resubmission) is
   * stepped after them, never inside them, so effects keep their order.
   */
  #step(input: Input): void {
    if (this.#stopped) return;
    if (this.#inStep) return void this.#later.push(input);
    this.#inStep = true;
    try {
      this.#stepOne(input);
      while (this.#later.length > 0 && !this.#stopped) this.#stepOne(this.#later.shift()!);
    } finally {
      this.#inStep = false;
    }
  }

  #inStep = false;

  #stepOne(input: Input): void {
    const before = this.#state;
    const r = step(before, input);
    this.#state = r.state;
    this.#options.onStep?.(input, r.effects, r.state);
    this.#interpret(r.effects);
    if (r.state.term !== before.term) { for (const op of this.#receiver.termChanged(r.state.term)) this.#storeOp(op); }
    if (this.#senders.size > 0) this.#pruneSenders();
  }

  #interpret(effects: readonly RaftEffect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case "Persist":
          // A Persist with nothing to write only orders its `after` behind earlier writes.
          if (e.entries.length > 0 || e.hardState !== undefined || e.truncateFrom !== undefined) {
            this.#unit().stages.at(-1)!.batch.add(e);
          }
          if (e.entries.length > 0) this.#unit().last = e.entries[e.entries.length - 1];
          for (const d of e.after) this.#unit().after.push(d);
          break;
        case "Compact": {
          const unit = this.#unit();
          const stage = unit.stages.at(-1)!;
          stage.compactTo = Math.max(stage.compactTo, e.index);
          unit.stages.push({ batch: new BatchBuilder(), compactTo: 0 });
          break;
        }
        case "Send":
        case "SendSnapshot":
          this.#deferred(e);
          break;
        case "Apply":
          for (const entry of e.entries) this.#applies.push(entry);
          break;
        case "SetTimer":
          this.#timers.set(e.timer, e.ms);
          break;
        case "Proposed":
          this.#parked.delete(e.requestId);
          if (this.#options.onObserve && this.#requests.has(e.requestId)) {
            this.#observe({ type: "appended", requestId: e.requestId, index: e.index, term: e.term });
          }
          this.#requests.proposed(e.requestId, e.index, e.term, this.#appliedIndex);
          break;
        case "Reject":
          this.#rejected(e.requestId, e.reason, e.leader);
          break;
        case "ReadReady":
          this.#parked.delete(e.requestId);
          this.#requests.readReady(e.requestId, e.index, this.#appliedIndex);
          break;
        case "TransferDone":
          if (e.ok) this.#requests.succeed(e.requestId, undefined);
          else this.#requests.fail(e.requestId, new RaftRejected("timeout", leaderOf(this.#state)));
          break;
        case "TakeSnapshot":
          this.#due(e.index);
          break;
        case "SnapshotAck":
          this.#snapshotAck(e);
          break;
        case "ReceiveSnapshotChunk":
          for (const op of this.#receiver.chunk(e, this.#state.term)) {
            if (op.op === "begin") {
              this.#receivingSince = this.#now;
              this.#observe({ type: "snapshotReceiving", from: e.from, index: op.meta.index });
            }
            this.#storeOp(op);
          }
          break;
        case "RoundAcked":
          this.#measure(e.from, e.seq);
          break;
        case "RoleChanged":
          this.#noteTerm(e.term);
          this.#emit({ type: "role", role: e.role, term: e.term });
          break;
        case "LeaderChanged":
          this.#noteTerm(e.term);
          // Answers owed by the previous leader will not come: fail them now, not at the timeout.
          if (e.leader !== this.#options.config.id) {
            for (const id of this.#requests.leaderLost(this.#now)) {
              this.#parked.set(id, { type: "ReadIndex", requestId: id, now: this.#now });
            }
          }
          this.#emit({ type: "leader", leader: e.leader, term: e.term });
          if (e.leader !== undefined) this.#resubmitParked();
          break;
        case "Committed":
          this.#emit({ type: "commit", index: e.index });
          this.#resubmitQueued();
          break;
        case "MembershipChanged":
          this.#noteMembership(e.membership, e.index);
          break;
      }
    }
    this.#noteTerm(this.#state.term);
  }

  #unit(): OpenUnit {
    return this.#open ??= { stages: [{ batch: new BatchBuilder(), compactTo: 0 }], after: [], last: undefined };
  }

  /** A Send or SendSnapshot that may go now (at once, or its write just became durable). */
  #deferred(e: DeferredEffect): void {
    if (e.type === "SendSnapshot") return this.#startStream(e.to, e.term, e.meta);
    const m = e.message;
    if (m.type === "AppendEntries" && !this.#seqSentAt.has(m.seq)) {
      this.#seqSentAt.set(m.seq, this.#now);
      if (this.#seqSentAt.size > SEQ_MEMORY) this.#seqSentAt.delete(this.#seqSentAt.keys().next().value!);
    }
    this.#sends.push(m);
  }

  #rejected(requestId: number, reason: RaftRejected["reason"], leader: NodeId | undefined): void {
    const kind = this.#requests.kindOf(requestId);
    if (!this.#requests.rejected(requestId, reason, leader, this.#now)) {
      if (kind !== undefined) this.#observe({ type: "refused", kind, reason });
      return void this.#parked.delete(requestId);
    }
    // Parked for want of a leader: remember what to resubmit (the proposal, or the read).
    if (!this.#parked.has(requestId)) {
      const proposal = this.#stepping.get(requestId);
      this.#parked.set(requestId, proposal ?? { type: "ReadIndex", requestId, now: this.#now });
    }
  }

  /** Membership changes that waited their turn ask again (a commit may have ended the change in flight). */
  #resubmitQueued(): void {
    if (this.#confChanges.size === 0) return;
    for (const id of this.#requests.unqueue()) {
      const change = this.#confChanges.get(id);
      if (change) this.#step({ type: "ProposeConfChange", requestId: id, change });
    }
  }

  /** Inputs to step once the current step's effects are carried out (never inside a step). */
  #later: Input[] = [];

  #resubmitParked(): void {
    const ids = this.#requests.unpark();
    if (ids.length === 0) return;
    for (const id of ids) {
      const what = this.#parked.get(id);
      this.#parked.delete(id);
      if (what === undefined) continue;
      if ("data" in what) this.#proposals.push(what);
      else this.#step({ ...what, now: this.#now } as Input);
    }
  }

  // ---------------------------------------------------------------------------
  // Snapshot streams (leader) and reception (follower)

  #startStream(to: NodeId, term: Term, meta: SnapshotMeta): void {
    const latest = this.#latest;
    if (!latest || latest.meta.index !== meta.index || latest.meta.term !== meta.term) {
      this.#warn(`snapshot ${meta.index}@${meta.term} for ${to} is not the latest stored`);
      return;
    }
    const current = this.#senders.get(to) ?? this.#paused.get(to);
    this.#paused.delete(to);
    const resumed = current !== undefined && current.options.term === term && current.options.meta.index === meta.index;
    this.#observe({ type: "snapshotSending", to, index: meta.index, bytes: latest.size, resumed });
    if (current && resumed) {
      current.resume(this.#now);
      this.#senders.set(to, current);
    } else {
      this.#sendingSince.set(to, this.#now);
      const o = this.#options;
      const sender = new SnapshotSender({
        to,
        term,
        meta,
        size: latest.size,
        chunkBytes: o.snapshotChunkBytes ?? o.config.maxMessageBytes,
        window: o.snapshotWindow ?? SNAPSHOT_WINDOW,
        idleMs: o.config.electionTimeoutMs,
        maxIdle: SNAPSHOT_MAX_IDLE,
      }, this.#now);
      this.#streamChecksums.set(sender, latest.checksum);
      this.#senders.set(to, sender);
    }
    this.#pump(this.#senders.get(to)!);
  }

  #pump(sender: SnapshotSender): void {
    const { to, term, meta } = sender.options;
    const header = { group: this.#options.config.group, from: this.#options.config.id, to, term };
    // The checksum of the snapshot this stream sends: a newer one may have been stored meanwhile.
    const checksum = this.#streamChecksums.get(sender)!;
    for (const chunk of sender.pump()) this.#chunks.push({ header, meta, chunk, checksum });
  }

  #snapshotAck(e: Extract<RaftEffect, { type: "SnapshotAck" }>): void {
    const sender = this.#senders.get(e.from);
    if (!sender || sender.options.meta.index !== e.index || sender.options.term !== e.term) return;
    sender.answer(e.offset, e.success, e.done, this.#now);
    if (e.done) {
      this.#senders.delete(e.from);
      const since = this.#sendingSince.get(e.from) ?? this.#now;
      this.#sendingSince.delete(e.from);
      const { index } = sender.options.meta;
      this.#observe({ type: "snapshotSent", to: e.from, index, bytes: sender.options.size, ms: this.#now - since });
    } else this.#pump(sender);
  }

  /**
   * Streams pause with the core's snapshot state for that follower, and end
   * with the leadership or the term. A paused stream is kept: if the core
   * asks for the same snapshot again (the transfer only looked lost), it
   * resumes from what the follower confirmed instead of starting over.
   */
  #pruneSenders(): void {
    const role = this.#state.role;
    for (const [to, sender] of this.#senders) {
      const pr = role.kind === "leader" ? role.progress.get(to) : undefined;
      if (this.#state.term !== sender.options.term || role.kind !== "leader") this.#paused.delete(to);
      else if (pr?.state !== "snapshot") this.#paused.set(to, sender);
      else continue;
      this.#senders.delete(to);
    }
  }

  /** Streams the core stopped (a follower that looked unreachable), kept to resume. */
  readonly #paused = new Map<NodeId, SnapshotSender>();

  /** The checksum of the snapshot each stream sends (the latest stored when it began). */
  readonly #streamChecksums = new WeakMap<SnapshotSender, number>();

  /** When each stream (resumes included) began, and when the snapshot being received began (observability). */
  readonly #sendingSince = new Map<NodeId, number>();
  #receivingSince = 0;

  #storeOp(op: ReceiverOp): void {
    if (op.op !== "answer") return void this.#receive.push(op);
    this.#answerAfterWrites(this.#snapshotAnswer(op.to, op.term, op.index, op.offset, op.success));
  }

  /**
   * A snapshot answer leaves behind every write so far, a term adopted from
   * the chunk's sender included (ordering rule 1: a node persists its term
   * before it answers, paper §5.1 / Figure 2), and behind the store
   * operations queued before it: it rides the open write unit, released once
   * that unit is durable, into a later {@link take} than the one that carries
   * those operations.
   */
  #answerAfterWrites(message: Message): void {
    this.#unit().after.push({ type: "Send", message });
  }

  #snapshotAnswer(to: NodeId, term: Term, index: Index, offset: number, success: boolean): Message {
    return {
      group: this.#options.config.group,
      from: this.#options.config.id,
      to,
      term,
      type: "InstallSnapshotResponse",
      index,
      offset,
      done: false,
      success,
    };
  }

  // ---------------------------------------------------------------------------
  // Observability

  #emit(event: RaftEvent): void {
    this.#options.onEvent?.(event);
  }

  #observe(observation: Observation): void {
    this.#options.onObserve?.(observation);
  }

  #warn(message: string): void {
    this.#emit({ type: "warning", message });
  }

  #noteTerm(term: Term): void {
    if (term <= this.#lastTerm) return;
    this.#lastTerm = term;
    this.#emit({ type: "term", term });
  }

  #noteMembership(membership: Membership, index: Index): void {
    const members = new Set(allMembers(membership));
    this.#emit({ type: "membership", membership, index });
    for (const id of members) if (!this.#lastMembers.has(id)) this.#emit({ type: "peerAdded", peer: id });
    for (const id of this.#lastMembers) if (!members.has(id)) this.#emit({ type: "peerRemoved", peer: id });
    this.#lastMembers = members;
  }

  /** Heartbeat round trips (the core reports each round's first acknowledgement): warn when one nears the election timeout. */
  #measure(from: NodeId, seq: number): void {
    const sent = this.#seqSentAt.get(seq);
    if (sent === undefined) return;
    const rtt = this.#now - sent;
    this.#observe({ type: "roundTrip", peer: from, ms: rtt });
    const election = this.#options.config.electionTimeoutMs;
    if (rtt < election / 2) return;
    const last = this.#lastWarning.get(from) ?? -Infinity;
    if (this.#now - last < election) return;
    this.#lastWarning.set(from, this.#now);
    this.#emit({
      type: "warning",
      message: `heartbeat round trip to ${from} took ${rtt} ms (election timeout ${election} ms)`,
      peer: from,
      roundTripMs: rtt,
    });
  }

  #progressCache:
    | { progress: ReadonlyMap<NodeId, Progress>; membership: Membership; view: ReadonlyMap<NodeId, PeerProgress> }
    | undefined = undefined;

  /** The status' view of the leader's progress; reused while the core's map and the membership are unchanged. */
  #progressOf(progress: ReadonlyMap<NodeId, Progress>, membership: Membership): ReadonlyMap<NodeId, PeerProgress> {
    const cached = this.#progressCache;
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
    this.#progressCache = { progress, membership, view };
    return view;
  }
}

/** A chunk, as the receiver sees the core's effect. */
export type { ReceivedChunk };
