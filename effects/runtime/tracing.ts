/**
 * Spans of traced proposals, recorded by the production shell under the
 * caller's span (the Effect API wraps each `propose` in a `raft.propose`
 * span and hands it down): where a slow write spent its time.
 *
 * - `raft.forward`: until a leader placed the proposal, when this node was
 *   not the leader at the call (a follower forwarding it, or a node whose
 *   election was under way);
 * - `raft.wal.write`: the write unit carrying its entry on this node, from
 *   the append to the end of the fsync (group commit: one unit, many entries);
 * - `raft.quorum`: from its place in the log to its commit here (the leader's
 *   replication round to a quorum, or a follower learning the commit);
 * - `raft.apply`: from commit to the state machine's result.
 *
 * Times are read from the node's `Clock`, so a `TestClock` drives them too.
 *
 * @module
 */

import { Context, Exit, Option, type Tracer } from "effect";
import type { Index } from "../../core/types.ts";
import type { Outcome } from "../driver/requests.ts";

/** The caller's span and the tracer it belongs to: a proposal's spans become its children. */
export interface TraceParent {
  /** The caller's span. */
  readonly span: Tracer.AnySpan;
  /** Its tracer. */
  readonly tracer: Tracer.Tracer;
}

interface Traced {
  readonly parent: TraceParent;
  index: Index;
  forward: Tracer.Span | undefined;
  wal: Tracer.Span | undefined;
  quorum: Tracer.Span | undefined;
  apply: Tracer.Span | undefined;
}

/** The open spans of one node's traced proposals. */
export class ProposalTraces {
  readonly #now: () => bigint;
  readonly #attributes: Readonly<Record<string, unknown>>;
  readonly #byId = new Map<number, Traced>();
  /** Placed in the log, not yet committed here. */
  readonly #uncommitted = new Set<Traced>();
  /** Whose write unit is being written. */
  #writing: Traced[] = [];

  /** Spans timed by `now` (ns), each carrying `attributes`. */
  constructor(now: () => bigint, attributes: Readonly<Record<string, unknown>>) {
    this.#now = now;
    this.#attributes = attributes;
  }

  /** Whether any proposal is traced (so the shell can skip the bookkeeping). */
  get active(): boolean {
    return this.#byId.size > 0;
  }

  /** Proposal `requestId` is traced under `parent`; `forwarded` when this node is not the leader. */
  begin(requestId: number, parent: TraceParent, forwarded: boolean): void {
    const t: Traced = { parent, index: 0, forward: undefined, wal: undefined, quorum: undefined, apply: undefined };
    if (forwarded) t.forward = this.#span(t, "raft.forward");
    this.#byId.set(requestId, t);
  }

  /** The proposal has its place in the log. */
  appended(requestId: number, index: Index, term: number): void {
    const t = this.#byId.get(requestId);
    if (t === undefined) return;
    t.index = index;
    if (t.parent.span._tag === "Span") {
      t.parent.span.attribute("raft.index", index);
      t.parent.span.attribute("raft.term", term);
    }
    t.forward = end(t.forward, this.#now(), Exit.void);
    t.quorum = this.#span(t, "raft.quorum");
    this.#uncommitted.add(t);
  }

  /** A write unit holding entries `first..last` starts. */
  writing(first: Index, last: Index): void {
    for (const t of this.#uncommitted) {
      if (t.wal !== undefined || t.index < first || t.index > last) continue;
      t.wal = this.#span(t, "raft.wal.write");
      this.#writing.push(t);
    }
  }

  /** The write unit started last is durable. */
  written(): void {
    if (this.#writing.length === 0) return;
    const at = this.#now();
    for (const t of this.#writing) end(t.wal, at, Exit.void);
    this.#writing = [];
  }

  /** The commit index reached `commit`. */
  committed(commit: Index): void {
    for (const t of this.#uncommitted) {
      if (t.index > commit) continue;
      this.#uncommitted.delete(t);
      t.quorum = end(t.quorum, this.#now(), Exit.void);
      t.apply = this.#span(t, "raft.apply");
    }
  }

  /** Proposal `requestId` ended with `outcome`: its open spans end. */
  settled(requestId: number, outcome: Outcome): void {
    const t = this.#byId.get(requestId);
    if (t === undefined) return;
    this.#byId.delete(requestId);
    this.#uncommitted.delete(t);
    const at = this.#now();
    const exit = outcome.ok ? Exit.void : Exit.fail(outcome.error);
    for (const span of [t.forward, t.wal, t.quorum, t.apply]) end(span, at, exit);
  }

  #span(t: Traced, name: string): Tracer.Span {
    const { span: parent, tracer } = t.parent;
    const span = tracer.span({
      name,
      parent: Option.some(parent),
      annotations: Context.empty(),
      links: [],
      startTime: this.#now(),
      kind: "internal",
      root: false,
      sampled: parent.sampled,
    });
    for (const [k, v] of Object.entries(this.#attributes)) span.attribute(k, v);
    if (t.index > 0) span.attribute("raft.index", t.index);
    return span;
  }
}

/** Ends `span` (if open) at `at`; returns undefined, for clearing the slot. */
function end(span: Tracer.Span | undefined, at: bigint, exit: Exit.Exit<unknown, unknown>): undefined {
  if (span !== undefined && span.status._tag === "Started") span.end(at, exit);
  return undefined;
}
