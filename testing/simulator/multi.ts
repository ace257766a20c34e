/**
 * The multi-group simulator: many Raft groups on the same simulated
 * processes, each process one {@link HostDriver} (the host rules that ship)
 * over one simulated disk and one network endpoint. Storage crash semantics
 * are shared: an iteration's write covers every group and reaches the disk
 * whole, after a random latency and in order, or — if the process crashes
 * first — not at all, for every group together.
 *
 * Faults: drops, duplicates, long delays, partitions and crashes of whole
 * processes. Quiescence is on (`RaftConfig.quiesce`), so idle groups stop
 * heartbeating and rely on the hosts' failure detector. Checked: Raft's safety
 * per group after every step (`invariants.ts`), check-quorum as an oracle per
 * group (a leader cut off from its quorum steps down in bounded time, also
 * when it was quiescent), linearizability of the clients' history (keys are
 * per group, so the per-key check is a per-group check), and at the end
 * liveness for every group — then, once idle, that every group quiesces.
 *
 * @module
 */

import { makeConfig } from "../../core/config.ts";
import { crc32c } from "../../core/crc32c.ts";
import { allMembers, membershipOf } from "../../core/membership.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import type { Entry, GroupId, HardState, Index, Message, NodeId, RaftEffect, SnapshotMeta } from "../../core/types.ts";
import type { SnapshotInfo, StoreOp } from "../../effects/driver/driver.ts";
import { EventQueue } from "../../effects/driver/event_queue.ts";
import type { Outcome } from "../../effects/driver/requests.ts";
import { chunkMessage } from "../../effects/driver/snapshot_sender.ts";
import { OutcomeUnknown } from "../../effects/errors.ts";
import { HostDriver, type HostWriteUnit } from "../../effects/host/host_driver.ts";
import {
  checkOperations,
  type CheckResult,
  HistoryRecorder,
  type KvInput,
  kvModel,
  type KvOutput,
} from "../linearizability.ts";
import { InvariantChecker, InvariantViolation } from "./invariants.ts";
import { type KvCommand, KvMachine } from "./kv_service.ts";
import { Prng } from "./prng.ts";
import { SimStreams } from "./streams.ts";
import { Trace } from "./trace.ts";

/** How to build a multi-group simulation. */
export interface MultiSimOptions {
  /** Seed of every random choice. */
  readonly seed: number;
  /** Processes, 1–7, named n1…nN; every group has them all as voters. */
  readonly nodes: number;
  /** Groups hosted by every process (1…G). */
  readonly groups: number;
  /** Faults on (drops, duplicates, delays, partitions, crashes). Default true. */
  readonly faults?: boolean;
  /** Concurrent clients (default 4). */
  readonly clients?: number;
  /** Keys per group (default 2). */
  readonly keys?: number;
  /** Snapshot every this many applied entries (default 0: never). */
  readonly snapshotEvery?: number;
  /** Base election timeout (default 200 ms). */
  readonly electionTimeoutMs?: number;
  /** Heartbeat interval (default 40 ms). */
  readonly heartbeatMs?: number;
  /** The command that reproduces the run, for failure messages. */
  readonly reproduce?: string;
}

interface Storage {
  hard: HardState | undefined;
  entries: Entry[];
  snapshot: { readonly info: SnapshotInfo; readonly data: Uint8Array } | undefined;
}

interface Proc {
  readonly id: NodeId;
  up: boolean;
  incarnation: number;
  host: HostDriver;
  readonly storage: Map<GroupId, Storage>;
  machines: Map<GroupId, KvMachine>;
  receiving: Map<GroupId, { meta: SnapshotMeta; chunks: Uint8Array[] }>;
  /** Per group, the snapshots its streams to followers hold (in memory: lost in a crash). */
  streams: Map<GroupId, SimStreams>;
  lastWriteAt: number;
  tickAt: number;
  tickGen: number;
  partition: number;
  readonly commitSeen: Map<GroupId, Index>;
  readonly cutOffSince: Map<GroupId, number>;
}

interface ClientOp {
  readonly client: number;
  readonly record: number | undefined;
  readonly opId: number;
  readonly read: boolean;
  readonly proc: Proc;
  status: "pending" | "ok" | "failed" | "unknown";
}

type Event =
  | { kind: "deliver"; time: number; seq: number; from: Proc; message: Message }
  | { kind: "tick"; time: number; seq: number; proc: Proc; incarnation: number; gen: number }
  | { kind: "write"; time: number; seq: number; proc: Proc; incarnation: number; unit: HostWriteUnit }
  | {
    kind: "unreachable";
    time: number;
    seq: number;
    proc: Proc;
    incarnation: number;
    group: GroupId;
    peer: NodeId;
  }
  | { kind: "client"; time: number; seq: number; client: number }
  | { kind: "timeout"; time: number; seq: number; op: ClientOp }
  | { kind: "fault"; time: number; seq: number }
  | { kind: "restart"; time: number; seq: number; proc: Proc };

/** Counters of a finished run. */
export interface MultiSimReport {
  /** Events that did something. */
  readonly steps: number;
  /** Virtual time, ms. */
  readonly virtualTimeMs: number;
  /** Crashes and partitions injected. */
  readonly faults: number;
  /** Client operations answered. */
  readonly completed: number;
  /** Highest commit index over all groups. */
  readonly committed: Index;
  /** Messages delivered per second of virtual time once every group was quiescent. */
  readonly quiescentMessagesPerSecond: number;
  /** The linearizability verdict ("unknown" if the search ran out of budget). */
  readonly linearizability: "ok" | "unknown";
}

/** Many groups on a few simulated processes. */
export class MultiSimulator {
  /** The run's settings. */
  readonly options: MultiSimOptions;
  readonly #rng: Prng;
  readonly #queue = new EventQueue<Event>();
  readonly #procs: Proc[] = [];
  readonly #byId = new Map<NodeId, Proc>();
  readonly #checkers = new Map<GroupId, InvariantChecker>();
  readonly #trace = new Trace(80);
  readonly #recorder: HistoryRecorder<KvInput, KvOutput>;
  readonly #ops: ClientOp[] = [];
  readonly #appliedOps = new Set<number>();
  readonly #electionMs: number;
  readonly #heartbeatMs: number;
  #now = 0;
  #steps = 0;
  #faultsOn: boolean;
  #clientsOn = true;
  #nextOpId = 1;
  #nextValue = 1;
  #faults = 0;
  #completed = 0;
  #delivered = 0;
  #tickAt = -1;
  #tick = 0;

  /** Boots every process with every group, from empty storage. */
  constructor(options: MultiSimOptions) {
    if (!(options.nodes >= 1 && options.nodes <= 7)) throw new RangeError(`nodes must be 1–7, got ${options.nodes}`);
    if (!(options.groups >= 1)) throw new RangeError(`groups must be >= 1, got ${options.groups}`);
    this.options = options;
    this.#rng = new Prng(options.seed);
    this.#electionMs = options.electionTimeoutMs ?? 200;
    this.#heartbeatMs = options.heartbeatMs ?? 40;
    this.#faultsOn = options.faults ?? true;
    this.#recorder = new HistoryRecorder((): number => {
      if (this.#tickAt !== this.#now) {
        this.#tickAt = this.#now;
        this.#tick = 0;
      }
      return this.#now + Math.min(this.#tick++, 4095) / 4096;
    });
    for (let g = 1; g <= options.groups; g++) this.#checkers.set(g, new InvariantChecker(this.#failIn(g)));
    for (let i = 1; i <= options.nodes; i++) {
      const proc: Proc = {
        id: `n${i}`,
        up: false,
        incarnation: 0,
        host: undefined as unknown as HostDriver,
        storage: new Map(),
        machines: new Map(),
        receiving: new Map(),
        streams: new Map(),
        lastWriteAt: 0,
        tickAt: Infinity,
        tickGen: 0,
        partition: 0,
        commitSeen: new Map(),
        cutOffSince: new Map(),
      };
      for (let g = 1; g <= options.groups; g++) {
        proc.storage.set(g, { hard: undefined, entries: [], snapshot: undefined });
      }
      this.#procs.push(proc);
      this.#byId.set(proc.id, proc);
    }
    for (const p of this.#procs) this.#boot(p);
    for (let c = 0; c < (options.clients ?? 4); c++) {
      this.#push({ kind: "client", time: this.#rng.int(0, 50), seq: 0, client: c });
    }
    if (this.#faultsOn) this.#scheduleFault();
  }

  /** Virtual time, ms. */
  get now(): number {
    return this.#now;
  }

  /** The core state of `group` on `node`. */
  state(node: NodeId, group: GroupId): RaftState {
    return this.#byId.get(node)!.host.driver(group)!.state;
  }

  /** The running leader of `group` with the highest term, if any. */
  leader(group: GroupId): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const p of this.#procs) {
      const s = p.up ? p.host.driver(group)?.state : undefined;
      if (s?.role.kind === "leader" && (!best || s.term > best.term)) best = { id: p.id, term: s.term };
    }
    return best?.id;
  }

  /** Runs `n` steps with faults and clients. */
  runSteps(n: number): void {
    const target = this.#steps + n;
    while (this.#steps < target && this.#next()) { /* go on */ }
  }

  /** Runs every event in the next `ms` of virtual time. */
  runFor(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const e = this.#queue.peek();
      if (!e || e.time > until) break;
      this.#next();
    }
    this.#now = until;
  }

  /**
   * Liveness, quiescence and failover, once faults and clients stop, the
   * network heals and every process is up: each group elects one leader and
   * a write through it is applied by every member; idle, every group
   * quiesces on every process within 30 election timeouts and stays so; then
   * the process leading the most groups crashes, and within 10 election
   * timeouts every group has a leader among the others that gets a write
   * applied by every live member (the failure detector woke the quiescent
   * followers); restarted, everything quiesces again. Returns the messages per
   * second crossing the network while all were quiescent.
   */
  checkLiveness(): number {
    this.#faultsOn = false;
    this.#clientsOn = false;
    for (const p of this.#procs) p.partition = 0;
    for (const p of this.#procs) if (!p.up) this.#boot(p);
    this.#awaitGroups(60, "liveness");
    this.#awaitQuiescence();
    const before = this.#delivered;
    this.runFor(5_000);
    if (!this.#allQuiescent()) this.#fail(0, "quiescence", "an idle group woke up with nothing to do");
    const perSecond = (this.#delivered - before) / 5;
    if (this.#procs.length >= 3) {
      const led = (p: Proc) => [...this.#checkers.keys()].filter((g) => p.host.driver(g)!.state.role.kind === "leader");
      const victim = this.#procs.reduce((a, b) => (led(b).length > led(a).length ? b : a));
      this.#crash(victim);
      this.#awaitGroups(10, "failover of quiescent groups");
      this.#boot(victim);
      this.#awaitQuiescence();
    }
    return perSecond;
  }

  #allQuiescent(): boolean {
    return this.#procs.every((p) => [...this.#checkers.keys()].every((g) => isQuiescent(p.host.driver(g)!.state)));
  }

  /** Every group gets one leader among the live processes and a write applied by every live member, in time. */
  #awaitGroups(timeouts: number, what: string): void {
    const groups = [...this.#checkers.keys()];
    const probes = new Map<GroupId, { op: ClientOp; leader: NodeId }>();
    const done = new Set<GroupId>();
    const limit = this.#now + timeouts * this.#electionMs;
    while (done.size < groups.length) {
      for (const g of groups) {
        if (done.has(g)) continue;
        const leaders = this.#procs.filter((p) => p.up && p.host.driver(g)!.state.role.kind === "leader");
        if (leaders.length !== 1) continue;
        const leader = leaders[0]!;
        const probe = probes.get(g);
        if (!probe || probe.leader !== leader.id || probe.op.status === "failed" || probe.op.status === "unknown") {
          probes.set(g, { op: this.#issue(-1, leader, g, undefined), leader: leader.id });
          continue;
        }
        if (probe.op.status !== "ok") continue;
        const target = leader.host.driver(g)!.appliedIndex;
        const members = allMembers(currentMembership(leader.host.driver(g)!.state));
        const live = members.map((id) => this.#byId.get(id)!).filter((p) => p.up);
        if (live.every((p) => p.host.driver(g)!.appliedIndex >= target)) done.add(g);
      }
      const e = this.#queue.peek();
      if (!e || e.time > limit) {
        const missing = groups.filter((g) => !done.has(g));
        this.#fail(
          missing[0]!,
          what,
          `groups ${missing.join(",")}: no leader with a write applied within ${timeouts} election timeouts`,
        );
      }
      this.#next();
    }
  }

  #awaitQuiescence(): void {
    const quiet = this.#now + 30 * this.#electionMs;
    while (!this.#allQuiescent()) {
      const e = this.#queue.peek();
      if (!e || e.time > quiet) {
        const groups = [...this.#checkers.keys()];
        const awake = groups.filter((g) => this.#procs.some((p) => !isQuiescent(p.host.driver(g)!.state)));
        this.#fail(awake[0]!, "quiescence", `groups ${awake.join(",")} still awake after 30 election timeouts idle`);
      }
      this.#next();
    }
  }

  /** Checks the clients' history (keys are per group). */
  checkLinearizability(): CheckResult<KvInput, KvOutput> {
    for (const op of this.#ops) {
      if (op.status === "ok" || op.record === undefined) continue;
      if (op.read || !this.#appliedOps.has(op.opId)) this.#recorder.discard(op.record);
    }
    const result = checkOperations(kvModel, this.#recorder.history(), { maxSteps: 5_000_000 });
    if (result.result === "illegal") this.#fail(0, "linearizability", `\n${result.explanation}`);
    return result;
  }

  /** Counters. */
  report(quiescentMessagesPerSecond: number, linearizability: "ok" | "unknown"): MultiSimReport {
    let committed = 0;
    for (const c of this.#checkers.values()) committed = Math.max(committed, c.committedIndex);
    return {
      steps: this.#steps,
      virtualTimeMs: this.#now,
      faults: this.#faults,
      completed: this.#completed,
      committed,
      quiescentMessagesPerSecond,
      linearizability,
    };
  }

  // ---------------------------------------------------------------------------
  // Processes

  #boot(p: Proc): void {
    p.up = true;
    p.receiving = new Map();
    p.streams = new Map();
    p.machines = new Map();
    p.lastWriteAt = this.#now;
    p.tickAt = Infinity;
    const incarnation = p.incarnation;
    const host = new HostDriver(
      { self: p.id, heartbeatMs: this.#heartbeatMs, failureTimeoutMs: this.#electionMs },
      this.#now,
    );
    p.host = host;
    const voters = membershipOf(this.#procs.map((q) => q.id));
    for (const [g, storage] of p.storage) {
      const snapshot = storage.snapshot;
      if (snapshot && storage.entries.length > 0) {
        const meta = snapshot.info.meta;
        const last = storage.entries[storage.entries.length - 1]!;
        const covering = storage.entries.find((e) => e.index === meta.index);
        if (last.index < meta.index || (covering !== undefined && covering.term !== meta.term)) storage.entries = [];
      }
      p.machines.set(g, snapshot ? KvMachine.restore(snapshot.data) : new KvMachine());
      const driver = host.addGroup(
        g,
        {
          config: makeConfig({
            id: p.id,
            group: g,
            electionTimeoutMs: this.#electionMs,
            heartbeatMs: this.#heartbeatMs,
            quiesce: true,
            snapshotEvery: this.options.snapshotEvery ?? 0,
            keepAfterSnapshot: 2,
            seed: this.#rng.int(1, 0x7fffffff),
          }),
          membership: voters,
          snapshotChunkBytes: 64,
          requestTimeoutMs: 10 * this.#electionMs,
          onStep: (input, effects, state) => {
            if (p.incarnation !== incarnation) return;
            this.#trace.add({ kind: "input", time: this.#now, node: `${p.id}/g${g}`, value: input });
            this.#observe(p, g, effects, state);
          },
        },
        { hardState: storage.hard, entries: storage.entries.slice(), snapshot: snapshot?.info },
        this.#now,
      );
      p.commitSeen.set(g, driver.state.commit);
    }
    this.#note(p.id, `boot (incarnation ${incarnation})`);
    this.#pump(p);
  }

  #crash(p: Proc): void {
    if (!p.up) return;
    p.up = false;
    p.incarnation++;
    p.cutOffSince.clear();
    for (const op of this.#ops) if (op.proc === p && op.status === "pending") this.#settle(op, "unknown");
    this.#faults++;
    this.#note(p.id, "crash (unsynced writes of every group lost)");
  }

  #observe(p: Proc, g: GroupId, effects: readonly RaftEffect[], s: RaftState): void {
    const checker = this.#checkers.get(g)!;
    for (const e of effects) {
      if (e.type === "RoleChanged" && e.role === "leader") checker.onLeader(p.id, e.term, s.log);
    }
    const seen = p.commitSeen.get(g) ?? 0;
    if (s.commit !== seen) {
      checker.onCommit(p.id, s.term, seen, s.commit, s.log);
      p.commitSeen.set(g, s.commit);
    }
    this.#checkQuorumOracle(p, g, s);
  }

  /** A leader cut off from a quorum of its group's voters steps down in bounded time, quiescent or not. */
  #checkQuorumOracle(p: Proc, g: GroupId, s: RaftState): void {
    if (s.role.kind !== "leader") return void p.cutOffSince.delete(g);
    const m = currentMembership(s);
    const reach = m.voters.filter((id) => {
      const q = this.#byId.get(id)!;
      return id === p.id || (q.up && q.partition === p.partition);
    }).length;
    if (reach > m.voters.length / 2) return void p.cutOffSince.delete(g);
    const since = p.cutOffSince.get(g) ?? this.#now;
    p.cutOffSince.set(g, since);
    // Detection (one timeout of silence) and a quorum round, plus what a delayed answer can keep alive.
    const limit = 3 * this.#electionMs + 300;
    if (this.#now - since > limit) {
      this.#fail(g, "check-quorum", `${p.id} still leads group ${g} term ${s.term} ${limit}ms after losing its quorum`);
    }
  }

  /** Carries out the host's work until it has none, then arms its tick. */
  #pump(p: Proc): void {
    const incarnation = p.incarnation;
    for (let rounds = 0; p.up && p.incarnation === incarnation && p.host.hasWork; rounds++) {
      if (rounds > 100_000) this.#fail(0, "host loop", `${p.id}'s host keeps producing work`);
      const w = p.host.take();
      for (const m of w.sends) this.#transmit(p, m);
      for (const { group, op } of w.receive) this.#storeOp(p, group, op);
      if (w.write) {
        const at = Math.max(this.#now + this.#rng.int(1, 6), p.lastWriteAt);
        p.lastWriteAt = at;
        this.#push({ kind: "write", time: at, seq: 0, proc: p, incarnation, unit: w.write });
      }
      for (const { group, entries } of w.applies) this.#apply(p, group, entries);
      for (const g of w.captures) this.#capture(p, g);
      for (const { group, chunk: c } of w.chunks) {
        const stored = p.storage.get(group)!.snapshot;
        let streams = p.streams.get(group);
        if (streams === undefined) p.streams.set(group, streams = new SimStreams());
        const data = streams.read(c, stored && { meta: stored.info.meta, data: stored.data });
        // Told asynchronously, as the production loop's queue tells it.
        if (data === undefined) {
          this.#push({ kind: "unreachable", time: this.#now, seq: 0, proc: p, incarnation, group, peer: c.header.to });
        } else this.#transmit(p, chunkMessage(c.header, c.meta, c.chunk, data, c.checksum));
      }
      for (const [group, streams] of p.streams) {
        const d = p.host.driver(group);
        if (d === undefined) p.streams.delete(group);
        else streams.sweep((to) => d.streaming(to));
      }
    }
    if (!p.up || p.incarnation !== incarnation) return;
    const at = Math.max(this.#now, p.host.nextDeadline());
    if (at === p.tickAt) return;
    p.tickAt = at;
    this.#push({ kind: "tick", time: at, seq: 0, proc: p, incarnation, gen: ++p.tickGen });
  }

  #completeWrite(p: Proc, unit: HostWriteUnit): void {
    for (const { group, unit: u } of unit.parts) {
      const storage = p.storage.get(group)!;
      for (const stage of u.stages) {
        const batch = stage.batch;
        if (batch) {
          if (batch.truncateFrom !== undefined) {
            const first = storage.entries[0]?.index;
            if (first !== undefined) {
              storage.entries.length = Math.min(storage.entries.length, Math.max(0, batch.truncateFrom - first));
            }
          }
          if (batch.entries.length > 0) {
            const last = storage.entries[storage.entries.length - 1];
            const meta = storage.snapshot?.info.meta;
            const prevTerm = last?.term ?? (meta?.index === batch.entries[0]!.index - 1 ? meta.term : undefined);
            this.#checkers.get(group)!.onAppend(p.id, batch.entries, prevTerm);
            for (const e of batch.entries) storage.entries.push(e);
          }
          if (batch.hardState) storage.hard = batch.hardState;
        }
        if (stage.compactTo > 0) {
          const first = storage.entries[0]?.index;
          if (first !== undefined && stage.compactTo >= first) {
            storage.entries = storage.entries.slice(stage.compactTo - first + 1);
          }
        }
      }
    }
    p.host.written(unit.id, this.#now);
  }

  #apply(p: Proc, g: GroupId, entries: readonly Entry[]): void {
    const machine = p.machines.get(g)!;
    const checker = this.#checkers.get(g)!;
    p.host.applyAll(g, entries, (entry) => {
      checker.onApply(p.id, entry);
      const command = JSON.parse(new TextDecoder().decode(entry.data)) as KvCommand;
      this.#appliedOps.add(command.opId);
      return { opId: command.opId, result: machine.apply(command) };
    });
    for (const e of entries) if (e.kind !== "command") checker.onApply(p.id, e);
  }

  #capture(p: Proc, g: GroupId): void {
    const meta = p.host.call(g, (d) => d.captureMeta());
    if (meta === undefined) return;
    const data = p.machines.get(g)!.serialize();
    const info: SnapshotInfo = { meta, size: data.length, checksum: crc32c(data) };
    p.storage.get(g)!.snapshot = { info, data };
    p.host.call(g, (d) => d.snapshotStored(info, this.#now));
  }

  #storeOp(p: Proc, g: GroupId, op: StoreOp): void {
    switch (op.op) {
      case "abort":
        p.receiving.delete(g);
        return;
      case "begin":
        p.receiving.set(g, { meta: op.meta, chunks: [] });
        return;
      case "write":
        p.receiving.get(g)?.chunks.push(op.data);
        return;
      case "finish": {
        const r = p.receiving.get(g);
        p.receiving.delete(g);
        if (!r) return;
        const data = new Uint8Array(r.chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of r.chunks) {
          data.set(c, at);
          at += c.length;
        }
        const checksum = crc32c(data);
        if (op.checksum !== undefined && op.checksum !== checksum) {
          p.host.call(g, (d) => d.receiveRefused(op.from, op.meta, "the snapshot failed its checksum"));
          return;
        }
        this.#checkers.get(g)!.onRestore(p.id, op.meta.index, op.meta.term);
        const info: SnapshotInfo = { meta: op.meta, size: data.length, checksum };
        p.storage.get(g)!.snapshot = { info, data };
        p.machines.set(g, KvMachine.restore(data));
        p.host.call(g, (d) => d.snapshotInstalled(info, this.#now));
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Network, faults, clients

  #transmit(from: Proc, m: Message): void {
    const to = this.#byId.get(m.to);
    if (!to || to === from) return;
    if (!to.up) return; // Connection refused; the failure detector notices the silence.
    if (this.#faultsOn && this.#rng.chance(0.04)) return;
    if (to.partition !== from.partition) return;
    const copies = this.#faultsOn && this.#rng.chance(0.02) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let ms = this.#rng.int(1, 10);
      if (this.#faultsOn && this.#rng.chance(0.03)) ms += this.#rng.int(0, 300);
      this.#push({ kind: "deliver", time: this.#now + ms, seq: 0, from, message: m });
    }
  }

  #scheduleFault(): void {
    this.#push({ kind: "fault", time: this.#now + this.#rng.int(100, 800), seq: 0 });
  }

  #fault(): void {
    const r = this.#rng.next();
    if (r < 0.35) {
      const p = this.#rng.pick(this.#procs.filter((q) => q.up));
      if (!p) return;
      this.#crash(p);
      this.#push({ kind: "restart", time: this.#now + this.#rng.int(5, 1500), seq: 0, proc: p });
    } else if (r < 0.7) {
      for (const p of this.#procs) p.partition = this.#rng.int(0, 1);
      this.#faults++;
      this.#note("*", `partition ${this.#procs.map((p) => `${p.id}:${p.partition}`).join(" ")}`);
    } else {
      for (const p of this.#procs) p.partition = 0;
      this.#note("*", "heal");
    }
  }

  #clientOperation(client: number): void {
    const p = this.#rng.pick(this.#procs);
    const g = this.#rng.int(1, this.options.groups);
    this.#issue(client, p, g, this.#workload(g));
  }

  #workload(g: GroupId): { input: KvInput; command: ((opId: number) => KvCommand) | undefined } {
    const key = `g${g}/k${this.#rng.int(1, this.options.keys ?? 2)}`;
    const r = this.#rng.next();
    const value = `v${this.#nextValue++}`;
    if (r < 0.4) return { input: { op: "put", key, value }, command: (opId) => ({ opId, op: "put", key, value }) };
    if (r < 0.6) {
      const prev = this.#rng.chance(0.5) ? undefined : `v${this.#rng.int(1, this.#nextValue)}`;
      return { input: { op: "cas", key, prev, value }, command: (opId) => ({ opId, op: "cas", key, prev, value }) };
    }
    return { input: { op: "get", key }, command: undefined };
  }

  #issue(
    client: number,
    p: Proc,
    g: GroupId,
    w: { input: KvInput; command: ((opId: number) => KvCommand) | undefined } | undefined,
  ): ClientOp {
    const opId = this.#nextOpId++;
    const read = w !== undefined && w.command === undefined;
    const op: ClientOp = {
      client,
      record: w ? this.#recorder.invoke(client, w.input) : undefined,
      opId,
      read,
      proc: p,
      status: "pending",
    };
    if (w) this.#ops.push(op);
    this.#push({ kind: "timeout", time: this.#now + 10 * this.#electionMs, seq: 0, op });
    if (!p.up) return op;
    if (read) {
      const key = (w!.input as { key: string }).key;
      p.host.call(g, (d) =>
        d.read(this.#now, (o) => {
          if (!o.ok) return this.#settleFailure(op, o);
          this.#complete(op, { value: p.machines.get(g)!.values.get(key) });
        }));
    } else {
      const command: KvCommand = w?.command ? w.command(opId) : { opId, op: "nop" };
      const data = new TextEncoder().encode(JSON.stringify(command));
      p.host.call(g, (d) =>
        d.propose(data, this.#now, (o: Outcome) => {
          if (!o.ok) return this.#settleFailure(op, o);
          const v = o.value as { opId: number; result: KvOutput };
          if (v.opId !== opId) this.#fail(g, "proposal outcome", `operation ${opId} got the result of ${v.opId}`);
          this.#complete(op, v.result);
        }));
    }
    this.#pump(p);
    return op;
  }

  #settleFailure(op: ClientOp, o: { ok: false; error: unknown }): void {
    this.#settle(op, o.error instanceof OutcomeUnknown ? "unknown" : "failed");
  }

  #complete(op: ClientOp, output: KvOutput): void {
    if (op.status !== "pending") return;
    if (op.record !== undefined) this.#recorder.complete(op.record, output);
    this.#completed++;
    this.#settle(op, "ok");
  }

  #settle(op: ClientOp, status: ClientOp["status"]): void {
    if (op.status !== "pending") return;
    op.status = status;
    if (op.client < 0) return;
    const pause = status === "ok" ? this.#rng.int(0, 20) : this.#rng.int(10, 60);
    this.#push({ kind: "client", time: this.#now + pause, seq: 0, client: op.client });
  }

  // ---------------------------------------------------------------------------
  // The event loop

  #push(e: Event): void {
    this.#queue.push(e);
  }

  #next(): boolean {
    const e = this.#queue.pop();
    if (!e) return false;
    this.#now = Math.max(this.#now, e.time);
    if (this.#handle(e)) this.#steps++;
    return true;
  }

  #handle(e: Event): boolean {
    switch (e.kind) {
      case "deliver": {
        const to = this.#byId.get(e.message.to)!;
        if (!to.up || to.partition !== e.from.partition) return false;
        this.#delivered++;
        to.host.receive(e.message, this.#now);
        this.#pump(to);
        return true;
      }
      case "tick": {
        const p = e.proc;
        if (!p.up || p.incarnation !== e.incarnation || p.tickGen !== e.gen) return false;
        p.tickAt = Infinity;
        p.host.tick(this.#now);
        this.#pump(p);
        return true;
      }
      case "write": {
        const p = e.proc;
        if (!p.up || p.incarnation !== e.incarnation) return false;
        this.#completeWrite(p, e.unit);
        this.#pump(p);
        return true;
      }
      case "unreachable": {
        const p = e.proc;
        if (!p.up || p.incarnation !== e.incarnation) return false;
        p.host.unreachable(e.peer, this.#now, e.group);
        this.#pump(p);
        return true;
      }
      case "client":
        if (!this.#clientsOn) return false;
        this.#clientOperation(e.client);
        return true;
      case "timeout":
        if (e.op.status !== "pending") return false;
        this.#settle(e.op, "unknown");
        return true;
      case "fault":
        if (!this.#faultsOn) return false;
        this.#fault();
        this.#scheduleFault();
        return true;
      case "restart":
        if (e.proc.up) return false;
        this.#boot(e.proc);
        return true;
    }
  }

  #note(node: string, text: string): void {
    this.#trace.add({ kind: "note", time: this.#now, node, value: text });
  }

  #failIn(g: GroupId): (invariant: string, detail: string) => never {
    return (invariant, detail) => this.#fail(g, invariant, detail);
  }

  #fail(g: GroupId, invariant: string, detail: string): never {
    const o = this.options;
    const reproduce = o.reproduce ??
      `deno run -A tests/sim_multi_run.ts --seed ${o.seed} --nodes ${o.nodes} --groups ${o.groups}`;
    throw new InvariantViolation(o.seed, `group ${g}: ${invariant}`, detail, this.#trace.lines(), reproduce);
  }
}

/** What {@link runMultiSimulation} needs: the cluster options and the steps to run with faults. */
export interface MultiRunOptions extends MultiSimOptions {
  /** Events with faults and clients before the liveness check. */
  readonly steps: number;
}

/** One seeded multi-group run: faults, then liveness and quiescence, then linearizability. Throws on any violation. */
export function runMultiSimulation(options: MultiRunOptions): MultiSimReport {
  const sim = new MultiSimulator(options);
  sim.runSteps(options.steps);
  const perSecond = sim.checkLiveness();
  const verdict = sim.checkLinearizability();
  return sim.report(perSecond, verdict.result === "ok" ? "ok" : "unknown");
}
