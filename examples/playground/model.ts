/**
 * The playground's model, with no DOM: a {@link Simulator} of the pure
 * core (virtual time, a seeded network), the few things a visitor does to
 * it — pick a seed, crash and restart nodes, cut one off, heal, write —
 * and what the page shows: each node's role, term, commit and applied
 * index, the leader, and what happened (elections, commits) as lines.
 *
 * Everything is deterministic for a seed: the same clicks at the same
 * virtual times replay the same run.
 *
 * @module
 */

import { Simulator } from "../../testing/simulator/mod.ts";
import type { NodeId } from "../../core/mod.ts";

/** One node as the page shows it. */
export interface NodeView {
  /** Its id. */
  readonly id: NodeId;
  /** Whether it runs (not crashed). */
  readonly up: boolean;
  /** Whether it is cut off from the others. */
  readonly isolated: boolean;
  /** Its role (`leader`, `follower`, `candidate`, `precandidate`), or `down`. */
  readonly role: string;
  /** Its term. */
  readonly term: number;
  /** Its commit index. */
  readonly commit: number;
  /** The index its state machine applied. */
  readonly applied: number;
  /** The leader it knows, if any. */
  readonly leader: NodeId | undefined;
}

/** Options of a {@link Playground}. */
export interface PlaygroundOptions {
  /** The seed of every random choice (timeouts, latencies, drops). */
  readonly seed: number;
  /** How many nodes (3 or 5 make sense). */
  readonly nodes: number;
  /** Random faults (drops, delays, crashes, partitions) on top of the visitor's. */
  readonly faults?: boolean;
}

/** A simulated cluster the page drives. */
export class Playground {
  readonly #sim: Simulator;
  readonly #isolated = new Set<NodeId>();
  readonly #events: string[] = [];
  #last = new Map<NodeId, { role: string; term: number; commit: number }>();
  #writes = 0;

  /** A new cluster of `options.nodes` nodes, seeded with `options.seed`. */
  constructor(readonly options: PlaygroundOptions) {
    this.#sim = new Simulator({
      seed: options.seed,
      nodes: options.nodes,
      faults: options.faults ?? false,
      clients: 0,
    });
  }

  /** Node ids. */
  get nodeIds(): readonly NodeId[] {
    return this.#sim.nodeIds;
  }

  /** Virtual time, ms. */
  get now(): number {
    return this.#sim.now;
  }

  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined {
    return this.#sim.leader();
  }

  /** Advances virtual time by `ms`, noting elections and commits as they happen. */
  advance(ms: number): void {
    this.#sim.runFor(ms);
    this.#observe();
  }

  /** Every node as shown. */
  view(): NodeView[] {
    return this.#sim.nodeIds.map((id) => {
      const up = this.#sim.isUp(id);
      const s = this.#sim.state(id);
      return {
        id,
        up,
        isolated: this.#isolated.has(id),
        role: up ? s.role.kind : "down",
        term: s.term,
        commit: s.commit,
        applied: this.#sim.appliedIndex(id),
        leader: up && s.role.kind === "follower" ? s.role.leader : up && s.role.kind === "leader" ? id : undefined,
      };
    });
  }

  /** What happened, oldest first (the last 200 lines). */
  events(): readonly string[] {
    return this.#events;
  }

  /** Crashes `id`: it stops, losing what it had not synced. */
  crash(id: NodeId): void {
    if (!this.#sim.isUp(id)) return;
    this.#sim.crash(id);
    this.#note(`${id} crashed`);
  }

  /** Restarts `id` from its durable state. */
  restart(id: NodeId): void {
    if (this.#sim.isUp(id)) return;
    this.#sim.restart(id);
    this.#note(`${id} restarted`);
  }

  /** Cuts `id` off from every other node (or reconnects it). */
  toggleIsolation(id: NodeId): void {
    if (this.#isolated.has(id)) this.#isolated.delete(id);
    else this.#isolated.add(id);
    this.#applyPartition();
    this.#note(this.#isolated.has(id) ? `${id} cut off` : `${id} reconnected`);
  }

  /** Reconnects every node. */
  heal(): void {
    this.#isolated.clear();
    this.#sim.heal();
    this.#note("network healed");
  }

  /** A client writes a key through the leader (or node `via`); it commits once a majority has it. */
  write(via?: NodeId): void {
    const to = via ?? this.leader() ?? this.#sim.nodeIds.find((id) => this.#sim.isUp(id));
    if (to === undefined) return this.#note("no node up to write to");
    const n = ++this.#writes;
    this.#sim.put(to, `k${n % 5}`, `v${n}`);
    this.#note(`write k${n % 5}=v${n} sent to ${to}`);
  }

  #applyPartition(): void {
    const connected = this.#sim.nodeIds.filter((id) => !this.#isolated.has(id));
    this.#sim.partition([connected, ...[...this.#isolated].map((id) => [id])]);
  }

  #note(line: string): void {
    this.#events.push(`${(this.#sim.now / 1000).toFixed(2)}s ${line}`);
    if (this.#events.length > 200) this.#events.splice(0, this.#events.length - 200);
  }

  #observe(): void {
    const next = new Map<NodeId, { role: string; term: number; commit: number }>();
    for (const v of this.view()) {
      const before = this.#last.get(v.id);
      if (v.role === "leader" && before?.role !== "leader") this.#note(`${v.id} became leader in term ${v.term}`);
      if (v.role === "leader" && before !== undefined && v.commit > before.commit) {
        this.#note(`${v.id} committed up to ${v.commit}`);
      }
      next.set(v.id, { role: v.role, term: v.term, commit: v.commit });
    }
    this.#last = next;
  }
}
