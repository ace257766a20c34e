/**
 * A hand-driven cluster of pure cores for scenario tests: nothing happens
 * unless the test says so. Writes become durable at once (a `Persisted`
 * follows every `Persist`); messages wait in one queue until the test
 * delivers them (or drops them); applied entries are recorded per node, and
 * every apply is checked against what any other node applied at that index
 * (state-machine safety), so a scenario that makes two nodes diverge fails
 * where it happens.
 *
 * @module
 */

import { makeConfig, type RaftConfig } from "../core/config.ts";
import { describeEntry } from "../core/describe.ts";
import { lastIndex, lastTerm } from "../core/log.ts";
import { membershipOf } from "../core/membership.ts";
import type { RaftState } from "../core/state.ts";
import { start, step } from "../core/step.ts";
import type { Entry, HardState, Input, Message, NodeId, RaftEffect } from "../core/types.ts";

/** One node of the cluster: its core state, what it made durable, what it applied. */
export interface ScenarioNode {
  /** Core state. */
  state: RaftState;
  /** Durable hard state (as of the last Persist). */
  hard: HardState | undefined;
  /** Durable entries, contiguous from 1. */
  entries: Entry[];
  /** Entries applied, in order. */
  applied: Entry[];
  /** Whether the node is running. */
  up: boolean;
}

/** A pure-core cluster moved one input and one delivery at a time. */
export class ScenarioCluster {
  /** Nodes by id. */
  readonly nodes: Map<NodeId, ScenarioNode> = new Map();
  /** Messages sent and not yet delivered or dropped, oldest first. */
  queue: Message[] = [];
  /** Every effect, per node, in order (for assertions on Reject, ReadReady…). */
  readonly effects: Map<NodeId, RaftEffect[]> = new Map();
  readonly #appliedAt = new Map<number, Entry>();
  readonly #config: (id: NodeId) => RaftConfig;
  readonly #voters: readonly NodeId[];
  /** Hears every input stepped and the effects it produced (for transcripts). */
  onStep: ((id: NodeId, input: Input, effects: readonly RaftEffect[], state: RaftState) => void) | undefined =
    undefined;

  /** Starts `voters` as a new cluster; `config` overrides core settings (pre-vote and check-quorum default off). */
  constructor(voters: readonly NodeId[], config: Partial<Omit<RaftConfig, "id">> = {}) {
    this.#voters = voters;
    this.#config = (id) => makeConfig({ preVote: false, checkQuorum: false, ...config, id });
    for (const id of voters) {
      this.nodes.set(id, { state: undefined!, hard: undefined, entries: [], applied: [], up: false });
      this.effects.set(id, []);
      this.restart(id);
      // Past the start-up stickiness, as if the cluster had been up for a while.
      this.input(id, { type: "Timeout", timer: "election", now: 0 });
    }
  }

  /** The node `id`. */
  node(id: NodeId): ScenarioNode {
    const n = this.nodes.get(id);
    if (!n) throw new RangeError(`no node ${id}`);
    return n;
  }

  /** The core state of `id`. */
  state(id: NodeId): RaftState {
    return this.node(id).state;
  }

  /** Steps `id` with `input` and carries out the effects (writes are durable at once). */
  input(id: NodeId, input: Input): readonly RaftEffect[] {
    const n = this.node(id);
    if (!n.up) throw new Error(`${id} is down`);
    const r = step(n.state, input);
    n.state = r.state;
    this.onStep?.(id, input, r.effects, r.state);
    this.#carryOut(id, r.effects);
    return r.effects;
  }

  /** Crashes `id`: its queued messages stay (they are in flight), its memory is lost, its disk kept. */
  crash(id: NodeId): void {
    this.node(id).up = false;
  }

  /** Restarts `id` from its durable state with `start`. */
  restart(id: NodeId): readonly RaftEffect[] {
    const n = this.node(id);
    const r = start(this.#config(id), {
      membership: membershipOf(this.#voters),
      hardState: n.hard,
      entries: n.entries.slice(),
    });
    n.state = r.state;
    n.up = true;
    // Replay after a restart re-applies from the start (no snapshot here).
    n.applied = [];
    this.#carryOut(id, r.effects);
    return r.effects;
  }

  /**
   * Delivers queued messages that `pass` selects (default: all), in order,
   * including those the deliveries produce, until none is left that passes.
   * Messages to a node that is down are dropped. Returns how many were delivered.
   */
  deliver(pass: (m: Message) => boolean = () => true): number {
    let delivered = 0;
    for (;;) {
      const i = this.queue.findIndex(pass);
      if (i < 0) return delivered;
      const [m] = this.queue.splice(i, 1);
      const to = this.nodes.get(m!.to);
      if (!to?.up) continue;
      this.input(m!.to, { type: "Receive", message: m! });
      delivered++;
    }
  }

  /** Drops queued messages that `match` selects (default: all). */
  drop(match: (m: Message) => boolean = () => true): void {
    this.queue = this.queue.filter((m) => !match(m));
  }

  /** Only messages between members of the same group pass (for {@link deliver}). */
  static within(...groups: readonly (readonly NodeId[])[]): (m: Message) => boolean {
    return (m) => groups.some((g) => g.includes(m.from) && g.includes(m.to));
  }

  /** Makes `id` campaign (a real election, or a pre-vote round first when configured) and lets `among` talk. */
  elect(id: NodeId, among: readonly NodeId[]): void {
    this.input(id, { type: "Timeout", timer: "election", now: 0 });
    this.deliver(ScenarioCluster.within(among));
  }

  #carryOut(id: NodeId, effects: readonly RaftEffect[]): void {
    const n = this.node(id);
    this.effects.get(id)!.push(...effects);
    const persisted: Input[] = [];
    for (const e of effects) {
      switch (e.type) {
        case "Persist":
          if (e.truncateFrom !== undefined) n.entries.length = Math.min(n.entries.length, e.truncateFrom - 1);
          n.entries.push(...e.entries);
          if (e.hardState) n.hard = e.hardState;
          if (e.entries.length > 0) {
            const last = e.entries[e.entries.length - 1]!;
            persisted.push({ type: "Persisted", index: last.index, term: last.term });
          }
          // Durable at once: what waited for it leaves now.
          for (const d of e.after) if (d.type === "Send") this.queue.push(d.message);
          break;
        case "Send":
          this.queue.push(e.message);
          break;
        case "Apply":
          for (const entry of e.entries) this.#apply(id, entry);
          break;
      }
    }
    for (const p of persisted) if (n.up) this.input(id, p);
  }

  #apply(id: NodeId, entry: Entry): void {
    const n = this.node(id);
    const expected = n.applied.length + 1;
    if (entry.index !== expected) throw new Error(`${id} applied ${entry.index}, expected ${expected}`);
    n.applied.push(entry);
    const first = this.#appliedAt.get(entry.index);
    if (!first) this.#appliedAt.set(entry.index, entry);
    else if (first.term !== entry.term || first.kind !== entry.kind) {
      throw new Error(
        `state machine safety: ${id} applied ${describeEntry(entry)} where ${describeEntry(first)} was applied`,
      );
    }
  }

  /** `last index @ last term` of `id`'s log. */
  tip(id: NodeId): string {
    const log = this.state(id).log;
    return `${lastIndex(log)}@${lastTerm(log)}`;
  }
}
