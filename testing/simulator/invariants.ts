/**
 * Raft's safety properties (paper Figure 3), checked incrementally while the
 * simulator runs: each check looks only at what changed in one step, so a
 * long run stays linear in its length.
 *
 * - election safety: at most one leader per term, ever, and each node votes
 *   for at most one candidate per term (across its restarts);
 * - log matching: entries with the same index and term are identical, and so
 *   are their predecessors (checked as entries become durable against a
 *   global record of (index, term) → entry and predecessor term; by
 *   induction the logs agree up to that index);
 * - leader completeness: a new leader holds every entry committed in an
 *   earlier term;
 * - state-machine safety: no two nodes apply different entries at an index;
 * - commit monotonicity per node incarnation, and agreement of every node's
 *   committed prefix with the global committed record.
 *
 * @module
 */

import { termAt } from "../../core/log.ts";
import type { RaftLog } from "../../core/log.ts";
import type { Entry, Index, NodeId, Term } from "../../core/types.ts";

/** A safety (or liveness) property failed. The message carries the seed, the property and a trace. */
export class InvariantViolation extends Error {
  /** Discriminator. */
  readonly _tag = "InvariantViolation" as const;
  /** Seed of the failing run. */
  readonly seed: number;
  /** Name of the violated property. */
  readonly invariant: string;
  /** What exactly was wrong. */
  readonly detail: string;
  /** The last trace lines before the failure. */
  readonly trace: readonly string[];

  /** Builds the error; the message includes everything needed to reproduce. */
  constructor(seed: number, invariant: string, detail: string, trace: readonly string[], reproduce: string) {
    super(
      `${invariant} violated (seed ${seed}): ${detail}\n` +
        `reproduce: ${reproduce}\n` +
        `--- last ${trace.length} trace lines ---\n${trace.join("\n")}`,
    );
    this.name = "InvariantViolation";
    this.seed = seed;
    this.invariant = invariant;
    this.detail = detail;
    this.trace = trace;
  }
}

/** Called by the checker when a property fails; must throw. */
export type Fail = (invariant: string, detail: string) => never;

interface EntryRecord {
  readonly entry: Entry;
  /** Term of the entry before it in the log that held it first (undefined when compacted). */
  readonly prevTerm: Term | undefined;
}

/** Whether two entries are the same entry (same term, kind and bytes). */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.term !== b.term || a.index !== b.index || a.kind !== b.kind) return false;
  if (a.data.byteLength !== b.data.byteLength) return false;
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** The global records the safety checks compare against. */
export class InvariantChecker {
  readonly #fail: Fail;
  /** term → the node that led it. */
  readonly #leaders = new Map<Term, NodeId>();
  /** `${voter}:${term}` → the candidate it voted for. */
  readonly #votes = new Map<string, NodeId>();
  /** `${index}:${term}` → entry and predecessor term. */
  readonly #entries = new Map<string, EntryRecord>();
  /** index → term of the committed entry there (sparse where only snapshots knew it). */
  readonly #committed: (Term | undefined)[] = [];
  /**
   * index → current term of the first node seen committing it: an upper bound
   * of the term in which the entry was committed (exact for the leader that
   * committed it, which is normally the first to know).
   */
  readonly #committedIn: Term[] = [];
  /** index → the entry some state machine applied there first. */
  readonly #applied: (Entry | undefined)[] = [];

  /** A checker that reports failures through `fail`. */
  constructor(fail: Fail) {
    this.#fail = fail;
  }

  /** Highest index known committed anywhere. */
  get committedIndex(): Index {
    return this.#committed.length - 1;
  }

  /**
   * One vote per term (Figure 2, votedFor): `node` sent a granted (real, not
   * pre-) vote for `candidate` in `term`. Votes are kept across restarts, so
   * a node that forgot its vote (not durable, or cleared in the same term) is
   * caught here even when no second leader follows from it.
   */
  onVote(node: NodeId, term: Term, candidate: NodeId): void {
    const key = `${node}:${term}`;
    const before = this.#votes.get(key);
    if (before !== undefined && before !== candidate) {
      this.#fail("one vote per term", `${node} voted for ${before} and then for ${candidate} in term ${term}`);
    }
    this.#votes.set(key, candidate);
  }

  /** Election safety and leader completeness, when `node` becomes leader of `term` with `log`. */
  onLeader(node: NodeId, term: Term, log: RaftLog): void {
    const other = this.#leaders.get(term);
    if (other !== undefined && other !== node) {
      this.#fail("election safety", `${node} and ${other} are both leaders of term ${term}`);
    }
    this.#leaders.set(term, node);
    // Leader completeness (§5.4): an entry committed in a term before `term` is in
    // this leader's log. (A stale candidate may still win an older term later in
    // virtual time; it owes nothing to entries committed in later terms.)
    for (let i = log.offset + 1; i < this.#committed.length; i++) {
      const want = this.#committed[i];
      if (want === undefined || this.#committedIn[i]! >= term) continue;
      const have = termAt(log, i);
      if (have !== want) {
        this.#fail(
          "leader completeness",
          `${node} became leader of term ${term} without committed entry ${i}@${want} (has ${have ?? "none"})`,
        );
      }
    }
  }

  /**
   * Log matching, for contiguous `entries` that `node` just made durable,
   * after an entry of term `prevTerm` (undefined when unknown).
   */
  onAppend(node: NodeId, entries: readonly Entry[], prevTerm: Term | undefined): void {
    let before = prevTerm;
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const seen = this.#entries.get(key);
      if (seen === undefined) {
        this.#entries.set(key, { entry: e, prevTerm: before });
      } else {
        if (!sameEntry(seen.entry, e)) this.#fail("log matching", `${node} stored a different entry at ${key}`);
        if (seen.prevTerm !== undefined && before !== undefined && seen.prevTerm !== before) {
          this.#fail(
            "log matching",
            `${node} stores ${key} after an entry of term ${before}; another log had term ${seen.prevTerm} there`,
          );
        }
      }
      before = e.term;
    }
  }

  /**
   * Commit monotonicity and agreement: `node`, in `currentTerm`, moved its
   * commit index from `before` to `after` (same incarnation); its log must hold, at every newly
   * committed index, the entry committed there anywhere else.
   */
  onCommit(node: NodeId, currentTerm: Term, before: Index, after: Index, log: RaftLog): void {
    if (after < before) this.#fail("commit monotonicity", `${node} commit index went back from ${before} to ${after}`);
    for (let i = before + 1; i <= after; i++) {
      const term = termAt(log, i);
      if (term === undefined) continue; // Covered by a snapshot.
      const known = this.#committed[i];
      if (known === undefined) {
        while (this.#committed.length < i) this.#committed.push(undefined);
        while (this.#committedIn.length < i) this.#committedIn.push(0);
        this.#committed[i] = term;
        this.#committedIn[i] = currentTerm;
      } else if (known !== term) {
        this.#fail("committed entry agreement", `${node} committed ${i}@${term} but ${i}@${known} was committed`);
      }
    }
  }

  /** State-machine safety: `node` applies `entry`. */
  onApply(node: NodeId, entry: Entry): void {
    const first = this.#applied[entry.index];
    if (first === undefined) {
      while (this.#applied.length < entry.index) this.#applied.push(undefined);
      this.#applied[entry.index] = entry;
      return;
    }
    if (!sameEntry(first, entry)) {
      this.#fail(
        "state machine safety",
        `${node} applied ${entry.index}@${entry.term} (${entry.kind}) but ${first.index}@${first.term} (${first.kind}) was applied there`,
      );
    }
  }

  /** State-machine safety for snapshots: a restored snapshot ends on the entry applied there elsewhere. */
  onRestore(node: NodeId, index: Index, term: Term): void {
    const first = this.#applied[index];
    if (first !== undefined && first.term !== term) {
      this.#fail(
        "state machine safety",
        `${node} restored a snapshot ending at ${index}@${term}; ${index}@${first.term} was applied`,
      );
    }
  }
}
