/**
 * The host driver: many Raft groups in one process, sans-IO. It owns one
 * {@link NodeDriver} per group and merges their work per iteration, so that
 * the shell (the production host loop, or the simulator) does for all groups
 * together what a single node does alone:
 *
 * - one write of every group's {@link WriteUnit} and one sync
 *   ({@link HostWriteUnit}), reported durable once for all;
 * - every group's messages in one list, so a transport that flushes what was
 *   sent in one task as one write batches them per destination process;
 * - coalesced heartbeats (`coalesce.ts`): the empty AppendEntries of all
 *   groups to one peer process in one iteration leave as one `Heartbeats`
 *   message, their successful answers as one `HeartbeatResponses`, and a
 *   received one is expanded back, so each group steps what its peer sent;
 * - one timer for the host: group timers live in a heap here, their deadlines
 *   rounded up to `timerGranularityMs` so that groups armed close together
 *   fire in the same iteration — never early, so no timeout is shortened —
 *   except the leaders' heartbeat timers, which are aligned on a host-wide
 *   tick (multiples of `heartbeatMs`): every group's heartbeat round is due
 *   in the same iteration and so leaves in the same coalesced message. A
 *   heartbeat may go up to half its interval early: that only sends a round
 *   sooner (a lease is dated by the round's own send time, `core/reads.ts`);
 * - at most `electionsPerTick` election timeouts fire per tick: the rest are
 *   pushed back by a random share of an election timeout (only lengthened, as
 *   a lost message would), so that thousands of groups whose timers fell due
 *   together (added together, or a slow iteration) campaign in waves, not in
 *   one storm of split votes whose iterations outlast the timeouts again;
 * - the failure detector ({@link Liveness}): beacons between processes, and
 *   `PeerDown` to every group when a peer process goes silent (quiescent groups
 *   wake on it, `core/quiesce.ts`), `PeerUp` to the followers it woke when the
 *   peer is heard again. A frame that reached this process but waits behind
 *   a backlog counts as heard ({@link heard}), not only once it is handled.
 *
 * A node id is the process; a group is a Raft instance on it, with its own
 * membership. Messages of a group this host does not run are dropped.
 *
 * @module
 */

import { allMembers } from "../../core/membership.ts";
import { membershipOf } from "../../core/state.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import { nextRandom, randomBelow } from "../../core/rng.ts";
import type { Entry, GroupId, Message, NodeId, TimerKind } from "../../core/types.ts";
import {
  type ChunkSend,
  type DriverOptions,
  NodeDriver,
  type Recovered,
  type StoreOp,
  type WriteUnit,
} from "../driver/driver.ts";
import { EventQueue } from "../driver/event_queue.ts";
import type { RaftEvent } from "../events.ts";
import { coalesce, expand } from "./coalesce.ts";
import { Liveness } from "./liveness.ts";

/** Settings of a host. */
export interface HostDriverOptions {
  /** This process's node id (the same in every group it hosts). */
  readonly self: NodeId;
  /** Beacon interval between processes (use the groups' heartbeat interval). */
  readonly heartbeatMs: number;
  /** A peer process silent this long is down (use the groups' election timeout). */
  readonly failureTimeoutMs: number;
  /** Group timers are rounded up to a multiple of this, so they fire together (default heartbeatMs / 4). */
  readonly timerGranularityMs?: number;
  /**
   * Coalesce heartbeats and their answers per peer process (default true).
   * Off, every group's messages leave as they are: for a cluster whose other
   * processes run a version without the `Heartbeats` messages.
   */
  readonly coalesceHeartbeats?: boolean;
  /** Election timeouts fired per {@link HostDriver.tick} at most; the rest are deferred (default 128). */
  readonly electionsPerTick?: number;
  /** Seeds the deferred election timeouts' jitter (default: from `self`, so a run is reproducible). */
  readonly seed?: number;
  /** Hears every group's events. */
  readonly onEvent?: (group: GroupId, event: RaftEvent) => void;
}

/** One iteration's write for every group: each group's unit in the order taken, then one sync. */
export interface HostWriteUnit {
  /** Identifies the unit in {@link HostDriver.written}. */
  readonly id: number;
  /**
   * The groups' units, each with the driver that took it: a group removed
   * (and perhaps hosted again) while the write was in flight is not told of
   * its earlier incarnation's unit.
   */
  readonly parts: readonly { readonly group: GroupId; readonly unit: WriteUnit; readonly driver: NodeDriver }[];
}

/** The I/O the host's groups ask for, gathered since the last {@link HostDriver.take}. */
export interface HostWork {
  /** Messages to transmit now, in order (all groups, beacons included). */
  readonly sends: readonly Message[];
  /** The one write to make durable (then {@link HostDriver.written}), if any. */
  readonly write: HostWriteUnit | undefined;
  /** Committed entries to apply, per group, in order ({@link HostDriver.applyAll}). */
  readonly applies: readonly { readonly group: GroupId; readonly entries: readonly Entry[] }[];
  /** Groups whose state machine is to be snapshotted ({@link HostDriver.captureMeta}). */
  readonly captures: readonly GroupId[];
  /** Snapshot chunks to read and send, per group. */
  readonly chunks: readonly { readonly group: GroupId; readonly chunk: ChunkSend }[];
  /** Operations on snapshots being received, per group, in order. */
  readonly receive: readonly { readonly group: GroupId; readonly op: StoreOp }[];
}

interface TimerSlot {
  readonly group: Slot;
  readonly kind: TimerKind | "tick";
  deadline: number;
  queuedAt: number;
  gen: number;
  /** When it last fired, as scheduled (until the take that follows): the base a heartbeat is re-armed from. */
  firedAt: number | undefined;
}

interface TimerEntry {
  readonly time: number;
  seq: number;
  readonly slot: TimerSlot;
  readonly gen: number;
}

interface Slot {
  readonly group: GroupId;
  readonly driver: NodeDriver;
  readonly timers: Map<TimerKind | "tick", TimerSlot>;
  removed: boolean;
}

/** Many groups' drivers behind one set of I/O. */
export class HostDriver {
  readonly #options: HostDriverOptions;
  readonly #groups = new Map<GroupId, Slot>();
  readonly #touched = new Set<Slot>();
  readonly #heap = new EventQueue<TimerEntry>();
  readonly #liveness: Liveness;
  readonly #granularity: number;
  readonly #pending: HostWriteUnit[] = [];
  #beacons: Message[] = [];
  #nextUnit = 1;
  #peersDirty = true;
  #now: number;
  #rng: number;
  /** Messages for a group this host does not run (dropped). */
  unknownGroup = 0;
  /** Group messages sent inside coalesced messages (each saved a message on the wire, but one per coalesced message). */
  coalescedOut = 0;
  /** Group messages received inside coalesced messages. */
  coalescedIn = 0;
  /** Coalesced messages received (each carried one or more of {@link coalescedIn}). */
  coalescedMessagesIn = 0;

  /** A host with no groups yet, at time `now`. */
  constructor(options: HostDriverOptions, now: number) {
    this.#options = options;
    this.#now = now;
    this.#granularity = Math.max(1, options.timerGranularityMs ?? Math.floor(options.heartbeatMs / 4));
    this.#liveness = new Liveness(options.heartbeatMs, options.failureTimeoutMs, now);
    let seed = options.seed ?? 0;
    if (options.seed === undefined) {
      for (const c of options.self) {
        seed = (Math.imul(seed, 31) + c.charCodeAt(0)) | 0;
      }
    }
    this.#rng = nextRandom(seed);
  }

  /** This process's node id. */
  get self(): NodeId {
    return this.#options.self;
  }

  /** The ids of the groups hosted. */
  groupIds(): GroupId[] {
    return [...this.#groups.keys()];
  }

  /** The driver of `group`, if hosted. */
  driver(group: GroupId): NodeDriver | undefined {
    return this.#groups.get(group)?.driver;
  }

  /** The timers armed for `group` (core timers, and `"tick"` for its driver's own deadlines), for tests and diagnostics. */
  armedTimers(group: GroupId): (TimerKind | "tick")[] {
    const slot = this.#groups.get(group);
    if (!slot) return [];
    return [...slot.timers].filter(([, t]) => t.deadline !== Infinity).map(([kind]) => kind);
  }

  /** Whether the peer process is considered up by the failure detector. */
  peerUp(peer: NodeId): boolean {
    return this.#liveness.isUp(peer);
  }

  /**
   * Starts hosting `group` from what the shell recovered for it. The group's
   * core config must name this host's node id and the group.
   */
  addGroup(group: GroupId, options: DriverOptions, recovered: Recovered, now: number): NodeDriver {
    if (this.#groups.has(group)) throw new RangeError(`group ${group} is already hosted`);
    if (options.config.group !== group || options.config.id !== this.#options.self) {
      throw new RangeError(`group ${group}'s config names group ${options.config.group} on ${options.config.id}`);
    }
    this.#now = now;
    const onEvent = this.#options.onEvent;
    const driver = new NodeDriver(
      {
        ...options,
        onEvent: (event) => {
          if (event.type === "membership") this.#peersDirty = true;
          options.onEvent?.(event);
          onEvent?.(group, event);
        },
      },
      recovered,
      now,
    );
    const slot: Slot = { group, driver, timers: new Map(), removed: false };
    this.#groups.set(group, slot);
    this.#peersDirty = true;
    this.#touched.add(slot);
    return driver;
  }

  /** Stops hosting `group`: its driver stops (pending requests fail), later work and messages for it are dropped. */
  removeGroup(group: GroupId, error?: unknown): void {
    const slot = this.#groups.get(group);
    if (!slot) return;
    slot.removed = true;
    slot.driver.stop(error);
    for (const t of slot.timers.values()) t.gen++;
    this.#groups.delete(group);
    this.#touched.delete(slot);
    this.#peersDirty = true;
  }

  /** Runs `f` on `group`'s driver (an API call, or a completion of the shell's I/O) and notes the work it made. */
  call<A>(group: GroupId, f: (driver: NodeDriver) => A): A | undefined {
    const slot = this.#groups.get(group);
    if (!slot) return undefined;
    this.#touched.add(slot);
    return f(slot.driver);
  }

  /** Applies `entries` for `group` through `apply` (see {@link NodeDriver.applyAll}). */
  applyAll(group: GroupId, entries: readonly Entry[], apply: (entry: Entry) => unknown): Promise<void> | undefined {
    return this.call(group, (d) => d.applyAll(entries, apply));
  }

  // ---------------------------------------------------------------------------
  // Inputs

  /**
   * A message arrived: the failure detector hears its sender; its group's
   * driver gets it (each of a coalesced message's, rebuilt, gets its own).
   */
  receive(message: Message, now: number): void {
    this.#now = now;
    this.heard(message.from, now);
    if (message.type === "HostHeartbeat") return;
    if (message.type === "Heartbeats" || message.type === "HeartbeatResponses") {
      const parts = expand(message);
      this.coalescedMessagesIn++;
      this.coalescedIn += parts.length;
      for (const m of parts) this.#deliver(m, now);
      return;
    }
    this.#deliver(message, now);
  }

  /**
   * Something from `peer` reached this process at `at` (host clock), perhaps
   * still queued behind other work: the failure detector hears it. A peer
   * reported down and heard again: the followers its loss woke get `PeerUp`.
   */
  heard(peer: NodeId, at: number): void {
    if (this.#liveness.heard(peer, at)) this.#peerUp(peer, at);
  }

  #peerUp(peer: NodeId, now: number): void {
    for (const slot of this.#groups.values()) {
      const role = slot.driver.state.role;
      if (role.kind !== "follower" || role.wokenBy !== peer) continue;
      this.#touched.add(slot);
      slot.driver.peerUp(peer, now);
    }
  }

  #deliver(message: Message, now: number): void {
    const slot = this.#groups.get(message.group);
    if (!slot) {
      this.unknownGroup++;
      return;
    }
    this.#touched.add(slot);
    slot.driver.receive(message, now);
  }

  /**
   * The transport could not deliver to `peer`: groups whose sends failed hear
   * it (`group`); a lost connection (no group) reaches the groups this host
   * leads and that are not quiescent, the ones whose replication it concerns.
   */
  unreachable(peer: NodeId, now: number, group?: GroupId): void {
    this.#now = now;
    if (group !== undefined) return void this.call(group, (d) => d.unreachable(peer, now));
    for (const slot of this.#groups.values()) {
      const role = slot.driver.state.role;
      if (role.kind !== "leader" || role.quiescent) continue;
      if (!role.progress.has(peer)) continue;
      this.#touched.add(slot);
      slot.driver.unreachable(peer, now);
    }
  }

  /**
   * The transport refused `message` (its peer is unreachable): the groups that
   * sent it hear it, each of a coalesced message's; a lost beacon concerns
   * the connection ({@link unreachable} without a group).
   */
  sendFailed(message: Message, now: number): void {
    if (message.type === "HostHeartbeat") return this.unreachable(message.to, now);
    if (message.type !== "Heartbeats" && message.type !== "HeartbeatResponses") {
      return this.unreachable(message.to, now, message.group);
    }
    const groups = new Set<GroupId>();
    for (const x of message.items) groups.add(x.group);
    for (const g of groups) this.unreachable(message.to, now, g);
  }

  /** Time passed: due group timers and deadlines fire, beacons go out, lost peers are reported to every group. */
  tick(now: number): void {
    this.#now = now;
    const budget = this.#options.electionsPerTick ?? 128;
    let elections = 0;
    for (;;) {
      const top = this.#heap.peek();
      if (!top || top.time > now) break;
      this.#heap.pop();
      const t = top.slot;
      if (top.gen !== t.gen || t.group.removed) continue;
      if (t.deadline > now) {
        // Re-armed later while queued (a follower's election timer on every append): wait the rest.
        t.queuedAt = t.deadline;
        this.#heap.push({ time: t.deadline, seq: 0, slot: t, gen: t.gen });
        continue;
      }
      t.queuedAt = Infinity;
      t.deadline = Infinity;
      if (t.kind === "election" && !isQuiescent(t.group.driver.state) && ++elections > budget) {
        // Over this tick's share: later, by a random part of a timeout (a timeout only ever lengthens).
        this.#rng = nextRandom(this.#rng);
        this.#arm(t.group, "election", now, this.#granularity + randomBelow(this.#rng, this.#options.failureTimeoutMs));
        continue;
      }
      t.firedAt = top.time;
      this.#touched.add(t.group);
      if (t.kind === "tick") t.group.driver.tick(now);
      else t.group.driver.timer(t.kind, now);
    }
    if (this.#peersDirty) this.#watchPeers(now);
    const due = this.#liveness.due(now);
    for (const peer of due.beacons) {
      this.#beacons.push({ type: "HostHeartbeat", group: 0, from: this.#options.self, to: peer, term: 0 });
    }
    for (const peer of due.down) {
      for (const slot of this.#groups.values()) {
        this.#touched.add(slot);
        slot.driver.peerDown(peer, now);
      }
    }
  }

  /** When {@link tick} next has something to do (host clock). */
  nextDeadline(): number {
    let next = this.#liveness.nextDeadline();
    let top = this.#heap.peek();
    // Cancelled timers' entries go now, not at their time: a wake-up for nothing each.
    while (top && (top.gen !== top.slot.gen || top.slot.group.removed)) {
      this.#heap.pop();
      top = this.#heap.peek();
    }
    if (top && top.time < next) next = top.time;
    return next;
  }

  // ---------------------------------------------------------------------------
  // Work

  /** Whether {@link take} has something. */
  get hasWork(): boolean {
    if (this.#beacons.length > 0) return true;
    for (const slot of this.#touched) if (slot.driver.hasWork) return true;
    return false;
  }

  /** The I/O gathered since the last call, for every group. */
  take(): HostWork {
    const sends: Message[] = this.#beacons;
    this.#beacons = [];
    const parts: { group: GroupId; unit: WriteUnit; driver: NodeDriver }[] = [];
    const applies: { group: GroupId; entries: readonly Entry[] }[] = [];
    const captures: GroupId[] = [];
    const chunks: { group: GroupId; chunk: ChunkSend }[] = [];
    const receive: { group: GroupId; op: StoreOp }[] = [];
    const touched = [...this.#touched];
    this.#touched.clear();
    const now = this.#now;
    for (const slot of touched) {
      if (slot.removed) continue;
      const d = slot.driver;
      const g = slot.group;
      if (d.hasWork) {
        const w = d.take();
        for (const m of w.sends) sends.push(m);
        if (w.write) parts.push({ group: g, unit: w.write, driver: d });
        if (w.applies.length > 0) applies.push({ group: g, entries: w.applies });
        if (w.capture) captures.push(g);
        for (const c of w.chunks) chunks.push({ group: g, chunk: c });
        for (const op of w.receive) receive.push({ group: g, op });
        for (const [kind, ms] of w.timers) this.#arm(slot, kind, now, ms);
      }
      // A deadline that went away (a request settled) leaves no firing behind it.
      const deadline = d.nextDeadline();
      if (deadline !== undefined) this.#arm(slot, "tick", deadline, 0);
      else this.#disarm(slot, "tick");
      // A quiescent core ignores its timers and re-arms those it needs when it wakes (core/quiesce.ts):
      // none stays armed, or 10^4 groups that just quiesced fire each of theirs once, for nothing.
      if (isQuiescent(d.state)) {
        for (const kind of slot.timers.keys()) if (kind !== "tick") this.#disarm(slot, kind);
      }
      for (const t of slot.timers.values()) t.firedAt = undefined;
    }
    for (const m of sends) this.#liveness.sent(m.to, now);
    let out: readonly Message[] = sends;
    if (this.#options.coalesceHeartbeats !== false) {
      out = coalesce(sends);
      for (const m of out) {
        if (m.type === "Heartbeats" || m.type === "HeartbeatResponses") this.coalescedOut += m.items.length;
      }
    }
    let write: HostWriteUnit | undefined;
    if (parts.length > 0) {
      write = { id: this.#nextUnit++, parts };
      this.#pending.push(write);
    }
    return { sends: out, write, applies, captures, chunks, receive };
  }

  /** The host unit `id` (the oldest not yet reported) is durable: each group hears its own unit. */
  written(id: number, now: number): void {
    this.#now = now;
    const unit = this.#pending[0];
    if (unit === undefined || unit.id !== id) {
      throw new Error(`host write ${id} reported durable out of order (expected ${unit?.id ?? "none"})`);
    }
    this.#pending.shift();
    for (const { group, unit: u, driver } of unit.parts) {
      // The same incarnation only: a re-added group's driver numbers its own units from 1.
      if (this.#groups.get(group)?.driver === driver) this.call(group, (d) => d.written(u.id, now));
    }
  }

  /** Stops every group (each pending request fails with `error`, or `NodeStopped`). */
  stop(error?: unknown): void {
    for (const g of [...this.#groups.keys()]) this.removeGroup(g, error);
  }

  /** Arms `slot`'s timer `kind` for `from + ms` (rounded to the host's ticks). */
  #arm(slot: Slot, kind: TimerKind | "tick", from: number, ms: number): void {
    const g = this.#granularity;
    const at = from + ms;
    let deadline = Math.ceil(at / g) * g;
    let t = slot.timers.get(kind);
    if (!t) {
      t = { group: slot, kind, deadline: Infinity, queuedAt: Infinity, gen: 0, firedAt: undefined };
      slot.timers.set(kind, t);
    }
    if (kind === "heartbeat") {
      // The host-wide heartbeat tick: the nearest multiple of the interval — from when the timer
      // was due if it just fired, so a loop running late does not push every round later (and,
      // past half an interval, skip a tick) — unless more than half the group's own interval early.
      const period = this.#options.heartbeatMs;
      const base = t.firedAt !== undefined && from - t.firedAt < ms ? t.firedAt : from;
      const tick = Math.round((base + ms) / period) * period;
      if (tick > from && tick >= from + ms / 2 - (from - base)) deadline = tick;
    }
    t.deadline = deadline;
    if (t.queuedAt <= deadline) return; // The queued entry wakes first and re-queues for the rest.
    t.gen++;
    t.queuedAt = deadline;
    this.#heap.push({ time: deadline, seq: 0, slot: t, gen: t.gen });
  }

  /** Cancels `slot`'s timer `kind`: its queued entry, if any, is skipped when it comes up. */
  #disarm(slot: Slot, kind: TimerKind | "tick"): void {
    const t = slot.timers.get(kind);
    if (!t || (t.deadline === Infinity && t.queuedAt === Infinity)) return;
    t.gen++;
    t.deadline = Infinity;
    t.queuedAt = Infinity;
  }

  /** The failure detector watches every process that is a member of a group hosted here. */
  #watchPeers(now: number): void {
    this.#peersDirty = false;
    const peers = new Set<NodeId>();
    for (const slot of this.#groups.values()) {
      for (const id of allMembers(membershipOf(slot.driver.state))) if (id !== this.#options.self) peers.add(id);
    }
    this.#liveness.watch(peers, now);
  }
}
