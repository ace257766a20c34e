/**
 * The requests a node's callers are waiting on, and how the core's effects
 * settle them — written once for every interpreter. Time is data: each call
 * that can start or end a wait takes `now`, and {@link Requests.expire} fails
 * what waited too long, so a virtual clock drives it as well as a real one.
 *
 * - A proposal succeeds only when the entry applied at its index has the term
 *   it was appended in (`Proposed`); another term there means a newer leader
 *   overwrote it (`ProposalDropped`).
 * - A read waits until the state machine has applied its read index (§6.4).
 * - A request not settled within `timeoutMs` fails with `OutcomeUnknown`: an
 *   answer lost on the network (a forwarded proposal's, say) must not leave
 *   its caller waiting forever.
 * - A request refused because no leader is known (nothing was appended, so a
 *   retry is safe) is retried once a leader is known, until `leaderWaitMs`.
 *
 * @module
 */

import type { Entry, Index, RejectReason, Term } from "../../core/types.ts";
import { OutcomeUnknown, ProposalDropped, type RaftError, RaftRejected } from "../errors.ts";
import { EventQueue, type Scheduled } from "./event_queue.ts";

/** What a request asks for. */
export type RequestKind = "propose" | "conf" | "read" | "transfer";

/** How a request ended: its value, or the error (a typed `RaftError`, or what the state machine threw). */
export type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/** Called once, when the request ends. */
export type Settle = (outcome: Outcome) => void;

interface Waiter {
  readonly kind: RequestKind;
  readonly settle: Settle;
  /** Where a proposal landed (0: not yet), or a read's index once ready. */
  index: Index;
  term: Term;
  /** Until when a refusal for want of a leader is retried. */
  readonly leaderWaitUntil: number;
  /** Waiting for a leader to be known, to be resubmitted. */
  parked: boolean;
  /** A membership change waiting for the one in flight to commit (or a transfer to end), to be resubmitted. */
  queued: boolean;
}

interface Deadline extends Scheduled {
  readonly requestId: number;
  readonly kind: "timeout" | "leader-wait";
}

/** Why a request of each kind timed out, and what that means for the caller. */
function timeoutDetail(kind: RequestKind, ms: number): string {
  switch (kind) {
    case "propose":
      return `proposal not answered within ${ms} ms; the command may or may not have been applied`;
    case "conf":
      return `membership change not answered within ${ms} ms; it may or may not have taken effect`;
    case "read":
      return `read not answered within ${ms} ms (a read changes nothing: safe to retry)`;
    case "transfer":
      return `leadership transfer not answered within ${ms} ms; it may or may not have happened`;
  }
}

interface AppliedOutcome {
  readonly term: Term;
  readonly ok: boolean;
  readonly value: unknown;
}

/** How many applied outcomes are kept for `Proposed` notes that arrive late (forwarded proposals). */
const RECENT = 4096;

/**
 * The outcomes of the last {@link RECENT} applied indexes, in a ring keyed by
 * index. Applied indexes run consecutively (a snapshot install clears it), so
 * a slot holds the latest index of its residue class. A Map used as a FIFO
 * (delete its oldest key per apply) was quadratic on JavaScriptCore: its
 * iterator walks the deleted slots, 78 % of a 10^6-entry replay on Bun.
 *
 * The ring starts empty and doubles (up to {@link RECENT} slots) when a slot
 * it would overwrite still holds an outcome of the window: an idle group of a
 * host with many groups holds a few slots, not 4,096 (64 KiB, most of what a
 * quiescent group cost, and the time to allocate it most of `addGroup`'s).
 */
class RecentOutcomes {
  #index = new Float64Array(0);
  #outcome: (AppliedOutcome | undefined)[] = [];

  set(index: Index, outcome: AppliedOutcome): void {
    let size = this.#index.length;
    if (size === 0) this.#grow(size = 8);
    let slot = index % size;
    const held = this.#index[slot]!;
    if (size < RECENT && held !== 0 && held !== index && held > index - RECENT) {
      this.#grow(size = size * 2);
      slot = index % size;
    }
    this.#index[slot] = index;
    this.#outcome[slot] = outcome;
  }

  get(index: Index): AppliedOutcome | undefined {
    const size = this.#index.length;
    if (size === 0) return undefined;
    const slot = index % size;
    return this.#index[slot] === index ? this.#outcome[slot] : undefined;
  }

  clear(): void {
    this.#index = new Float64Array(0);
    this.#outcome = [];
  }

  /** Re-homes every held outcome into `size` slots (distinct residues stay distinct: `size` doubles). */
  #grow(size: number): void {
    const index = new Float64Array(size);
    const outcome: (AppliedOutcome | undefined)[] = new Array(size).fill(undefined);
    for (let i = 0; i < this.#index.length; i++) {
      const at = this.#index[i]!;
      if (at === 0) continue;
      index[at % size] = at;
      outcome[at % size] = this.#outcome[i];
    }
    this.#index = index;
    this.#outcome = outcome;
  }
}

/** The settings of a request book. */
export interface RequestOptions {
  /** How long a request may wait for its outcome (`Infinity`: forever). */
  readonly timeoutMs: number;
  /** How long a request refused for want of a leader is retried (0: never). */
  readonly leaderWaitMs: number;
  /**
   * Where request ids start. Answers can outlive a process (a leader's
   * ProposeResponse to the node's previous incarnation), so ids must not
   * repeat across restarts: give each start a different base (default 1).
   */
  readonly firstId?: number;
}

/** Pending requests of one node, keyed by request id. */
export class Requests {
  readonly #options: RequestOptions;
  readonly #waiters = new Map<number, Waiter>();
  readonly #byIndex = new Map<Index, number[]>();
  #reads: { readonly requestId: number; readonly index: Index }[] = [];
  readonly #recent = new RecentOutcomes();
  readonly #deadlines = new EventQueue<Deadline>();
  #nextId = 1;

  /** A book with the given timeouts. */
  constructor(options: RequestOptions) {
    this.#options = options;
    this.#nextId = options.firstId ?? 1;
  }

  /** Number of requests still waiting. */
  get size(): number {
    return this.#waiters.size;
  }

  /** Registers a request made at `now`; returns its id. `settle` hears its outcome exactly once. */
  register(kind: RequestKind, now: number, settle: Settle): number {
    const requestId = this.#nextId++;
    const { timeoutMs, leaderWaitMs } = this.#options;
    this.#waiters.set(requestId, {
      kind,
      settle,
      index: 0,
      term: 0,
      leaderWaitUntil: now + leaderWaitMs,
      parked: false,
      queued: false,
    });
    if (Number.isFinite(timeoutMs)) this.#deadlines.push({ time: now + timeoutMs, seq: 0, requestId, kind: "timeout" });
    return requestId;
  }

  /** Whether `requestId` is still waiting. */
  has(requestId: number): boolean {
    return this.#waiters.has(requestId);
  }

  /** What `requestId` asks for, while it waits. */
  kindOf(requestId: number): RequestKind | undefined {
    return this.#waiters.get(requestId)?.kind;
  }

  /** Ends `requestId` with `outcome`. */
  #end(requestId: number, outcome: Outcome): void {
    const w = this.#waiters.get(requestId);
    if (!w) return;
    this.#waiters.delete(requestId);
    w.settle(outcome);
  }

  /** The core appended the request at `index` in `term`; `applied` is the state machine's position. */
  proposed(requestId: number, index: Index, term: Term, applied: Index): void {
    const w = this.#waiters.get(requestId);
    if (!w) return;
    if (index <= applied) {
      // Already applied (a forwarded proposal's answer arrived late).
      const outcome = this.#recent.get(index);
      if (outcome === undefined) {
        this.fail(requestId, new OutcomeUnknown(`entry ${index} was applied before its proposal was acknowledged`));
      } else if (outcome.term !== term) this.fail(requestId, new ProposalDropped(index, term));
      else this.#end(requestId, result(w, outcome.ok, outcome.value, index));
      return;
    }
    w.index = index;
    w.term = term;
    const ids = this.#byIndex.get(index);
    if (ids) ids.push(requestId);
    else this.#byIndex.set(index, [requestId]);
  }

  /** `entry` was applied with `value` (or threw `value` when `ok` is false). */
  applied(entry: Entry, ok: boolean, value: unknown): void {
    this.#recent.set(entry.index, { term: entry.term, ok, value });
    const ids = this.#byIndex.get(entry.index);
    if (!ids) return;
    this.#byIndex.delete(entry.index);
    for (const id of ids) {
      const w = this.#waiters.get(id);
      if (!w) continue;
      if (w.term === entry.term) this.#end(id, result(w, ok, value, entry.index));
      else this.fail(id, new ProposalDropped(w.index, w.term));
    }
  }

  /** A snapshot replaced the state up to `index`: requests waiting at or below it cannot learn their outcome. */
  skippedTo(index: Index): void {
    for (const [i, ids] of this.#byIndex) {
      if (i > index) continue;
      this.#byIndex.delete(i);
      for (const id of ids) this.fail(id, new OutcomeUnknown(`entry ${i} was installed from a snapshot`));
    }
    this.#recent.clear();
  }

  /** A read may be served once `index` is applied. */
  readReady(requestId: number, index: Index, applied: Index): void {
    const w = this.#waiters.get(requestId);
    if (!w) return;
    if (index <= applied) return this.succeed(requestId, index);
    w.index = index; // Ready: no longer waiting on the leader.
    this.#reads.push({ requestId, index });
  }

  /** Resolves reads whose index the state machine has reached. */
  serveReads(applied: Index): void {
    if (this.#reads.length === 0) return;
    const still: { requestId: number; index: Index }[] = [];
    for (const r of this.#reads) {
      if (r.index > applied) still.push(r);
      else this.succeed(r.requestId, r.index);
    }
    this.#reads = still;
  }

  /** Resolves a request with `value`. */
  succeed(requestId: number, value: unknown): void {
    this.#end(requestId, { ok: true, value });
  }

  /** Fails a request with `error`. */
  fail(requestId: number, error: RaftError | unknown): void {
    this.#end(requestId, { ok: false, error });
  }

  /**
   * The core refused `requestId` for `reason`. A refusal by a node that knows
   * no leader means nothing was appended: the request is parked, to be
   * resubmitted once a leader is known, until its leader wait ends. Returns
   * whether it was parked (the caller must resubmit it later).
   */
  rejected(requestId: number, reason: RejectReason, leader: string | undefined, now: number): boolean {
    const w = this.#waiters.get(requestId);
    if (!w) return false;
    // A read changes nothing, so any not-leader refusal may be retried; a proposal only when the
    // refusing node knew no leader (it was not forwarded, so nothing can have been appended).
    const retryable = reason === "not-leader" && (w.kind === "read" || (w.kind === "propose" && leader === undefined));
    if (retryable && this.#park(requestId, w, now)) return true;
    // One membership change at a time (thesis §4.1): a change asked for while another is in flight
    // waits its turn (until its own timeout) instead of failing; nothing was appended.
    if (w.kind === "conf" && (reason === "conf-change-pending" || reason === "transferring")) {
      w.queued = true;
      return true;
    }
    this.fail(requestId, new RaftRejected(reason, leader));
    return false;
  }

  /** Parks `w` until a leader is known, if its leader wait allows; returns whether it did. */
  #park(requestId: number, w: Waiter, now: number): boolean {
    if (now >= w.leaderWaitUntil) return false;
    if (!w.parked) {
      w.parked = true;
      this.#deadlines.push({ time: w.leaderWaitUntil, seq: 0, requestId, kind: "leader-wait" });
    }
    return true;
  }

  /** The membership changes waiting their turn, released: a commit may have freed it, so the caller resubmits them. */
  unqueue(): number[] {
    const ids: number[] = [];
    for (const [id, w] of this.#waiters) {
      if (!w.queued) continue;
      w.queued = false;
      ids.push(id);
    }
    return ids;
  }

  /** The parked requests, unparked: a leader is known, so the caller resubmits them. */
  unpark(): number[] {
    const ids: number[] = [];
    for (const [id, w] of this.#waiters) {
      if (!w.parked) continue;
      w.parked = false;
      ids.push(id);
    }
    return ids;
  }

  /**
   * The leader this node forwarded to is gone: requests still waiting for its
   * answer end now instead of at their timeout. A forwarded proposal's fate is
   * unknown (the old leader may have appended it, and a new leader may commit
   * it), so it fails with `OutcomeUnknown`; a read has no effect: it is parked
   * to ask the next leader (within its leader wait), or fails with a retryable
   * `RaftRejected("not-leader")`. Returns the reads it parked (to resubmit).
   */
  leaderLost(now: number): number[] {
    const parked: number[] = [];
    for (const [requestId, w] of [...this.#waiters]) {
      if (w.index !== 0 || w.parked || w.queued) continue; // Appended here, read-ready, parked or queued.
      if (w.kind === "propose" || w.kind === "conf") {
        this.fail(
          requestId,
          new OutcomeUnknown("the leader changed before answering: the command may or may not have been applied"),
        );
      } else if (w.kind === "read") {
        if (this.#park(requestId, w, now)) parked.push(requestId);
        else this.fail(requestId, new RaftRejected("not-leader", undefined));
      }
    }
    return parked;
  }

  /** Fails what waited too long by `now`: timeouts with `OutcomeUnknown`, ended leader waits with `not-leader`. */
  expire(now: number): void {
    for (;;) {
      const next = this.#deadlines.peek();
      if (next === undefined || next.time > now) return;
      this.#deadlines.pop();
      const w = this.#waiters.get(next.requestId);
      if (!w) continue;
      if (next.kind === "timeout") {
        this.fail(next.requestId, new OutcomeUnknown(timeoutDetail(w.kind, this.#options.timeoutMs)));
      } else if (w.parked) {
        this.fail(next.requestId, new RaftRejected("not-leader", undefined));
      }
    }
  }

  /** When {@link expire} next has something to do (undefined: nothing waits on time). */
  nextDeadline(): number | undefined {
    for (;;) {
      const next = this.#deadlines.peek();
      if (next === undefined) return undefined;
      const w = this.#waiters.get(next.requestId);
      if (w && (next.kind === "timeout" || w.parked)) return next.time;
      this.#deadlines.pop();
    }
  }

  /** Fails every pending request (the node stopped). */
  failAll(error: unknown): void {
    const all = [...this.#waiters.keys()];
    this.#byIndex.clear();
    this.#reads = [];
    for (const id of all) this.fail(id, error);
  }
}

function result(w: Waiter, ok: boolean, value: unknown, index: Index): Outcome {
  if (!ok) return { ok: false, error: value };
  return { ok: true, value: w.kind === "conf" ? index : value };
}
