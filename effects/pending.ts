/**
 * The requests a node's callers are waiting on, and how the core's effects
 * settle them: a proposal succeeds only when the entry applied at its index
 * has the term it was appended in (`Proposed`), reads wait until the state
 * machine has applied their read index (§6.4). A request not settled within
 * its timeout fails with `OutcomeUnknown`: an answer lost on the network
 * (a forwarded proposal's, say) must not leave its caller waiting forever.
 *
 * @module
 */

import type { Entry, Index, Term } from "../core/types.ts";
import { OutcomeUnknown, ProposalDropped, RaftRejected } from "./errors.ts";

/** What a pending request resolves with. */
export type RequestKind = "propose" | "conf" | "read" | "transfer";

interface Waiter {
  readonly kind: RequestKind;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  index: Index;
  term: Term;
  timer: ReturnType<typeof setTimeout> | undefined;
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

/** Pending requests of one node, keyed by request id. */
export class PendingRequests {
  private readonly waiters = new Map<number, Waiter>();
  private readonly byIndex = new Map<Index, number[]>();
  private reads: { readonly requestId: number; readonly index: Index }[] = [];
  private readonly recent = new Map<Index, AppliedOutcome>();
  private nextId = 1;

  /** @param timeoutMs how long a request may wait before failing with `OutcomeUnknown` (`Infinity`: forever) */
  constructor(private readonly timeoutMs: number = Infinity) {}

  /** Number of requests still waiting. */
  get size(): number {
    return this.waiters.size;
  }

  /** Registers a request; returns its id and the promise its caller awaits. */
  register<A>(kind: RequestKind): { readonly requestId: number; readonly promise: Promise<A> } {
    const requestId = this.nextId++;
    const promise = new Promise<A>((resolve, reject) => {
      const waiter: Waiter = {
        kind,
        resolve: resolve as (v: unknown) => void,
        reject,
        index: 0,
        term: 0,
        timer: undefined,
      };
      if (Number.isFinite(this.timeoutMs)) {
        waiter.timer = setTimeout(
          () => this.fail(requestId, new OutcomeUnknown(timeoutDetail(kind, this.timeoutMs))),
          this.timeoutMs,
        );
      }
      this.waiters.set(requestId, waiter);
    });
    return { requestId, promise };
  }

  /** Removes and returns the waiter of `requestId`, disarming its timeout. */
  private take(requestId: number): Waiter | undefined {
    const w = this.waiters.get(requestId);
    if (!w) return undefined;
    this.waiters.delete(requestId);
    clearTimeout(w.timer);
    return w;
  }

  /** The core appended the request at `index` in `term`. */
  proposed(requestId: number, index: Index, term: Term, applied: Index): void {
    const w = this.waiters.get(requestId);
    if (!w) return;
    if (index <= applied) {
      // Already applied (a forwarded proposal's answer arrived late).
      const outcome = this.recent.get(index);
      this.take(requestId);
      if (outcome === undefined) {
        w.reject(new OutcomeUnknown(`entry ${index} was applied before its proposal was acknowledged`));
      } else if (outcome.term !== term) w.reject(new ProposalDropped(index, term));
      else settle(w, outcome.ok, outcome.value, index);
      return;
    }
    w.index = index;
    w.term = term;
    const ids = this.byIndex.get(index);
    if (ids) ids.push(requestId);
    else this.byIndex.set(index, [requestId]);
  }

  /** `entry` was applied with `value` (or threw `value` when `ok` is false). */
  applied(entry: Entry, ok: boolean, value: unknown): void {
    this.recent.set(entry.index, { term: entry.term, ok, value });
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
    const ids = this.byIndex.get(entry.index);
    if (!ids) return;
    this.byIndex.delete(entry.index);
    for (const id of ids) {
      const w = this.take(id);
      if (!w) continue;
      if (w.term === entry.term) settle(w, ok, value, entry.index);
      else w.reject(new ProposalDropped(w.index, w.term));
    }
  }

  /** A snapshot replaced the state up to `index`: requests waiting at or below it cannot learn their outcome. */
  skippedTo(index: Index): void {
    for (const [i, ids] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      for (const id of ids) this.fail(id, new OutcomeUnknown(`entry ${i} was installed from a snapshot`));
    }
    this.recent.clear();
  }

  /** A read may be served once `index` is applied. */
  readReady(requestId: number, index: Index, applied: Index): void {
    if (index <= applied) {
      this.take(requestId)?.resolve(index);
      return;
    }
    const w = this.waiters.get(requestId);
    if (w) w.index = index; // Ready: no longer waiting on the leader.
    this.reads.push({ requestId, index });
  }

  /** Resolves reads whose index the state machine has reached. */
  serveReads(applied: Index): void {
    if (this.reads.length === 0) return;
    const still: { requestId: number; index: Index }[] = [];
    for (const r of this.reads) {
      if (r.index > applied) {
        still.push(r);
        continue;
      }
      this.take(r.requestId)?.resolve(r.index);
    }
    this.reads = still;
  }

  /** Resolves a request with `value`. */
  succeed(requestId: number, value: unknown): void {
    this.take(requestId)?.resolve(value);
  }

  /** Fails a request with `error`. */
  fail(requestId: number, error: unknown): void {
    this.take(requestId)?.reject(error);
  }

  /**
   * The leader this node forwarded to is gone: requests still waiting for its
   * answer fail now instead of at their timeout. A forwarded proposal's fate is
   * unknown (the old leader may have appended it, and a new leader may commit
   * it), so it fails with `OutcomeUnknown`; a read has no effect and fails with a
   * retryable `RaftRejected("not-leader")`.
   */
  leaderLost(): void {
    for (const [requestId, w] of [...this.waiters]) {
      if (w.index !== 0) continue; // Appended here, or already read-ready: its outcome will come.
      if (w.kind === "propose" || w.kind === "conf") {
        this.fail(
          requestId,
          new OutcomeUnknown("the leader changed before answering: the command may or may not have been applied"),
        );
      } else if (w.kind === "read") {
        this.fail(requestId, new RaftRejected("not-leader", undefined));
      }
    }
  }

  /** Fails every pending request (the node stopped). */
  failAll(error: unknown): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    this.byIndex.clear();
    this.reads = [];
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }
}

function settle(w: Waiter, ok: boolean, value: unknown, index: Index): void {
  if (!ok) w.reject(value);
  else w.resolve(w.kind === "conf" ? index : value);
}
