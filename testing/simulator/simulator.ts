/**
 * A deterministic simulator of a plank cluster. Every node runs the same
 * {@link NodeDriver} — the interpreter rules that ship — over simulated
 * services: a network that drops, delays, duplicates and partitions; a disk
 * whose writes complete after a random latency, in order, and are lost if the
 * node crashes first; a clock per node, running at its own rate; the user's
 * state machine ({@link SimService}). One seeded PRNG and one priority queue
 * of events (timer firings, deliveries, write completions, client operations,
 * faults) ordered by (time, sequence number) make a run exactly reproducible
 * from its seed.
 *
 * Raft's safety properties are checked after every step (`invariants.ts`),
 * the service's own invariant after every apply, and the client history is
 * checked for linearizability at the end.
 *
 * @module
 */

import { makeConfig, type RaftConfig } from "../../core/config.ts";
import { crc32c } from "../../core/crc32c.ts";
import { allMembers, emptyMembership, isJoint, isVoter, membershipOf } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
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
import { NodeDriver, type NodeDriver as Driver, type SnapshotInfo, type Work } from "../../effects/driver/driver.ts";
import { EventQueue } from "../../effects/driver/event_queue.ts";
import type { Outcome } from "../../effects/driver/requests.ts";
import { chunkMessage } from "../../effects/driver/snapshot_sender.ts";
import { OutcomeUnknown } from "../../effects/errors.ts";
import {
  checkOperations,
  type CheckResult,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  type Operation,
} from "../linearizability.ts";
import { calmPhase } from "./epilogue.ts";
import { type Fail, InvariantChecker, InvariantViolation } from "./invariants.ts";
import { type KvCommand, type KvMachine, kvService } from "./kv_service.ts";
import { defaultFaults, type FaultOptions, Nemesis, type SimControl } from "./nemesis.ts";
import { Prng } from "./prng.ts";
import type { SimService } from "./service.ts";
import { SimStreams } from "./streams.ts";
import { Trace } from "./trace.ts";

/** How to build a simulated cluster. */
// deno-lint-ignore no-explicit-any
export interface SimulatorOptions<SM = any, C = any, I = any, O = any> {
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
  /** What the cluster replicates (default: the key-value service over `keys` keys). */
  readonly service?: SimService<SM, C, I, O>;
  /** Fault injection: `true` for {@link defaultFaults}, `false` (default) for a perfect network, or overrides. */
  readonly faults?: boolean | Partial<FaultOptions>;
  /**
   * How far apart the nodes' clocks run: each node's clock advances at a rate
   * drawn from [1, 1 + clockSpread) of virtual time, and starts at a random
   * offset. Timers and the clock readings the driver gets are the node's own.
   * Default 0 (perfect clocks). Lease reads are safe only while this stays
   * within the core's `clockDrift`.
   */
  readonly clockSpread?: number;
  /** Exact clock rates of n1…nN (instead of drawing them from `clockSpread`), for tests of one schedule. */
  readonly clockRates?: readonly number[];
  /** Concurrent clients issuing random operations (default 3; 0 for none). */
  readonly clients?: number;
  /** Number of distinct keys the default key-value clients use (default 3). */
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
export interface SimOperation<I = unknown, O = unknown> {
  /** Issuing client (-1 for operations started through the Simulator's methods). */
  readonly client: number;
  /** The operation, or undefined for the liveness probe. */
  readonly input: I | undefined;
  /** Node the operation was sent to. */
  readonly node: NodeId;
  /** `pending` until answered; `ok` with `output`; `failed` when refused or overwritten; `unknown` when timed out or the node crashed. */
  readonly status: "pending" | "ok" | "failed" | "unknown";
  /** The answer, when `ok`. */
  readonly output: O | undefined;
  /** The error, when `failed` or `unknown` by the node's answer (undefined when timed out by the client). */
  readonly error: unknown;
  /** Whether some state machine has applied this write (the ground truth for unanswered writes). */
  readonly applied: boolean;
}

interface ClientOp {
  client: number;
  read: boolean;
  recordId: number | undefined;
  opId: number;
  input: unknown;
  node: SimNode;
  incarnation: number;
  status: "pending" | "ok" | "failed" | "unknown";
  output: unknown;
  error: unknown;
}

interface Storage {
  hard: HardState | undefined;
  entries: Entry[];
  snapshot: { readonly info: SnapshotInfo; readonly data: Uint8Array } | undefined;
}

interface SimNode {
  readonly id: NodeId;
  up: boolean;
  incarnation: number;
  driver: Driver;
  machine: unknown;
  readonly storage: Storage;
  /** Virtual time before which this node's next write cannot complete (writes complete in order). */
  lastWriteAt: number;
  readonly timerGeneration: Record<TimerKind | "tick", number>;
  /** When the driver's pending `tick` fires (Infinity: none). */
  tickAt: number;
  commitSeen: Index;
  readonly ops: Set<ClientOp>;
  partition: number;
  disk: readonly [number, number] | undefined;
  /** The snapshot being received (in memory: lost in a crash). */
  receiving: { meta: SnapshotMeta; chunks: Uint8Array[] } | undefined;
  /** The snapshots its streams to followers hold (in memory: lost in a crash). */
  readonly streams: SimStreams;
  /** How fast this node's clock runs, relative to virtual time. */
  readonly rate: number;
  /** This node's clock reading at virtual time 0. */
  readonly clockOffset: number;
  /** Reads asked for on this node: request id → highest index committed anywhere at the time. */
  readonly reads: Map<number, Index>;
  /** Since when this node, as leader, has been cut off from a quorum (check-quorum oracle). */
  cutOffSince: number | undefined;
  /** Leadership won in a step whose term write is not yet durable (registered with the checker once it is). */
  electedUndurable: { readonly term: Term; readonly log: RaftState["log"] } | undefined;
}

type SimEvent =
  | { kind: "deliver"; time: number; seq: number; from: SimNode; message: Message }
  | {
    kind: "timer";
    time: number;
    seq: number;
    node: SimNode;
    incarnation: number;
    timer: TimerKind | "tick";
    gen: number;
  }
  | { kind: "write"; time: number; seq: number; node: SimNode; incarnation: number; work: NonNullable<Work["write"]> }
  | { kind: "unreachable"; time: number; seq: number; node: SimNode; incarnation: number; peer: NodeId }
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
// deno-lint-ignore no-explicit-any
export class Simulator<SM = any, C = any, I = any, O = any> {
  /** The options the simulator was built with. */
  readonly options: SimulatorOptions<SM, C, I, O>;
  /** Node ids, n1…nN. */
  readonly nodeIds: readonly NodeId[];
  /** Results of leadership transfers started with {@link transferLeadership}, by request number. */
  readonly transfers: Map<number, boolean> = new Map();
  /** The service the cluster replicates. */
  readonly service: SimService<SM, C, I, O>;

  readonly #rng: Prng;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<NodeId, SimNode>();
  readonly #faults: FaultOptions;
  readonly #nemesis: Nemesis;
  readonly #membership: Membership;
  readonly #trace: Trace;
  readonly #checker: InvariantChecker;
  readonly #recorder: HistoryRecorder<I, O>;
  readonly #recorded: ClientOp[] = [];
  /** Operation ids some state machine has applied: the ground truth for unanswered writes. */
  readonly #appliedOps = new Set<number>();
  readonly #drops: { readonly match: (message: Message) => boolean; left: number }[] = [];
  readonly #leaderTerms = new Set<Term>();
  /** The highest term in which some node became leader (durably): a lease read of a lower term is stale. */
  #highestLeaderTerm: Term = 0;
  readonly #electionMs: number;
  readonly #heartbeatMs: number;
  #now = 0;
  #steps = 0;
  #faultsOn: boolean;
  #clientsOn: boolean;
  #nextTransfer = 1;
  #nextOpId = 1;
  #crashes = 0;
  #partitions = 0;
  #completed = 0;
  #clockTick = 0;
  #clockAt = -1;

  /** Builds the cluster, starts every node from empty storage and schedules clients and faults. */
  constructor(options: SimulatorOptions<SM, C, I, O>) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
      throw new RangeError(`nodes must be 1–7, got ${options.nodes}`);
    }
    const voters = options.voters ?? options.nodes;
    if (!Number.isInteger(voters) || voters < 1 || voters > options.nodes) {
      throw new RangeError(`voters must be 1–${options.nodes}, got ${voters}`);
    }
    this.options = options;
    this.service = options.service ?? (kvService(options.keys ?? 3) as unknown as SimService<SM, C, I, O>);
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
    this.#membership = membershipOf(ids.slice(0, voters));
    this.#nemesis = new Nemesis(this.#faults, this.#rng, this.#control());
    const spread = options.clockSpread ?? 0;
    if (!(spread >= 0)) throw new RangeError(`clockSpread must be >= 0, got ${spread}`);
    for (const [i, id] of ids.entries()) {
      const drawn = spread > 0 ? 1 + this.#rng.next() * spread : 1;
      const rate = options.clockRates?.[i] ?? drawn;
      if (!(rate > 0)) throw new RangeError(`clock rate of ${id} must be > 0, got ${rate}`);
      const clockOffset = spread > 0 || options.clockRates ? this.#rng.int(0, 1_000_000) : 0;
      const node = {
        id,
        up: false,
        incarnation: 0,
        driver: undefined as unknown as Driver,
        machine: undefined,
        storage: { hard: undefined, entries: [], snapshot: undefined },
        lastWriteAt: 0,
        timerGeneration: { election: 0, heartbeat: 0, quorum: 0, transfer: 0, tick: 0 },
        tickAt: Infinity,
        commitSeen: 0,
        ops: new Set<ClientOp>(),
        partition: 0,
        disk: undefined,
        receiving: undefined,
        streams: new SimStreams(),
        rate,
        clockOffset,
        reads: new Map(),
        cutOffSince: undefined,
        electedUndurable: undefined,
      } satisfies SimNode as SimNode;
      this.#nodes.push(node);
      this.#byId.set(id, node);
    }
    for (const node of this.#nodes) this.#boot(node);
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
    return this.#node(id).driver.state;
  }

  /** Whether node `id` is running. */
  isUp(id: NodeId): boolean {
    return this.#node(id).up;
  }

  /** Node `id`'s state machine. */
  machine(id: NodeId): SM {
    return this.#node(id).machine as SM;
  }

  /** The key-value contents of node `id`'s state machine (for the default key-value service). */
  values(id: NodeId): ReadonlyMap<string, string> {
    return (this.#node(id).machine as KvMachine).values;
  }

  /** Index applied by node `id`'s state machine. */
  appliedIndex(id: NodeId): Index {
    return this.#node(id).driver.appliedIndex;
  }

  /** Running nodes that consider themselves leader. */
  leaders(): NodeId[] {
    return this.#nodes.filter((n) => n.up && n.driver.state.role.kind === "leader").map((n) => n.id);
  }

  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: SimNode | undefined;
    for (const n of this.#nodes) {
      const s = n.driver.state;
      if (n.up && s.role.kind === "leader" && (!best || s.term > best.driver.state.term)) best = n;
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

  /** Processes every event up to `ms` of virtual time from now, calling `each` after every one. */
  runFor(ms: number, each?: () => void): void {
    const until = this.#now + ms;
    for (;;) {
      const next = this.#queue.peek();
      if (!next || next.time > until) break;
      this.#processNext();
      each?.();
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

  /** Crashes node `id`: pending writes, unsent messages, its memory and its clients' in-flight operations are lost. */
  crash(id: NodeId): void {
    const node = this.#node(id);
    if (!node.up) return;
    this.#crashes++;
    node.up = false;
    node.incarnation++;
    node.receiving = undefined;
    node.streams.clear();
    node.tickAt = Infinity;
    node.reads.clear();
    node.cutOffSince = undefined;
    node.electedUndurable = undefined;
    for (const op of [...node.ops]) this.#unknownOp(op);
    node.ops.clear();
    this.#note(
      id,
      `crash (durable: ${node.storage.entries.length} entries, snapshot ${
        node.storage.snapshot?.info.meta.index ?? "-"
      })`,
    );
  }

  /** Restarts node `id` from its durable storage. */
  restart(id: NodeId): void {
    const node = this.#node(id);
    if (node.up) return;
    this.#boot(node);
    const s = node.driver.state;
    this.#note(
      id,
      `restart (term ${s.term}, log ${s.log.offset + 1}..${s.log.offset + s.log.length}, commit ${s.commit})`,
    );
  }

  /** A client write through node `id`, recorded in the history as client -1. */
  write(id: NodeId, input: I, command: (opId: number) => C): SimOperation<I, O> {
    const opId = this.#nextOpId++;
    return view(
      this.#issue(-1, this.#node(id), { kind: "write", input, command: command(opId) }, opId),
      this.#appliedOps,
    );
  }

  /** A linearizable client read through node `id`, recorded as client -1. */
  read(id: NodeId, input: I, read: (machine: SM) => unknown): SimOperation<I, O> {
    return view(this.#issue(-1, this.#node(id), { kind: "read", input, read }, this.#nextOpId++), this.#appliedOps);
  }

  /** A key-value write through node `id` (default service). */
  put(id: NodeId, key: string, value: string): SimOperation<I, O> {
    const input = { op: "put", key, value } as KvInput as I;
    return this.write(id, input, (opId) => ({ opId, op: "put", key, value }) as KvCommand as C);
  }

  /** A key-value compare-and-set through node `id` (default service). */
  cas(id: NodeId, key: string, prev: string | undefined, value: string): SimOperation<I, O> {
    const input = { op: "cas", key, prev, value } as KvInput as I;
    return this.write(id, input, (opId) => ({ opId, op: "cas", key, prev, value }) as KvCommand as C);
  }

  /** A linearizable key-value read through node `id` (default service). */
  get(id: NodeId, key: string): SimOperation<I, O> {
    return this.read(id, { op: "get", key } as KvInput as I, (m) => (m as KvMachine).values.get(key));
  }

  /** Asks node `id` to transfer leadership to `to`; the outcome lands in {@link transfers}. */
  transferLeadership(id: NodeId, to: NodeId): number {
    const number = this.#nextTransfer++;
    const node = this.#node(id);
    if (!node.up) return number;
    node.driver.transferLeadership(to, this.#clock(node), (o) => this.transfers.set(number, o.ok));
    this.#pump(node);
    return number;
  }

  /**
   * Delivers `message` to its recipient as if `message.from` had sent it: a
   * forgery (the house's adversary reaches every port). The recipient must
   * refuse or survive it; the simulator's oracles judge the outcome.
   */
  inject(message: Message): void {
    this.#note(message.from, `forged ${message.type} to ${message.to} (term ${message.term})`);
    this.#schedule({
      kind: "deliver",
      time: this.#now + this.#latency(),
      seq: 0,
      from: this.#node(message.from),
      message,
    });
  }

  /**
   * Loses the next `count` messages for which `match` holds, as they are sent
   * (a targeted loss: the calm phase drops one snapshot transfer this way).
   */
  dropNext(match: (message: Message) => boolean, count = 1): void {
    this.#drops.push({ match, left: count });
  }

  /** Adds a line to the trace. */
  note(node: string, text: string): void {
    this.#note(node, text);
  }

  /** Reports a violated property with the seed, the trace and the command that reproduces the run. */
  fail(invariant: string, detail: string): never {
    return this.#fail(invariant, detail);
  }

  /** Proposes a membership change on node `id`. */
  proposeConfChange(id: NodeId, change: ConfChange): void {
    const node = this.#node(id);
    if (!node.up) return;
    node.driver.changeMembership(change, this.#clock(node), () => {});
    this.#pump(node);
  }

  /**
   * The liveness check: stop faults and clients, heal the network and the disks, restart
   * every node, then exactly one leader must emerge and a proposal to it must
   * be applied by every member of its configuration, voters and learners alike
   * (a follower left behind for good — a snapshot never resent, a learner
   * never caught up — is a liveness bug too). The deadline (20 election
   * timeouts) moves while some state machine advances, up to ten times that.
   * Throws {@link InvariantViolation} ("liveness") otherwise.
   */
  checkLiveness(): void {
    this.#faultsOn = false;
    this.#clientsOn = false;
    this.heal();
    // Fault-free from here: a slow disk the nemesis set recovers too (its recovery was a fault event).
    for (const n of this.#nodes) n.disk = undefined;
    for (const n of this.#nodes) if (!n.up) this.restart(n.id);
    const window = 20 * this.#electionMs;
    const limit = this.#now + 10 * window;
    let deadline = this.#now + window;
    let progress = this.#appliedSum();
    const opId = this.#nextOpId++;
    let probe: ClientOp | undefined;
    let readProbe: ClientOp | undefined;
    let target: Index | undefined;
    for (;;) {
      const leaders = this.leaders();
      if (leaders.length === 1) {
        const leader = this.#node(leaders[0]!);
        // First a linearizable read must be served (a new leader that cannot serve reads is not live:
        // its no-op must commit), then a write applied everywhere.
        if (readProbe?.status !== "ok" || readProbe.node !== leader) {
          const staleRead = readProbe === undefined || readProbe.node !== leader ||
            readProbe.incarnation !== leader.incarnation || readProbe.status === "failed" ||
            readProbe.status === "unknown";
          if (staleRead) readProbe = this.#issue(-1, leader, { kind: "read", input: undefined, read: () => 0 }, 0);
          const next = this.#queue.peek();
          if (!next || next.time > deadline) break;
          this.#processNext();
          continue;
        }
        if (probe?.status === "ok" && probe.node === leader && target === undefined) {
          target = leader.driver.appliedIndex;
        }
        const members = allMembers(currentMembership(leader.driver.state));
        const caughtUp = (id: NodeId) => this.#node(id).up && this.#node(id).driver.appliedIndex >= target!;
        if (target !== undefined && members.every(caughtUp)) return;
        const stale = probe === undefined || probe.node !== leader || probe.incarnation !== leader.incarnation ||
          probe.status === "failed" || probe.status === "unknown";
        if (stale) {
          target = undefined;
          probe = this.#issue(-1, leader, { kind: "write", input: undefined, command: this.service.noop(opId) }, opId);
        }
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
        `after faults stopped (leaders: ${this.leaders().join(",") || "none"}; probe applied up to ${
          target ?? "-"
        } on the leader; ${this.#lagging()})`,
    );
  }

  /**
   * The client history: answered operations with their results, unanswered
   * writes that some state machine applied as pending (`ret = Infinity`).
   * Unanswered reads, and writes no state machine ever applied, are left out:
   * they had no effect anyone could observe.
   */
  history(): Operation<I, O>[] {
    for (const op of this.#recorded) {
      if (op.status === "ok" || op.recordId === undefined) continue;
      if (op.input === undefined || op.read || !this.#appliedOps.has(op.opId)) {
        this.#recorder.discard(op.recordId);
        op.recordId = undefined;
      }
    }
    return this.#recorder.history();
  }

  /** Checks the client history for linearizability against the service's model. */
  checkLinearizability(maxSteps = 5_000_000): CheckResult<I, O> {
    const result = checkOperations(this.service.model, this.history(), { maxSteps });
    if (result.result === "illegal") this.#fail("linearizability", `\n${result.explanation}`);
    return result;
  }

  // -------------------------------------------------------------------------
  // Nodes: a driver over simulated services

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

  /** Starts (or restarts) `node` from its durable storage, as a shell does after reading its stores. */
  #boot(node: SimNode): void {
    const storage = node.storage;
    const snapshot = storage.snapshot;
    if (snapshot && storage.entries.length > 0) {
      // A log that stops short of the snapshot, or disagrees with it there, is
      // discarded on open (as `start` does); drop it from storage too, so that
      // appends after the snapshot continue the stored log.
      const meta = snapshot.info.meta;
      const last = storage.entries[storage.entries.length - 1]!;
      const covering = storage.entries.find((e) => e.index === meta.index);
      if (last.index < meta.index || (covering !== undefined && covering.term !== meta.term)) storage.entries = [];
    }
    node.up = true;
    node.machine = snapshot ? this.service.restore(snapshot.data) : this.service.create();
    node.lastWriteAt = this.#now;
    node.tickAt = Infinity;
    const incarnation = node.incarnation;
    node.driver = new NodeDriver(
      {
        config: this.#config(node.id),
        membership: this.#bootstrap(node.id),
        snapshotChunkBytes: this.options.snapshotChunkBytes ?? 48,
        requestTimeoutMs: this.options.clientTimeoutMs ?? 10 * this.#electionMs,
        onStep: (input, effects, state) => {
          if (node.incarnation === incarnation) this.#observe(node, input, effects, state);
        },
        onEvent: (event) => {
          if (event.type === "warning") this.#note(node.id, `warning: ${event.message}`);
        },
      },
      { hardState: storage.hard, entries: storage.entries.slice(), snapshot: snapshot?.info },
      this.#clock(node),
    );
    node.commitSeen = node.driver.state.commit;
    this.#pump(node);
  }

  /** A node became leader of `term` with its term durable. */
  #onLeader(id: NodeId, term: Term, log: RaftState["log"]): void {
    if (term > this.#highestLeaderTerm) this.#highestLeaderTerm = term;
    this.#checker.onLeader(id, term, log);
  }

  /** Node `node`'s own clock reading now (see {@link SimulatorOptions.clockSpread}). */
  #clock(node: SimNode): number {
    return node.clockOffset + node.rate * this.#now;
  }

  /** Every step of every node: trace, nemesis triggers and Raft's safety checks. */
  #observe(node: SimNode, input: Input, effects: readonly RaftEffect[], s: RaftState): void {
    this.#trace.add({ kind: "input", time: this.#now, node: node.id, value: input });
    // Read safety, checked on the protocol's own answer (no client collision needed): a read's index
    // must be at least the highest index committed anywhere when the read was asked for (§6.4).
    // (A read resubmitted under the same id keeps the floor of its first asking: its answer may be to that.)
    const freshRead = input.type === "ReadIndex" && !node.reads.has(input.requestId);
    if (freshRead) node.reads.set(input.requestId, this.#checker.committedIndex);
    for (const e of effects) {
      if (e.type === "ReadReady") {
        const floor = node.reads.get(e.requestId);
        node.reads.delete(e.requestId);
        if (floor !== undefined && e.index < floor) {
          this.#fail(
            "read index",
            `${node.id} served a read at index ${e.index}, but ${floor} was committed when it was asked`,
          );
        }
        // Lease safety (§6.4.1), seen without waiting for a write to expose it: a read answered in the
        // step that asked for it was answered on the lease, and a lease of term T must have ended before
        // any leader of a higher term could be elected (its voters backed the lease and were sticky).
        if (
          freshRead && input.requestId === e.requestId && s.role.kind === "leader" && this.#highestLeaderTerm > s.term
        ) {
          this.#fail(
            "lease",
            `${node.id} (leader of term ${s.term}) served a lease read while a leader of term ${this.#highestLeaderTerm} exists`,
          );
        }
      }
      if (e.type !== "SetTimer") this.#trace.add({ kind: "effect", time: this.#now, node: node.id, value: e });
      if (this.#faultsOn) {
        this.#nemesis.observe(node.id, s.role.kind, e);
        if (e.type === "Persist") { for (const d of e.after) this.#nemesis.observe(node.id, s.role.kind, d); }
      }
      if (e.type === "RoleChanged" && e.role === "leader") {
        this.#leaderTerms.add(e.term);
        // A leader is one once its term is durable: a single voter elects itself in the step that raises
        // its term, and if it crashes before that write it never led (nothing left it before the write).
        if (node.storage.hard?.term === e.term) this.#onLeader(node.id, e.term, s.log);
        else node.electedUndurable = { term: e.term, log: s.log };
      }
    }
    this.#trace.add({ kind: "state", time: this.#now, node: node.id, value: s });
    if (s.commit !== node.commitSeen) {
      this.#checker.onCommit(node.id, s.term, node.commitSeen, s.commit, s.log);
      node.commitSeen = s.commit;
    }
    if (s.applied > s.commit) this.#fail("apply after commit", `${node.id} applied ${s.applied} > commit ${s.commit}`);
    this.#checkQuorumOracle(node, s);
    this.#removedLeaderOracle(node, s);
  }

  /**
   * A leader removed from the configuration steps down once that
   * configuration commits (thesis §4.2.2): leading a group it is no longer a
   * voter of, it would keep others from electing among themselves.
   */
  #removedLeaderOracle(node: SimNode, s: RaftState): void {
    if (s.role.kind !== "leader") return;
    const latest = s.configs[s.configs.length - 1]!;
    if (latest.index === 0 || latest.index > s.commit || isJoint(latest.membership)) return;
    if (!isVoter(latest.membership, node.id)) {
      this.#fail(
        "removed leader",
        `${node.id} still leads term ${s.term} after its removal at ${latest.index} committed`,
      );
    }
  }

  /**
   * Check-quorum as an oracle (thesis §6.2): with `checkQuorum` on, a leader
   * cut off from a quorum of its voters (by the simulated network) must step
   * down within a few election timeouts of its own clock.
   */
  #checkQuorumOracle(node: SimNode, s: RaftState): void {
    if (s.role.kind !== "leader" || !s.config.checkQuorum) {
      node.cutOffSince = undefined;
      return;
    }
    const m = currentMembership(s);
    const reach = (ids: readonly NodeId[]) => {
      if (ids.length === 0) return true;
      const n = ids.filter((id) =>
        id === node.id || (this.#node(id).up && this.#node(id).partition === node.partition)
      );
      return n.length > ids.length / 2;
    };
    if (reach(m.voters) && reach(m.outgoing ?? [])) {
      node.cutOffSince = undefined;
      return;
    }
    node.cutOffSince ??= this.#now;
    // Two quorum rounds, plus the longest a delayed (or resurfacing) answer from a lost peer can keep it "active".
    const f = this.#faults;
    const late = this.#faultsOn ? f.longDelayMs + (f.staleRate > 0 ? 5 * this.#electionMs : 0) : 0;
    const limit = (3 * this.#electionMs + late) / node.rate;
    if (this.#now - node.cutOffSince > limit) {
      this.#fail("check-quorum", `${node.id} still leads term ${s.term} ${limit.toFixed(0)}ms after losing its quorum`);
    }
  }

  /** Carries out what `node`'s driver asks, until it asks for nothing more now. */
  #pump(node: SimNode): void {
    const incarnation = node.incarnation;
    for (let rounds = 0; node.up && node.incarnation === incarnation && node.driver.hasWork; rounds++) {
      if (rounds > 10_000) this.#fail("driver loop", `${node.id}'s driver keeps producing work`);
      const work = node.driver.take();
      for (const m of work.sends) this.#transmit(node, m);
      for (const [timer, ms] of work.timers) this.#arm(node, timer, ms);
      for (const op of work.receive) this.#storeOp(node, op);
      if (work.write) this.#writeLater(node, work.write);
      this.#apply(node, work.applies);
      if (work.capture) this.#capture(node);
      const stored = node.storage.snapshot;
      for (const c of work.chunks) {
        const data = node.streams.read(c, stored && { meta: stored.info.meta, data: stored.data });
        if (data === undefined) this.#unreachableLater(node, c.header.to);
        else this.#transmit(node, chunkMessage(c.header, c.meta, c.chunk, data, c.checksum));
      }
      node.streams.sweep((to) => node.driver.streaming(to));
    }
    if (node.up && node.incarnation === incarnation) this.#armTick(node);
  }

  /** Arms the driver's own deadline (request timeouts, idle snapshot streams) on the node's clock. */
  #armTick(node: SimNode): void {
    const deadline = node.driver.nextDeadline();
    if (deadline === undefined) {
      node.tickAt = Infinity;
      return;
    }
    const at = this.#now + Math.max(0, Math.ceil((deadline - this.#clock(node)) / node.rate));
    if (at === node.tickAt) return;
    node.tickAt = at;
    const gen = ++node.timerGeneration.tick;
    this.#schedule({ kind: "timer", time: at, seq: 0, node, incarnation: node.incarnation, timer: "tick", gen });
  }

  #arm(node: SimNode, timer: TimerKind, ms: number): void {
    const gen = ++node.timerGeneration[timer];
    // The node's clock measures the wait: a fast clock fires early in virtual time.
    const time = this.#now + Math.round(ms / node.rate);
    this.#schedule({ kind: "timer", time, seq: 0, node, incarnation: node.incarnation, timer, gen });
  }

  /** Schedules a write to complete after a random disk latency, in order with the node's other writes. */
  #writeLater(node: SimNode, work: NonNullable<Work["write"]>): void {
    const [lo, hi] = node.disk ?? [this.options.minDiskMs ?? 1, this.options.maxDiskMs ?? 6];
    // A unit with nothing to write only waits for the ones before it.
    const at = Math.max(work.empty ? this.#now : this.#now + this.#rng.int(lo, hi), node.lastWriteAt);
    node.lastWriteAt = at;
    this.#schedule({ kind: "write", time: at, seq: 0, node, incarnation: node.incarnation, work });
  }

  /** A write reached the disk (unless the node crashed first): apply it to storage, then tell the driver. */
  #completeWrite(node: SimNode, incarnation: number, work: NonNullable<Work["write"]>): boolean {
    if (!node.up || node.incarnation !== incarnation) return false; // Lost in the crash.
    const storage = node.storage;
    for (const stage of work.stages) {
      const batch = stage.batch;
      if (batch) {
        if (batch.truncateFrom !== undefined) {
          const first = storage.entries[0]?.index;
          if (first !== undefined) {
            storage.entries.length = Math.min(storage.entries.length, Math.max(0, batch.truncateFrom - first));
          }
        }
        const entries = batch.entries;
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
          const meta = storage.snapshot?.info.meta;
          const prevTerm = last?.term ?? (meta?.index === entries[0]!.index - 1 ? meta.term : undefined);
          this.#checker.onAppend(node.id, entries, prevTerm);
          for (const e of entries) storage.entries.push(e);
        }
        if (batch.hardState) storage.hard = batch.hardState;
        const elected = node.electedUndurable;
        if (elected && storage.hard?.term === elected.term) {
          node.electedUndurable = undefined;
          this.#onLeader(node.id, elected.term, elected.log);
        }
      }
      if (stage.compactTo > 0) {
        const first = storage.entries[0]?.index;
        if (first !== undefined && stage.compactTo >= first) {
          storage.entries = storage.entries.slice(stage.compactTo - first + 1);
        }
      }
    }
    node.driver.written(work.id, this.#clock(node));
    this.#pump(node);
    return true;
  }

  /** Applies committed entries to the node's state machine, checking the service's invariant after each. */
  #apply(node: SimNode, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // An applied entry must be one the node can replay after a crash: in its durable log or
    // snapshot. A state machine ahead of the disk (a durable one, or one that acted on the
    // entry) could not be vouched for after a restart (Figure 2: apply what is committed and
    // stored; thesis §10.2.1 lets only the *sending* of appends outrun the disk).
    const durable = Math.max(
      node.storage.entries[node.storage.entries.length - 1]?.index ?? 0,
      node.storage.snapshot?.info.meta.index ?? 0,
    );
    const last = entries[entries.length - 1]!.index;
    if (last > durable) {
      this.#fail("apply before durable", `${node.id} applied entry ${last} while its storage holds up to ${durable}`);
    }
    // The driver treats a throw from the state machine as that entry's failure; a violation found
    // here must end the run instead, so it is kept and thrown once the driver is done.
    let violation: unknown;
    const pending = node.driver.applyAll(entries, (entry) => {
      try {
        return this.#applyOne(node, entry);
      } catch (e) {
        if (e instanceof InvariantViolation) violation ??= e;
        throw e;
      }
    });
    if (violation !== undefined) throw violation;
    if (pending) this.#fail("simulated state machine", "the simulator runs state machines synchronously");
    // Config and no-op entries are applied by the driver; the checker sees them too.
    for (const e of entries) if (e.kind !== "command") this.#checker.onApply(node.id, e);
  }

  #applyOne(node: SimNode, entry: Entry): unknown {
    {
      this.#checker.onApply(node.id, entry);
      const command = this.service.codec.decode(entry.data);
      const opId = this.service.opIdOf(command);
      this.#appliedOps.add(opId);
      const result = this.service.apply(node.machine as SM, command, entry.index);
      const broken = this.service.invariant?.(node.machine as SM);
      if (broken !== undefined) {
        this.#fail(`${this.service.name} invariant`, `${node.id} after applying ${entry.index}: ${broken}`);
      }
      return { opId, result };
    }
  }

  /** The driver asks for a snapshot: written to a temporary file, synced and renamed, so durable at once. */
  #capture(node: SimNode): void {
    const meta = node.driver.captureMeta();
    if (meta === undefined) return;
    const data = this.service.snapshot(node.machine as SM);
    const info: SnapshotInfo = { meta, size: data.length, checksum: crc32c(data) };
    node.storage.snapshot = { info, data };
    node.driver.snapshotStored(info, this.#clock(node));
  }

  /** A snapshot-store operation of a snapshot being received. */
  #storeOp(node: SimNode, op: Work["receive"][number]): void {
    switch (op.op) {
      case "abort":
        if (node.receiving) this.#note(node.id, `snapshot ${node.receiving.meta.index}: abort partial`);
        node.receiving = undefined;
        return;
      case "begin":
        node.receiving = { meta: op.meta, chunks: [] };
        return;
      case "write":
        node.receiving?.chunks.push(op.data);
        return;
      case "finish": {
        const r = node.receiving;
        node.receiving = undefined;
        if (!r) return;
        const size = r.chunks.reduce((n, c) => n + c.length, 0);
        const data = new Uint8Array(size);
        let at = 0;
        for (const c of r.chunks) {
          data.set(c, at);
          at += c.length;
        }
        const checksum = crc32c(data);
        if (op.checksum !== undefined && op.checksum !== checksum) {
          node.driver.receiveRefused(op.from, op.meta, "the snapshot failed its checksum");
          return;
        }
        this.#checker.onRestore(node.id, op.meta.index, op.meta.term);
        const info: SnapshotInfo = { meta: op.meta, size, checksum };
        node.storage.snapshot = { info, data };
        node.machine = this.service.restore(data);
        node.driver.snapshotInstalled(info, this.#clock(node));
        return;
      }
    }
  }

  // -------------------------------------------------------------------------
  // The network and the event loop

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
        to.driver.receive(event.message, this.#clock(to));
        this.#pump(to);
        return true;
      }
      case "timer": {
        const node = event.node;
        if (!node.up || node.incarnation !== event.incarnation) return false;
        if (node.timerGeneration[event.timer] !== event.gen) return false;
        if (event.timer === "tick") {
          node.tickAt = Infinity;
          node.driver.tick(this.#clock(node));
        } else node.driver.timer(event.timer, this.#clock(node));
        this.#pump(node);
        return true;
      }
      case "write":
        return this.#completeWrite(event.node, event.incarnation, event.work);
      case "unreachable": {
        const node = event.node;
        if (!node.up || node.incarnation !== event.incarnation) return false;
        node.driver.unreachable(event.peer, this.#clock(node));
        this.#pump(node);
        return true;
      }
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

  /** Tells `node`'s driver, asynchronously (as the production loop's queue does), that `peer` looked unreachable. */
  #unreachableLater(node: SimNode, peer: NodeId): void {
    this.#schedule({ kind: "unreachable", time: this.#now, seq: 0, node, incarnation: node.incarnation, peer });
  }

  #transmit(from: SimNode, message: Message): void {
    const to = this.#byId.get(message.to);
    if (!to || to === from) return;
    // Checked on what leaves the node: a vote is given once it is sent (after its Persist).
    if (message.type === "RequestVoteResponse" && message.granted && !message.preVote) {
      this.#checker.onVote(from.id, message.term, message.to);
    }
    if (!to.up) {
      // A crashed peer refuses the connection: the transport reports it, asynchronously.
      this.#unreachableLater(from, to.id);
      return;
    }
    const f = this.#faults;
    if (this.#faultsOn && this.#rng.chance(f.dropRate)) return;
    if (to.partition !== from.partition) return;
    const drop = this.#drops.find((d) => d.left > 0 && d.match(message));
    if (drop !== undefined) {
      drop.left--;
      this.#note(from.id, `lost ${message.type} to ${message.to} (targeted)`);
      return;
    }
    this.#schedule({ kind: "deliver", time: this.#now + this.#latency(), seq: 0, from, message });
    if (this.#faultsOn && this.#rng.chance(f.duplicateRate)) {
      this.#schedule({ kind: "deliver", time: this.#now + this.#latency(), seq: 0, from, message });
    }
    if (
      this.#faultsOn && message.type === "RequestVote" && !message.preVote && this.#rng.chance(f.lateVoteRate)
    ) {
      const late = this.#rng.int(this.#electionMs, 3 * this.#electionMs);
      this.#schedule({ kind: "deliver", time: this.#now + late, seq: 0, from, message });
    }
    if (this.#faultsOn && this.#rng.chance(f.staleRate)) {
      // A copy that resurfaces much later, when its term is long past.
      const late = this.#rng.int(this.#electionMs, 5 * this.#electionMs);
      this.#schedule({ kind: "deliver", time: this.#now + late, seq: 0, from, message });
    }
  }

  #latency(): number {
    let ms = this.#rng.int(this.options.minLatencyMs ?? 1, this.options.maxLatencyMs ?? 10);
    if (this.#faultsOn && this.#rng.chance(this.#faults.delayRate)) ms += this.#rng.int(0, this.#faults.longDelayMs);
    return ms;
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
      membership: (id) => currentMembership(this.#node(id).driver.state),
      partition: (groups) => this.partition(groups),
      heal: () => this.heal(),
      crash: (id, downtimeMs) => {
        const node = this.#node(id);
        this.crash(id);
        this.#schedule({ kind: "restart", time: this.#now + downtimeMs, seq: 0, node });
      },
      restart: (id) => this.restart(id),
      transferLeadership: (from, to) => void this.transferLeadership(from, to),
      proposeConfChange: (on, change) => this.proposeConfChange(on, change),
      after: (ms, action) => this.#schedule({ kind: "action", time: this.#now + ms, seq: 0, action }),
      note: (node, text) => this.#note(node, text),
      setDiskLatency: (id, range) => void (this.#node(id).disk = range),
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
  // Clients

  #clientOperation(client: number): void {
    const node = this.#rng.pick(this.#nodes);
    const opId = this.#nextOpId++;
    const op = this.service.next(this.#rng, client, opId, (node.machine ?? this.service.create()) as SM);
    this.#issue(client, node, op, opId);
  }

  #issue(
    client: number,
    node: SimNode,
    request:
      | { kind: "write"; input: I | undefined; command: C }
      | { kind: "read"; input: I | undefined; read: (machine: SM) => unknown },
    opId: number,
  ): ClientOp {
    const op: ClientOp = {
      client,
      read: request.kind === "read",
      recordId: request.input !== undefined ? this.#recorder.invoke(client, request.input) : undefined,
      opId,
      input: request.input,
      node,
      incarnation: node.incarnation,
      status: "pending",
      output: undefined,
      error: undefined,
    };
    if (request.input !== undefined) this.#recorded.push(op);
    this.#note(node.id, `client ${client} ${this.#describeOp(op)} #${opId}`);
    if (!node.up) {
      // Connection refused: the client waits for its timeout.
      const timeout = this.options.clientTimeoutMs ?? 10 * this.#electionMs;
      this.#schedule({ kind: "clientTimeout", time: this.#now + timeout, seq: 0, op });
      return op;
    }
    node.ops.add(op);
    const now = this.#clock(node);
    if (request.kind === "write") {
      node.driver.propose(this.service.codec.encode(request.command), now, (o) => this.#settleWrite(op, o));
    } else {
      node.driver.read(now, (o) => {
        if (!o.ok) return this.#settleFailure(op, o);
        const value = request.read(node.machine as SM);
        this.#completeOp(op, request.input === undefined ? undefined : this.service.readOutput(request.input, value));
      });
    }
    this.#pump(node);
    return op;
  }

  #settleWrite(op: ClientOp, outcome: Outcome): void {
    if (!outcome.ok) return this.#settleFailure(op, outcome);
    const { opId, result } = outcome.value as { opId: number; result: unknown };
    if (opId !== op.opId) {
      this.#fail(
        "proposal outcome",
        `${op.node.id} answered operation ${op.opId} with the result of operation ${opId}`,
      );
    }
    this.#completeOp(op, op.input === undefined ? undefined : this.service.writeOutput(op.input as I, result));
  }

  #settleFailure(op: ClientOp, outcome: { ok: false; error: unknown }): void {
    if (op.status === "pending") op.error = outcome.error;
    if (outcome.error instanceof OutcomeUnknown) this.#unknownOp(op);
    else this.#failOp(op);
  }

  #completeOp(op: ClientOp, output: unknown): void {
    if (op.status !== "pending") return;
    op.status = "ok";
    op.output = output;
    this.#completed++;
    if (op.recordId !== undefined) this.#recorder.complete(op.recordId, output as O);
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
    op.node.ops.delete(op);
    this.#note(op.node.id, `client ${op.client} ${this.#describeOp(op)} #${op.opId} -> ${op.status}`);
    if (op.client < 0) return;
    // Back off after an error so a leaderless minority is not hammered in a tight loop.
    const pause = op.status === "ok" ? this.#rng.int(0, 20) : this.#rng.int(10, 60);
    this.#schedule({ kind: "client", time: this.#now + pause, seq: 0, client: op.client });
  }

  #describeOp(op: ClientOp): string {
    if (op.input === undefined) return "nop";
    const known = op.status === "ok" ? (op.output as O) : undefined;
    return this.service.describe?.(op.input as I, known) ?? JSON.stringify(op.input);
  }

  #appliedSum(): number {
    let sum = 0;
    for (const n of this.#nodes) sum += n.driver.appliedIndex;
    return sum;
  }

  /** Where each node stands, for the liveness failure message. */
  #lagging(): string {
    return this.#nodes.map((n) => {
      const s = n.driver.state;
      return `${n.id} ${n.up ? s.role.kind : "down"} t${s.term} applied ${n.driver.appliedIndex}`;
    }).join("; ");
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
function view<I, O>(op: ClientOp, applied: ReadonlySet<number>): SimOperation<I, O> {
  return {
    client: op.client,
    input: op.input as I | undefined,
    node: op.node.id,
    get status() {
      return op.status;
    },
    get output() {
      return op.output as O | undefined;
    },
    get error() {
      return op.error;
    },
    get applied() {
      return !op.read && applied.has(op.opId);
    },
  };
}

/** What {@link runSimulation} needs: the cluster options plus the number of steps. */
// deno-lint-ignore no-explicit-any
export interface RunOptions<SM = any, C = any, I = any, O = any> extends SimulatorOptions<SM, C, I, O> {
  /** Events to run with faults on before the liveness check. */
  readonly steps: number;
  /** Whether the calm phase (`epilogue.ts`) runs after the linearizability check (default true). */
  readonly calm?: boolean;
}

/** The outcome of a passing {@link runSimulation}. */
export interface RunReport extends SimulationStats {
  /** The linearizability verdict ("ok", or "unknown" if the search ran out of budget). */
  readonly linearizability: "ok" | "unknown";
}

/**
 * One complete seeded run: `steps` events with the configured faults and
 * clients, then the liveness check, then the linearizability check of the
 * client history, then the calm phase (`epilogue.ts`). Throws {@link InvariantViolation} on any failure.
 */
export function runSimulation<SM, C, I, O>(options: RunOptions<SM, C, I, O>): RunReport {
  const reproduce = options.reproduce ??
    `deno run -A tests/sim_run.ts --seed ${options.seed} --nodes ${options.nodes} --steps ${options.steps} --trace`;
  const sim = new Simulator({ ...options, reproduce });
  sim.runSteps(options.steps);
  sim.checkLiveness();
  const verdict = sim.checkLinearizability();
  if (options.calm !== false) calmPhase(sim);
  return { ...sim.stats(), linearizability: verdict.result === "ok" ? "ok" : "unknown" };
}

/** Re-exported for service authors. */
export type { KvInput, KvOutput };
