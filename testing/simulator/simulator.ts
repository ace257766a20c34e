/**
 * A deterministic simulator of a plank cluster: the interpreter of the pure
 * core that tests swap in for the real one. N nodes run `step` against a
 * virtual clock, one seeded PRNG and a single priority queue of events
 * (timer firings, message deliveries, disk-write completions, client
 * operations, faults) ordered by (time, sequence number), so a run is
 * exactly reproducible from its seed.
 *
 * Effects are carried out as DESIGN.md's ordering rules say: a `Persist`
 * completes after a small random disk latency (a node's writes complete in
 * order) and is then reported with `Persisted`; a `Send` waits until every
 * earlier `Persist` of its node is durable, except a leader's AppendEntries
 * (thesis §10.2.1); `SetTimer` replaces the pending timer of its kind;
 * `Apply` feeds a key-value state machine in log order. The network drops,
 * delays, duplicates and partitions; a crash loses every write not yet
 * complete and every send still held behind one.
 *
 * Safety properties are checked after every step (see invariants.ts);
 * client histories are checked for linearizability at the end.
 *
 * @module
 */

import { makeConfig, type RaftConfig } from "../../core/config.ts";
import { entryAt, termAt } from "../../core/log.ts";
import { allMembers, emptyMembership, membershipOf } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import { start, step } from "../../core/step.ts";
import type {
  ConfChange,
  Entry,
  HardState,
  Index,
  Input,
  Membership,
  Message,
  NodeId,
  RaftEffect,
  SnapshotMeta,
  Term,
  TimerKind,
} from "../../core/types.ts";
import {
  checkOperations,
  type CheckResult,
  HistoryRecorder,
  type KvInput,
  kvModel,
  type KvOutput,
  type Operation,
} from "../linearizability.ts";
import { EventQueue } from "../../effects/driver/event_queue.ts";
import { defaultFaults, type FaultOptions, Nemesis, type SimControl } from "./nemesis.ts";
import { type Fail, InvariantChecker, InvariantViolation } from "./invariants.ts";
import { decodeCommand, encodeCommand, type KvCommand, KvMachine, type StoredSnapshot } from "./kv_machine.ts";
import { Prng } from "./prng.ts";
import { Trace } from "./trace.ts";

/** How to build a simulated cluster. */
export interface SimulatorOptions {
  /** Seed of every random choice in the run. */
  readonly seed: number;
  /** Number of nodes, 1–7, named n1…nN. */
  readonly nodes: number;
  /**
   * How many of the nodes (n1…nK) form the initial voter set (default all).
   * The others start with an empty membership, ready to be added with
   * {@link Simulator.proposeConfChange}.
   */
  readonly voters?: number;
  /** Fault injection: `true` for {@link defaultFaults}, `false` (default) for a perfect network, or overrides. */
  readonly faults?: boolean | Partial<FaultOptions>;
  /**
   * How far apart the nodes' clocks run: each node's clock advances at a rate
   * drawn from [1, 1 + clockSpread) of virtual time, and starts at a random
   * offset. Timers and the clock readings on `Timeout`/`ReadIndex` inputs are
   * the node's own. Default 0 (perfect clocks). Lease reads are safe only while
   * this stays within the core's `clockDrift`.
   */
  readonly clockSpread?: number;
  /** Exact clock rates of n1…nN (instead of drawing them from `clockSpread`), for tests of one schedule. */
  readonly clockRates?: readonly number[];
  /** Concurrent clients issuing random operations (default 3; 0 for none). */
  readonly clients?: number;
  /** Number of distinct keys the clients use (default 3). */
  readonly keys?: number;
  /** Base election timeout of every node (default 200 ms of virtual time). */
  readonly electionTimeoutMs?: number;
  /** Leader heartbeat interval (default 40 ms). */
  readonly heartbeatMs?: number;
  /** Shortest network latency (default 1 ms). */
  readonly minLatencyMs?: number;
  /** Longest ordinary network latency (default 10 ms). */
  readonly maxLatencyMs?: number;
  /** Shortest disk-write latency (default 1 ms). */
  readonly minDiskMs?: number;
  /** Longest disk-write latency (default 6 ms). */
  readonly maxDiskMs?: number;
  /** How long a client waits for an answer before giving up (default 10 election timeouts). */
  readonly clientTimeoutMs?: number;
  /** Further core settings for every node (e.g. `snapshotEvery`, `keepAfterSnapshot`). */
  readonly raft?: Partial<Omit<RaftConfig, "id" | "seed" | "electionTimeoutMs" | "heartbeatMs">>;
  /** Largest InstallSnapshot chunk in bytes (default 48: most snapshots take several chunks). */
  readonly snapshotChunkBytes?: number;
  /** Trace records kept for failure messages (default 60). */
  readonly traceLines?: number;
  /** Receives every trace line as it happens (slow; for `--trace`). */
  readonly onTrace?: (line: string) => void;
  /** The command that reproduces this run, quoted in failure messages. */
  readonly reproduce?: string;
}

/** A client operation as the simulator tracks it (read-only for callers). */
export interface SimOperation {
  /** Issuing client (-1 for operations started through the Simulator's methods). */
  readonly client: number;
  /** The key-value operation, or undefined for the liveness probe. */
  readonly input: KvInput | undefined;
  /** Node the operation was sent to. */
  readonly node: NodeId;
  /** `pending` until answered; `ok` with `output`; `failed` when refused or overwritten; `unknown` when timed out or the node crashed. */
  readonly status: "pending" | "ok" | "failed" | "unknown";
  /** The answer, when `ok`. */
  readonly output: KvOutput | undefined;
}

interface ClientOp {
  client: number;
  recordId: number | undefined;
  opId: number;
  input: KvInput | undefined;
  command: KvCommand | undefined;
  node: SimNode;
  incarnation: number;
  requestId: number;
  index: Index;
  term: Term;
  status: "pending" | "ok" | "failed" | "unknown";
  output: KvOutput | undefined;
}

interface Storage {
  hard: HardState | undefined;
  entries: Entry[];
  snapshot: StoredSnapshot | undefined;
}

interface SimNode {
  readonly id: NodeId;
  up: boolean;
  incarnation: number;
  state: RaftState;
  kv: KvMachine;
  readonly storage: Storage;
  writesIssued: number;
  /** Number (1-based) of the latest write carrying a hard state; a leader's appends wait for it. */
  hardWrite: number;
  writesDone: number;
  lastWriteAt: number;
  held: { after: number; message: Message }[];
  readonly timerGeneration: Record<TimerKind, number>;
  commitSeen: Index;
  readonly ops: Map<number, ClientOp>;
  readonly waitingProposals: Map<Index, ClientOp[]>;
  waitingReads: ClientOp[];
  partition: number;
  disk: readonly [number, number] | undefined;
  /** Snapshot streams this node (as leader) has in progress, by follower. */
  readonly sending: Map<NodeId, SnapshotSend>;
  /** The snapshot this node is receiving, if any (lost in a crash). */
  receiving: SnapshotReceive | undefined;
  /** How fast this node's clock runs, relative to virtual time. */
  readonly rate: number;
  /** This node's clock reading at virtual time 0. */
  readonly clockOffset: number;
}

/** One snapshot being streamed to a follower in chunks, with a bounded window (as the runtime does). */
interface SnapshotSend {
  readonly term: Term;
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
  /** Offset the follower confirmed. */
  acked: number;
  /** Next offset to send. */
  sent: number;
  /** Offset last resumed from after a gap report (-1: none), so one loss is resent once... */
  resumedAt: number;
  /** ...unless the resent chunks were lost too: a report of the same gap this much later resumes again. */
  resumedTime: number;
  /** The last chunk (done) went out; nothing more to send unless the follower asks to resume. */
  finished: boolean;
}

/** A partially received snapshot: chunks must arrive in order from one leader's term. */
interface SnapshotReceive {
  readonly from: NodeId;
  readonly term: Term;
  readonly meta: SnapshotMeta;
  readonly chunks: Uint8Array[];
  expected: number;
}

/** Chunks in flight beyond the acknowledged offset. */
const SNAPSHOT_WINDOW = 4;

type Write =
  | { readonly kind: "persist"; readonly effect: Extract<RaftEffect, { type: "Persist" }> }
  | { readonly kind: "compact"; readonly index: Index };

type SimEvent =
  | { kind: "deliver"; time: number; seq: number; from: SimNode; message: Message }
  | { kind: "timer"; time: number; seq: number; node: SimNode; incarnation: number; timer: TimerKind; gen: number }
  | { kind: "write"; time: number; seq: number; node: SimNode; incarnation: number; write: Write }
  | { kind: "client"; time: number; seq: number; client: number }
  | { kind: "clientTimeout"; time: number; seq: number; op: ClientOp }
  | { kind: "fault"; time: number; seq: number }
  | { kind: "restart"; time: number; seq: number; node: SimNode }
  | { kind: "action"; time: number; seq: number; action: () => void };

/** Counters describing a finished (or running) simulation. */
export interface SimulationStats {
  /** Events that did something (stale timers and lost writes are not counted). */
  readonly steps: number;
  /** Virtual time elapsed, in ms. */
  readonly virtualTimeMs: number;
  /** Distinct terms that had a leader. */
  readonly leaderTerms: number;
  /** Highest index committed anywhere. */
  readonly committed: Index;
  /** Crashes injected. */
  readonly crashes: number;
  /** Partitions injected. */
  readonly partitions: number;
  /** Client operations issued. */
  readonly operations: number;
  /** Client operations answered. */
  readonly completed: number;
}

/** A simulated cluster. Drive it with the run methods; inspect it with the accessors. */
export class Simulator {
  /** The options the simulator was built with. */
  readonly options: SimulatorOptions;
  /** Node ids, n1…nN. */
  readonly nodeIds: readonly NodeId[];
  /** Results of leadership transfers started with {@link transferLeadership}, by request id. */
  readonly transfers: Map<number, boolean> = new Map();

  readonly #rng: Prng;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<NodeId, SimNode>();
  readonly #faults: FaultOptions;
  readonly #nemesis: Nemesis;
  readonly #membership: Membership;
  readonly #trace: Trace;
  readonly #checker: InvariantChecker;
  readonly #recorder: HistoryRecorder<KvInput, KvOutput>;
  readonly #recorded: ClientOp[] = [];
  /** Operation ids some state machine has applied: the ground truth for unanswered writes. */
  readonly #appliedOps = new Set<number>();
  readonly #leaderTerms = new Set<Term>();
  readonly #electionMs: number;
  readonly #heartbeatMs: number;
  #now = 0;
  #steps = 0;
  #faultsOn: boolean;
  #clientsOn: boolean;
  #nextRequestId = 1;
  #nextOpId = 1;
  #nextValue = 1;
  #crashes = 0;
  #partitions = 0;
  #completed = 0;
  #clockTick = 0;
  #clockAt = -1;

  /** Builds the cluster, starts every node from empty storage and schedules clients and faults. */
  constructor(options: SimulatorOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
      throw new RangeError(`nodes must be 1–7, got ${options.nodes}`);
    }
    const voters = options.voters ?? options.nodes;
    if (!Number.isInteger(voters) || voters < 1 || voters > options.nodes) {
      throw new RangeError(`voters must be 1–${options.nodes}, got ${voters}`);
    }
    this.options = options;
    this.#rng = new Prng(options.seed);
    this.#electionMs = options.electionTimeoutMs ?? 200;
    this.#heartbeatMs = options.heartbeatMs ?? 40;
    const faults = options.faults ?? false;
    this.#faults = faults === false ? defaultFaults : { ...defaultFaults, ...(faults === true ? {} : faults) };
    this.#faultsOn = faults !== false;
    this.#clientsOn = (options.clients ?? 3) > 0;
    this.#trace = new Trace(options.traceLines ?? 60, options.onTrace);
    this.#checker = new InvariantChecker(this.#fail);
    // Virtual timestamps, strictly increasing within a millisecond so that the
    // order of events is kept (the checker treats equal times as overlapping).
    this.#recorder = new HistoryRecorder((): number => {
      if (this.#clockAt !== this.#now) {
        this.#clockAt = this.#now;
        this.#clockTick = 0;
      }
      return this.#now + Math.min(this.#clockTick++, 4095) / 4096;
    });
    const ids: NodeId[] = [];
    for (let i = 1; i <= options.nodes; i++) ids.push(`n${i}`);
    this.nodeIds = ids;
    this.#membership = membershipOf(ids.slice(0, options.voters ?? ids.length));
    this.#nemesis = new Nemesis(this.#faults, this.#rng, this.#control());
    const spread = options.clockSpread ?? 0;
    if (!(spread >= 0)) throw new RangeError(`clockSpread must be >= 0, got ${spread}`);
    for (const [i, id] of ids.entries()) {
      const drawn = spread > 0 ? 1 + this.#rng.next() * spread : 1;
      const rate = options.clockRates?.[i] ?? drawn;
      if (!(rate > 0)) throw new RangeError(`clock rate of ${id} must be > 0, got ${rate}`);
      const clockOffset = spread > 0 || options.clockRates ? this.#rng.int(0, 1_000_000) : 0;
      const result = start(this.#config(id), { membership: this.#bootstrap(id) });
      const node: SimNode = {
        id,
        up: true,
        incarnation: 0,
        state: result.state,
        kv: new KvMachine(),
        storage: { hard: undefined, entries: [], snapshot: undefined },
        writesIssued: 0,
        hardWrite: 0,
        writesDone: 0,
        lastWriteAt: 0,
        held: [],
        timerGeneration: { election: 0, heartbeat: 0, quorum: 0, transfer: 0 },
        commitSeen: result.state.commit,
        ops: new Map(),
        waitingProposals: new Map(),
        waitingReads: [],
        partition: 0,
        disk: undefined,
        sending: new Map(),
        receiving: undefined,
        rate,
        clockOffset,
      };
      this.#nodes.push(node);
      this.#byId.set(id, node);
      this.#afterStart(node, result.effects);
    }
    for (let c = 0; c < (options.clients ?? 3); c++) {
      this.#schedule({ kind: "client", time: this.#rng.int(0, 50), seq: 0, client: c });
    }
    if (this.#faultsOn) this.#scheduleFault();
  }

  // -------------------------------------------------------------------------
  // Accessors

  /** Current virtual time, in ms. */
  get now(): number {
    return this.#now;
  }

  /** Events processed so far. */
  get steps(): number {
    return this.#steps;
  }

  /** The core state of node `id` (its last state before a crash while it is down). */
  state(id: NodeId): RaftState {
    return this.#node(id).state;
  }

  /** Whether node `id` is running. */
  isUp(id: NodeId): boolean {
    return this.#node(id).up;
  }

  /** The key-value contents of node `id`'s state machine. */
  values(id: NodeId): ReadonlyMap<string, string> {
    return this.#node(id).kv.values;
  }

  /** Index applied by node `id`'s state machine. */
  appliedIndex(id: NodeId): Index {
    return this.#node(id).kv.applied;
  }

  /** Running nodes that consider themselves leader. */
  leaders(): NodeId[] {
    return this.#nodes.filter((n) => n.up && n.state.role.kind === "leader").map((n) => n.id);
  }

  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: SimNode | undefined;
    for (const n of this.#nodes) {
      if (n.up && n.state.role.kind === "leader" && (!best || n.state.term > best.state.term)) best = n;
    }
    return best?.id;
  }

  /** The trace lines kept so far, rendered. */
  traceLines(): string[] {
    return this.#trace.lines();
  }

  /** Counters for reports. */
  stats(): SimulationStats {
    return {
      steps: this.#steps,
      virtualTimeMs: this.#now,
      leaderTerms: this.#leaderTerms.size,
      committed: Math.max(0, this.#checker.committedIndex),
      crashes: this.#crashes,
      partitions: this.#partitions,
      operations: this.#recorded.length,
      completed: this.#completed,
    };
  }

  // -------------------------------------------------------------------------
  // Driving the run

  /** Processes events until `n` of them did something. Returns the virtual time reached. */
  runSteps(n: number): number {
    const target = this.#steps + n;
    while (this.#steps < target && this.#processNext()) { /* keep going */ }
    return this.#now;
  }

  /** Processes every event up to `ms` of virtual time from now. */
  runFor(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const next = this.#queue.peek();
      if (!next || next.time > until) break;
      this.#processNext();
    }
    this.#now = Math.max(this.#now, until);
  }

  /** Runs until `done()` holds (checked after every event) or `maxMs` pass. Returns whether it held. */
  runUntil(done: () => boolean, maxMs: number): boolean {
    const until = this.#now + maxMs;
    while (!done()) {
      const next = this.#queue.peek();
      if (!next || next.time > until) return false;
      this.#processNext();
    }
    return true;
  }

  /** Turns fault injection (drops, duplicates, long delays, fault events) on or off. */
  setFaults(on: boolean): void {
    if (on && !this.#faultsOn) this.#scheduleFault();
    this.#faultsOn = on;
  }

  /** Stops the clients from issuing new operations (outstanding ones still finish). */
  stopClients(): void {
    this.#clientsOn = false;
  }

  /** Splits the network: nodes in different groups cannot talk; unlisted nodes are isolated. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    let group = 1;
    for (const n of this.#nodes) n.partition = -1 - this.#nodes.indexOf(n);
    for (const g of groups) {
      for (const id of g) this.#node(id).partition = group;
      group++;
    }
    this.#partitions++;
    this.#note("*", `partition ${this.#describePartition()}`);
  }

  /** Sets node `id`'s disk-write latency range (a slow disk), overriding the cluster's. */
  setDiskLatency(id: NodeId, minMs: number, maxMs: number): void {
    this.#node(id).disk = [minMs, maxMs];
  }

  /** Entries durable in node `id`'s storage (as of its last completed write). */
  durableEntries(id: NodeId): readonly Entry[] {
    return this.#node(id).storage.entries;
  }

  /** Heals every partition. */
  heal(): void {
    for (const n of this.#nodes) n.partition = 0;
    this.#note("*", "heal");
  }

  /** Crashes node `id`: pending writes, held sends and in-flight client operations are lost. */
  crash(id: NodeId): void {
    const node = this.#node(id);
    if (!node.up) return;
    this.#crashes++;
    node.up = false;
    node.incarnation++;
    node.held = [];
    node.writesIssued = 0;
    node.hardWrite = 0;
    node.writesDone = 0;
    for (const op of node.ops.values()) this.#unknownOp(op);
    node.ops.clear();
    node.waitingProposals.clear();
    node.waitingReads = [];
    node.sending.clear();
    node.receiving = undefined;
    this.#note(
      id,
      `crash (durable: ${node.storage.entries.length} entries, snapshot ${node.storage.snapshot?.meta.index ?? "-"})`,
    );
  }

  /** Restarts node `id` from its durable storage via `start`. */
  restart(id: NodeId): void {
    const node = this.#node(id);
    if (node.up) return;
    const storage = node.storage;
    const snapshot = storage.snapshot;
    if (snapshot && storage.entries.length > 0) {
      // A log that stops short of the snapshot, or disagrees with it there, is
      // discarded on open (as `start` does); drop it from storage too, so that
      // appends after the snapshot continue the stored log.
      const last = storage.entries[storage.entries.length - 1]!;
      const covering = storage.entries.find((e) => e.index === snapshot.meta.index);
      if (last.index < snapshot.meta.index || (covering !== undefined && covering.term !== snapshot.meta.term)) {
        storage.entries = [];
      }
    }
    const result = start(this.#config(id), {
      membership: this.#bootstrap(id),
      hardState: storage.hard,
      entries: storage.entries.slice(),
      snapshot: snapshot?.meta,
    });
    node.up = true;
    node.state = result.state;
    node.kv = snapshot ? KvMachine.restore(snapshot.data, snapshot.meta.index) : new KvMachine();
    node.commitSeen = result.state.commit;
    node.lastWriteAt = this.#now;
    this.#note(
      id,
      `restart (term ${result.state.term}, log ${result.state.log.offset + 1}..${
        result.state.log.offset + result.state.log.length
      }, commit ${result.state.commit})`,
    );
    this.#afterStart(node, result.effects);
  }

  /** A client write through node `id` (recorded in the history as client -1). */
  put(id: NodeId, key: string, value: string): SimOperation {
    return view(this.#issue(-1, this.#node(id), { op: "put", key, value }));
  }

  /** A compare-and-set through node `id`. */
  cas(id: NodeId, key: string, prev: string | undefined, value: string): SimOperation {
    return view(this.#issue(-1, this.#node(id), { op: "cas", key, prev, value }));
  }

  /** A linearizable read (ReadIndex) through node `id`. */
  get(id: NodeId, key: string): SimOperation {
    return view(this.#issue(-1, this.#node(id), { op: "get", key }));
  }

  /** Asks node `id` to transfer leadership to `to`; the outcome lands in {@link transfers}. */
  transferLeadership(id: NodeId, to: NodeId): number {
    const requestId = this.#nextRequestId++;
    const node = this.#node(id);
    if (node.up) this.#input(node, { type: "TransferLeadership", requestId, to });
    return requestId;
  }

  /** Proposes a membership change on node `id`; returns the request id. */
  proposeConfChange(id: NodeId, change: ConfChange): number {
    const requestId = this.#nextRequestId++;
    const node = this.#node(id);
    if (node.up) this.#input(node, { type: "ProposeConfChange", requestId, change });
    return requestId;
  }

  /**
   * The liveness check: stop faults and clients, heal the network, restart
   * every node, then within 20 election timeouts exactly one leader must
   * emerge and a proposal to it must be applied by every member of its
   * configuration, voters and learners alike (a follower left behind for good
   * — a snapshot never resent, a learner never caught up — is a liveness bug
   * too). Throws {@link InvariantViolation} ("liveness") otherwise.
   */
  checkLiveness(): void {
    this.#faultsOn = false;
    this.#clientsOn = false;
    this.heal();
    for (const n of this.#nodes) if (!n.up) this.restart(n.id);
    // A slow catch-up (one entry per message, a window of one) is not a liveness
    // failure: the deadline moves while some member's state machine advances, up
    // to a hard limit. Only a cluster that stops making progress fails.
    const window = 20 * this.#electionMs;
    const limit = this.#now + 10 * window;
    let deadline = this.#now + window;
    let progress = this.#appliedSum();
    const opId = this.#nextOpId++;
    let probe: ClientOp | undefined;
    for (;;) {
      const leaders = this.leaders();
      if (leaders.length === 1) {
        const leader = this.#node(leaders[0]!);
        const members = allMembers(currentMembership(leader.state));
        if (members.every((id) => this.#byId.get(id)?.kv.results.has(opId))) return;
        const stale = probe === undefined || probe.node !== leader || probe.incarnation !== leader.incarnation ||
          probe.status === "failed" || probe.status === "unknown" ||
          (probe.term !== 0 && probe.term !== leader.state.term);
        if (stale) probe = this.#issue(-1, leader, undefined, { opId, op: "nop" });
      }
      const sum = this.#appliedSum();
      if (sum > progress) {
        progress = sum;
        deadline = Math.min(limit, this.#now + window);
      }
      const next = this.#queue.peek();
      if (!next || next.time > deadline) break;
      this.#processNext();
    }
    this.#fail(
      "liveness",
      `no single leader had a proposal applied by every member, and no state machine advanced for ${window}ms ` +
        `after faults stopped (leaders: ${this.leaders().join(",") || "none"}; ${this.#lagging(opId)})`,
    );
  }

  /** The sum of every node's applied index: it grows while the cluster makes progress. */
  #appliedSum(): number {
    let sum = 0;
    for (const n of this.#nodes) sum += n.kv.applied;
    return sum;
  }

  /**
   * The client history: answered operations with their results, unanswered
   * writes that some state machine applied as pending (`ret = Infinity`).
   * Unanswered reads, and writes no state machine ever applied, are left out:
   * they had no effect anyone could observe.
   */
  history(): Operation<KvInput, KvOutput>[] {
    for (const op of this.#recorded) {
      if (op.status === "ok" || op.recordId === undefined) continue;
      if (op.input?.op === "get" || !this.#appliedOps.has(op.opId)) {
        this.#recorder.discard(op.recordId);
        op.recordId = undefined;
      }
    }
    return this.#recorder.history();
  }

  /** Checks the client history for linearizability against the key-value model. */
  checkLinearizability(maxSteps = 5_000_000): CheckResult<KvInput, KvOutput> {
    const result = checkOperations(kvModel, this.history(), { maxSteps });
    if (result.result === "illegal") this.#fail("linearizability", `\n${result.explanation}`);
    return result;
  }

  /** Who has not applied the liveness probe, and where each member stands, for the failure message. */
  #lagging(opId: number): string {
    return this.#nodes.map((n) => {
      const done = n.kv.results.has(opId) ? "done" : "missing";
      return `${n.id} ${n.state.role.kind} t${n.state.term} applied ${n.kv.applied} ${done}`;
    }).join("; ");
  }

  // -------------------------------------------------------------------------
  // Events

  #node(id: NodeId): SimNode {
    const node = this.#byId.get(id);
    if (!node) throw new RangeError(`no node ${id}`);
    return node;
  }

  #config(id: NodeId): RaftConfig {
    return makeConfig({
      ...this.options.raft,
      id,
      electionTimeoutMs: this.#electionMs,
      heartbeatMs: this.#heartbeatMs,
      seed: this.#rng.int(1, 0x7fffffff),
    });
  }

  /** The membership a node starts with when its storage holds none: the initial voters know each other. */
  #bootstrap(id: NodeId): Membership {
    return this.#membership.voters.includes(id) ? this.#membership : emptyMembership;
  }

  #schedule(event: SimEvent): void {
    this.#queue.push(event);
  }

  #processNext(): boolean {
    const event = this.#queue.pop();
    if (!event) return false;
    this.#now = Math.max(this.#now, event.time);
    if (this.#handle(event)) this.#steps++;
    return true;
  }

  #handle(event: SimEvent): boolean {
    switch (event.kind) {
      case "deliver": {
        const to = this.#byId.get(event.message.to);
        if (!to || !to.up || to.partition !== event.from.partition) return false;
        const m = event.message;
        if (m.type === "InstallSnapshotResponse" && !m.done) this.#onChunkAnswer(to, m);
        this.#input(to, { type: "Receive", message: m });
        return true;
      }
      case "timer": {
        const node = event.node;
        if (!node.up || node.incarnation !== event.incarnation) return false;
        if (node.timerGeneration[event.timer] !== event.gen) return false;
        this.#input(node, { type: "Timeout", timer: event.timer, now: this.#clock(node) });
        return true;
      }
      case "write":
        return this.#completeWrite(event.node, event.incarnation, event.write);
      case "client":
        if (!this.#clientsOn) return false;
        this.#clientOperation(event.client);
        return true;
      case "clientTimeout":
        if (event.op.status !== "pending") return false;
        this.#unknownOp(event.op);
        return true;
      case "fault":
        if (!this.#faultsOn) return false;
        this.#nemesis.tick();
        this.#scheduleFault();
        return true;
      case "action":
        if (!this.#faultsOn) return false;
        event.action();
        return true;
      case "restart":
        if (event.node.up) return false;
        this.restart(event.node.id);
        return true;
    }
  }

  #scheduleFault(): void {
    const f = this.#faults;
    this.#schedule({ kind: "fault", time: this.#now + this.#rng.int(f.minIntervalMs, f.maxIntervalMs), seq: 0 });
  }

  /** What the nemesis sees of the cluster and may do to it. */
  #control(): SimControl {
    // deno-lint-ignore no-this-alias
    const sim = this;
    return {
      get now() {
        return sim.#now;
      },
      electionMs: this.#electionMs,
      nodeIds: this.nodeIds,
      isUp: (id) => this.isUp(id),
      leader: () => this.leader(),
      membership: (id) => currentMembership(this.#node(id).state),
      partition: (groups) => this.partition(groups),
      heal: () => this.heal(),
      crash: (id, downtimeMs) => {
        const node = this.#node(id);
        this.crash(id);
        this.#schedule({ kind: "restart", time: this.#now + downtimeMs, seq: 0, node });
      },
      restart: (id) => this.restart(id),
      transferLeadership: (from, to) => void this.transferLeadership(from, to),
      proposeConfChange: (on, change) => void this.proposeConfChange(on, change),
      after: (ms, action) => this.#schedule({ kind: "action", time: this.#now + ms, seq: 0, action }),
      note: (node, text) => this.#note(node, text),
    };
  }

  #describePartition(): string {
    const groups = new Map<number, NodeId[]>();
    for (const n of this.#nodes) {
      const g = groups.get(n.partition);
      if (g) g.push(n.id);
      else groups.set(n.partition, [n.id]);
    }
    return [...groups.values()].map((g) => `{${g.join(",")}}`).join(" ");
  }

  // -------------------------------------------------------------------------
  // Stepping a node and interpreting its effects

  #afterStart(node: SimNode, effects: readonly RaftEffect[]): void {
    const followUps: Input[] = [];
    for (const effect of effects) this.#effect(node, effect, followUps);
    this.#afterStep(node);
    for (const input of followUps) if (node.up) this.#input(node, input);
  }

  /** Steps `node` with `input`, interprets the effects, then steps any follow-up inputs they produced. */
  #input(node: SimNode, first: Input): void {
    const inputs: Input[] = [first];
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      this.#trace.add({ kind: "input", time: this.#now, node: node.id, value: input });
      const result = step(node.state, input);
      node.state = result.state;
      for (const effect of result.effects) this.#effect(node, effect, inputs);
      this.#afterStep(node);
    }
  }

  #afterStep(node: SimNode): void {
    const s = node.state;
    this.#trace.add({ kind: "state", time: this.#now, node: node.id, value: s });
    if (s.commit !== node.commitSeen) {
      this.#checker.onCommit(node.id, s.term, node.commitSeen, s.commit, s.log);
      node.commitSeen = s.commit;
    }
    if (s.applied > s.commit) this.#fail("apply after commit", `${node.id} applied ${s.applied} > commit ${s.commit}`);
  }

  /** Schedules a Persist's write to complete after a random disk latency, in order with the node's other writes. */
  #write(node: SimNode, effect: Extract<RaftEffect, { type: "Persist" }>): void {
    node.writesIssued++;
    if (effect.hardState) node.hardWrite = node.writesIssued;
    const [lo, hi] = node.disk ?? [this.options.minDiskMs ?? 1, this.options.maxDiskMs ?? 6];
    const at = Math.max(this.#now + this.#rng.int(lo, hi), node.lastWriteAt);
    node.lastWriteAt = at;
    this.#schedule({
      kind: "write",
      time: at,
      seq: 0,
      node,
      incarnation: node.incarnation,
      write: { kind: "persist", effect },
    });
  }

  /** Node `node`'s own clock reading now (see {@link SimulatorOptions.clockSpread}). */
  #clock(node: SimNode): number {
    return node.clockOffset + node.rate * this.#now;
  }

  #effect(node: SimNode, effect: RaftEffect, followUps: Input[]): void {
    if (effect.type !== "SetTimer") this.#trace.add({ kind: "effect", time: this.#now, node: node.id, value: effect });
    if (this.#faultsOn) this.#nemesis.observe(node.id, node.state.role.kind, effect);
    switch (effect.type) {
      case "Persist": {
        if (effect.entries.length > 0 || effect.hardState || effect.truncateFrom !== undefined) {
          this.#write(node, effect);
        }
        // What waited for the write follows it (the hold-back rule of Send keeps it behind).
        for (const after of effect.after) this.#effect(node, after, followUps);
        return;
      }
      case "SnapshotAck":
      case "RoundAcked":
        return;
      case "Send": {
        // Ordering rule 1: nothing outruns the disk, except a leader's appends, which
        // may overtake the writes of its entries (thesis §10.2.1) — but not the write
        // of its term: a crash could otherwise let the leader reuse that term with a
        // different log after its followers saw the first one (a one-voter cluster
        // wins and appends in the step that raises the term).
        const after = effect.message.type === "AppendEntries" ? node.hardWrite : node.writesIssued;
        if (node.writesDone >= after) this.#transmit(node, effect.message, followUps);
        else node.held.push({ after, message: effect.message });
        return;
      }
      case "Apply":
        for (const entry of effect.entries) this.#apply(node, entry);
        this.#serveReads(node);
        return;
      case "SetTimer": {
        const gen = ++node.timerGeneration[effect.timer];
        // The node's clock measures the wait: a fast clock fires early in virtual time.
        this.#schedule({
          kind: "timer",
          time: this.#now + Math.round(effect.ms / node.rate),
          seq: 0,
          node,
          incarnation: node.incarnation,
          timer: effect.timer,
          gen,
        });
        return;
      }
      case "Proposed":
        return this.#onProposed(node, effect.requestId, effect.index, effect.term);
      case "Reject": {
        const op = node.ops.get(effect.requestId);
        if (op) this.#failOp(op);
        return;
      }
      case "ReadReady": {
        const op = node.ops.get(effect.requestId);
        if (!op || op.index !== 0) return;
        op.index = effect.index;
        node.waitingReads.push(op);
        this.#serveReads(node);
        return;
      }
      case "TransferDone":
        this.transfers.set(effect.requestId, effect.ok);
        return;
      case "TakeSnapshot":
        return this.#takeSnapshot(node, followUps);
      case "SendSnapshot": {
        const snapshot = node.storage.snapshot;
        if (!snapshot || snapshot.meta.index !== effect.meta.index) {
          this.#note(node.id, `no stored snapshot ${effect.meta.index} to send`);
          return;
        }
        const current = node.sending.get(effect.to);
        if (current && current.term === effect.term && current.meta.index === snapshot.meta.index) {
          // The core asks again (a transfer that looked lost): resume from what the follower confirmed.
          current.sent = current.acked;
          current.resumedAt = -1;
          current.finished = false;
        } else {
          node.sending.set(effect.to, {
            term: effect.term,
            meta: snapshot.meta,
            data: snapshot.data,
            acked: 0,
            sent: 0,
            resumedAt: -1,
            resumedTime: 0,
            finished: false,
          });
        }
        this.#sendChunks(node, effect.to, followUps);
        return;
      }
      case "ReceiveSnapshotChunk":
        return this.#receiveChunk(node, effect, followUps);
      case "Compact": {
        node.writesIssued++;
        const at = Math.max(this.#now, node.lastWriteAt);
        node.lastWriteAt = at;
        this.#schedule({
          kind: "write",
          time: at,
          seq: 0,
          node,
          incarnation: node.incarnation,
          write: { kind: "compact", index: effect.index },
        });
        return;
      }
      case "RoleChanged":
        if (effect.role === "leader") {
          this.#leaderTerms.add(effect.term);
          this.#checker.onLeader(node.id, effect.term, node.state.log);
        }
        return;
      case "LeaderChanged":
      case "Committed":
      case "MembershipChanged":
        return;
    }
  }

  #transmit(from: SimNode, message: Message, followUps: Input[] | undefined): void {
    const to = this.#byId.get(message.to);
    if (!to || to === from) return;
    if (!to.up) {
      // A crashed peer refuses the connection: the transport reports it.
      followUps?.push({ type: "Unreachable", to: to.id });
      return;
    }
    const f = this.#faults;
    if (this.#faultsOn && this.#rng.chance(f.dropRate)) return;
    if (to.partition !== from.partition) return;
    this.#schedule({ kind: "deliver", time: this.#now + this.#latency(), seq: 0, from, message });
    if (this.#faultsOn && this.#rng.chance(f.duplicateRate)) {
      this.#schedule({ kind: "deliver", time: this.#now + this.#latency(), seq: 0, from, message });
    }
  }

  #latency(): number {
    let ms = this.#rng.int(this.options.minLatencyMs ?? 1, this.options.maxLatencyMs ?? 10);
    if (this.#faultsOn && this.#rng.chance(this.#faults.delayRate)) ms += this.#rng.int(0, this.#faults.longDelayMs);
    return ms;
  }

  #completeWrite(node: SimNode, incarnation: number, write: Write): boolean {
    if (!node.up || node.incarnation !== incarnation) return false; // Lost in the crash.
    const storage = node.storage;
    if (write.kind === "compact") {
      const first = storage.entries[0]?.index;
      if (first !== undefined && write.index >= first) storage.entries = storage.entries.slice(write.index - first + 1);
    } else {
      const { truncateFrom, entries, hardState } = write.effect;
      if (truncateFrom !== undefined) {
        const first = storage.entries[0]?.index;
        if (first !== undefined) {
          storage.entries.length = Math.min(storage.entries.length, Math.max(0, truncateFrom - first));
        }
      }
      if (entries.length > 0) {
        const last = storage.entries[storage.entries.length - 1];
        if (last && entries[0]!.index !== last.index + 1) {
          this.#fail(
            "storage contiguity",
            `${node.id} persisted ${entries[0]!.index}.. after durable entry ${last.index}`,
          );
        }
        // Log matching is checked on what became durable: entries a crash erased
        // before anyone stored them never existed as far as Raft is concerned.
        const snapshot = storage.snapshot?.meta;
        const prevTerm = last?.term ?? (snapshot?.index === entries[0]!.index - 1 ? snapshot.term : undefined);
        this.#checker.onAppend(node.id, entries, prevTerm);
        for (const e of entries) storage.entries.push(e);
      }
      if (hardState) storage.hard = hardState;
    }
    node.writesDone++;
    const followUps: Input[] = [];
    if (node.held.length > 0) {
      const still: { after: number; message: Message }[] = [];
      for (const h of node.held) {
        if (h.after <= node.writesDone) this.#transmit(node, h.message, followUps);
        else still.push(h);
      }
      node.held = still;
    }
    if (write.kind === "persist" && write.effect.entries.length > 0) {
      const last = write.effect.entries[write.effect.entries.length - 1]!;
      followUps.unshift({ type: "Persisted", index: last.index, term: last.term });
    }
    for (const input of followUps) if (node.up) this.#input(node, input);
    return true;
  }

  /** Fills the window of chunks to `to`; a stream whose term or leadership has passed is dropped (aborted). */
  #sendChunks(node: SimNode, to: NodeId, followUps: Input[] | undefined): void {
    const send = node.sending.get(to);
    if (!send) return;
    if (node.state.role.kind !== "leader" || node.state.term !== send.term) {
      node.sending.delete(to);
      return;
    }
    const size = send.data.length;
    const chunk = this.options.snapshotChunkBytes ?? 48;
    // A do-while so an empty snapshot still gets its one (empty, done) chunk; never resend it unasked.
    if (send.finished) return;
    do {
      if (send.sent > send.acked + (SNAPSHOT_WINDOW - 1) * chunk) return;
      const offset = send.sent;
      const end = Math.min(size, offset + chunk);
      this.#transmit(node, {
        group: node.state.config.group,
        from: node.id,
        to,
        term: send.term,
        type: "InstallSnapshot",
        meta: send.meta,
        offset,
        data: send.data.subarray(offset, end),
        done: end >= size,
      }, followUps);
      send.sent = end;
      send.finished = end >= size;
    } while (send.sent < size);
  }

  /** A follower acknowledged a chunk, or reported the offset it needs next after a gap. */
  #onChunkAnswer(node: SimNode, m: Extract<Message, { type: "InstallSnapshotResponse" }>): void {
    const send = node.sending.get(m.from);
    if (!send || send.meta.index !== m.index) return;
    if (m.offset > send.acked) send.acked = Math.min(m.offset, send.data.length);
    const again = m.offset !== send.resumedAt || this.#now - send.resumedTime > this.#electionMs / 2;
    if (!m.success && m.offset < send.sent && again) {
      this.#note(node.id, `snapshot to ${m.from}: resume from ${m.offset}`);
      send.sent = m.offset;
      send.resumedAt = m.offset;
      send.resumedTime = this.#now;
      send.finished = false;
    }
    this.#sendChunks(node, m.from, undefined);
  }

  /**
   * Stores a chunk: in order, from one leader in one term. A chunk of another
   * snapshot, leader or term aborts the partial one; any gap is answered with
   * the offset needed next (a resumption point), each accepted chunk with an
   * acknowledgement; the last one restores the state machine.
   */
  #receiveChunk(
    node: SimNode,
    effect: Extract<RaftEffect, { type: "ReceiveSnapshotChunk" }>,
    followUps: Input[],
  ): void {
    const meta = effect.meta;
    const term = node.state.term;
    let r = node.receiving;
    const same = r !== undefined && r.from === effect.from && r.term === term && r.meta.index === meta.index &&
      r.meta.term === meta.term;
    if (!same) {
      if (r) this.#note(node.id, `snapshot ${r.meta.index} from ${r.from}: abort partial (${r.expected} bytes)`);
      r = node.receiving = effect.offset === 0 ? { from: effect.from, term, meta, chunks: [], expected: 0 } : undefined;
    }
    const answer = (offset: number, success: boolean) =>
      this.#transmit(node, {
        group: node.state.config.group,
        from: node.id,
        to: effect.from,
        term,
        type: "InstallSnapshotResponse",
        index: meta.index,
        offset,
        done: false,
        success,
      }, followUps);
    if (!r) return answer(0, false);
    // An old duplicate is acknowledged; a chunk past a gap names the resumption point.
    if (effect.offset !== r.expected) return answer(r.expected, effect.offset < r.expected);
    r.chunks.push(effect.data);
    r.expected += effect.data.length;
    if (!effect.done) return answer(r.expected, true);
    node.receiving = undefined;
    const data = new Uint8Array(r.expected);
    let at = 0;
    for (const c of r.chunks) {
      data.set(c, at);
      at += c.length;
    }
    this.#checker.onRestore(node.id, meta.index, meta.term);
    node.kv = KvMachine.restore(data, meta.index);
    node.storage.snapshot = { meta, data };
    this.#afterRestore(node);
    followUps.push({ type: "SnapshotRestored", meta });
  }

  #takeSnapshot(node: SimNode, followUps: Input[]): void {
    const s = node.state;
    const index = node.kv.applied;
    const term = termAt(s.log, index);
    if (term === undefined || index === 0) return;
    const membership = s.configs.findLast((c) => c.index <= index)?.membership ?? s.configs[0]!.membership;
    const meta = { index, term, membership };
    // Written to a temporary file, synced and renamed: durable before the core hears of it.
    node.storage.snapshot = { meta, data: node.kv.serialize() };
    followUps.push({ type: "SnapshotTaken", meta });
  }

  // -------------------------------------------------------------------------
  // The state machine and client operations

  #apply(node: SimNode, entry: Entry): void {
    if (entry.index !== node.kv.applied + 1) {
      this.#fail("apply order", `${node.id} applied ${entry.index} after ${node.kv.applied}`);
    }
    this.#checker.onApply(node.id, entry);
    const result = node.kv.apply(entry);
    if (result) this.#appliedOps.add(result.opId);
    const waiting = node.waitingProposals.get(entry.index);
    if (!waiting) return;
    node.waitingProposals.delete(entry.index);
    for (const op of waiting) this.#settleProposal(op, entry, result?.opId, result?.output);
  }

  /** A proposal's entry slot was applied: ours if the term matches (then the command must be ours too). */
  #settleProposal(op: ClientOp, entry: Entry, opId: number | undefined, output: KvOutput | undefined): void {
    if (op.status !== "pending") return;
    if (entry.term !== op.term) return this.#failOp(op);
    if (opId !== op.opId || output === undefined) {
      this.#fail(
        "proposal outcome",
        `${op.node.id} reported request ${op.requestId} at ${op.index}@${op.term}, but that entry holds ${
          opId === undefined ? entry.kind : `operation ${opId}`
        }, not operation ${op.opId}`,
      );
    }
    this.#completeOp(op, output);
  }

  #onProposed(node: SimNode, requestId: number, index: Index, term: Term): void {
    const op = node.ops.get(requestId);
    if (!op || op.index !== 0) return; // Unknown, or a duplicated answer.
    op.index = index;
    op.term = term;
    if (index > node.kv.applied) {
      const list = node.waitingProposals.get(index);
      if (list) list.push(op);
      else node.waitingProposals.set(index, [op]);
      return;
    }
    // Already applied here (a forwarded proposal's answer came late).
    const entry = entryAt(node.state.log, index);
    if (entry) {
      const opId = entry.kind === "command" ? decodeCommand(entry.data).opId : undefined;
      this.#settleProposal(op, entry, opId, opId === undefined ? undefined : node.kv.results.get(opId));
    } else {
      const output = node.kv.results.get(op.opId);
      if (output) this.#completeOp(op, output);
      else this.#failOp(op);
    }
  }

  #afterRestore(node: SimNode): void {
    for (const [index, ops] of node.waitingProposals) {
      if (index > node.kv.applied) continue;
      node.waitingProposals.delete(index);
      for (const op of ops) {
        const output = node.kv.results.get(op.opId);
        if (output) this.#completeOp(op, output);
        else this.#failOp(op);
      }
    }
    this.#serveReads(node);
  }

  #serveReads(node: SimNode): void {
    if (node.waitingReads.length === 0) return;
    const still: ClientOp[] = [];
    for (const op of node.waitingReads) {
      if (op.status !== "pending") continue;
      if (op.index > node.kv.applied || op.input?.op !== "get") still.push(op);
      else this.#completeOp(op, { value: node.kv.values.get(op.input.key) });
    }
    node.waitingReads = still;
  }

  #clientOperation(client: number): void {
    const keys = this.options.keys ?? 3;
    const key = `k${this.#rng.int(1, keys)}`;
    const node = this.#rng.pick(this.#nodes);
    const r = this.#rng.next();
    let input: KvInput;
    if (r < 0.4) input = { op: "put", key, value: `v${this.#nextValue++}` };
    else if (r < 0.6) {
      const current = node.kv.values.get(key);
      const prev = this.#rng.chance(0.7)
        ? current
        : this.#rng.chance(0.5)
        ? undefined
        : `v${this.#rng.int(1, this.#nextValue)}`;
      input = { op: "cas", key, prev, value: `v${this.#nextValue++}` };
    } else input = { op: "get", key };
    this.#issue(client, node, input);
  }

  #issue(client: number, node: SimNode, input: KvInput | undefined, command?: KvCommand): ClientOp {
    const opId = command?.opId ?? this.#nextOpId++;
    let cmd: KvCommand | undefined = command;
    if (input?.op === "put") cmd = { opId, op: "put", key: input.key, value: input.value };
    else if (input?.op === "cas") cmd = { opId, op: "cas", key: input.key, prev: input.prev, value: input.value };
    const op: ClientOp = {
      client,
      recordId: input ? this.#recorder.invoke(client, input) : undefined,
      opId,
      input,
      command: cmd,
      node,
      incarnation: node.incarnation,
      requestId: this.#nextRequestId++,
      index: 0,
      term: 0,
      status: "pending",
      output: undefined,
    };
    if (input) this.#recorded.push(op);
    this.#note(node.id, `client ${client} ${describeOp(op)} req=${op.requestId}`);
    const timeout = this.options.clientTimeoutMs ?? 10 * this.#electionMs;
    this.#schedule({ kind: "clientTimeout", time: this.#now + timeout, seq: 0, op });
    if (!node.up) return op; // Connection refused: the client waits for its timeout.
    node.ops.set(op.requestId, op);
    if (cmd) this.#input(node, { type: "Propose", proposals: [{ requestId: op.requestId, data: encodeCommand(cmd) }] });
    else this.#input(node, { type: "ReadIndex", requestId: op.requestId, now: this.#clock(node) });
    return op;
  }

  #completeOp(op: ClientOp, output: KvOutput): void {
    if (op.status !== "pending") return;
    op.status = "ok";
    op.output = output;
    this.#completed++;
    if (op.recordId !== undefined) this.#recorder.complete(op.recordId, output);
    this.#finishOp(op);
  }

  /** Refused or overwritten: the client sees an error, but a duplicate may still take effect (decided at the end). */
  #failOp(op: ClientOp): void {
    if (op.status !== "pending") return;
    op.status = "failed";
    this.#finishOp(op);
  }

  #unknownOp(op: ClientOp): void {
    if (op.status !== "pending") return;
    op.status = "unknown";
    this.#finishOp(op);
  }

  #finishOp(op: ClientOp): void {
    if (op.node.incarnation === op.incarnation) op.node.ops.delete(op.requestId);
    this.#note(op.node.id, `client ${op.client} ${describeOp(op)} req=${op.requestId} -> ${op.status}`);
    if (op.client < 0) return;
    // Back off after an error so a leaderless minority is not hammered in a tight loop.
    const pause = op.status === "ok" ? this.#rng.int(0, 20) : this.#rng.int(10, 60);
    this.#schedule({ kind: "client", time: this.#now + pause, seq: 0, client: op.client });
  }

  // -------------------------------------------------------------------------
  // Failures and the trace

  #note(node: string, text: string): void {
    this.#trace.add({ kind: "note", time: this.#now, node, value: text });
  }

  readonly #fail: Fail = (invariant: string, detail: string): never => {
    const o = this.options;
    const reproduce = o.reproduce ?? `deno run -A tests/sim_run.ts --seed ${o.seed} --nodes ${o.nodes} --trace`;
    throw new InvariantViolation(o.seed, invariant, detail, this.#trace.lines(), reproduce);
  };
}

/** A live read-only view of an operation for callers. */
function view(op: ClientOp): SimOperation {
  return {
    client: op.client,
    input: op.input,
    node: op.node.id,
    get status() {
      return op.status;
    },
    get output() {
      return op.output;
    },
  };
}

function describeOp(op: ClientOp): string {
  const input = op.input;
  if (!input) return `nop#${op.opId}`;
  const out = op.status === "ok" && op.output
    ? input.op === "get" ? ` = ${op.output.value ?? "∅"}` : input.op === "cas" ? ` ${op.output.ok ? "ok" : "no"}` : ""
    : "";
  switch (input.op) {
    case "put":
      return `put ${input.key}=${input.value}${out}`;
    case "cas":
      return `cas ${input.key} ${input.prev ?? "∅"}=>${input.value}${out}`;
    case "get":
      return `get ${input.key}${out}`;
    case "delete":
      return `delete ${input.key}`;
  }
}

/** What {@link runSimulation} needs: the cluster options plus the number of steps. */
export interface RunOptions extends SimulatorOptions {
  /** Events to run with faults on before the liveness check. */
  readonly steps: number;
}

/** The outcome of a passing {@link runSimulation}. */
export interface RunReport extends SimulationStats {
  /** The linearizability verdict ("ok", or "unknown" if the search ran out of budget). */
  readonly linearizability: "ok" | "unknown";
}

/**
 * One complete seeded run: `steps` events with the configured faults and
 * clients, then the liveness check, then the linearizability check of the
 * client history. Throws {@link InvariantViolation} on any failure.
 */
export function runSimulation(options: RunOptions): RunReport {
  const reproduce = options.reproduce ??
    `deno run -A tests/sim_run.ts --seed ${options.seed} --nodes ${options.nodes} --steps ${options.steps} --trace`;
  const sim = new Simulator({ ...options, reproduce });
  sim.runSteps(options.steps);
  sim.checkLiveness();
  const verdict = sim.checkLinearizability();
  return { ...sim.stats(), linearizability: verdict.result === "ok" ? "ok" : "unknown" };
}
