import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appendEntries,
  appendResponse,
  leaderWith,
  node,
  receive,
  requestVote,
  voteResponse,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex, sliceLog, termAt } from "../../core/log.ts";
import type { RaftState } from "../../core/state.ts";
import type { Entry, Input } from "../../core/types.ts";

/**
 * Everything observable about a state, as plain data (Maps become arrays),
 * plus the log's entry objects, whose identity must not change either. The
 * log's shared buffer is deliberately not compared: versions may share it,
 * and only what a version *reads* must stay the same.
 */
function snapshot(s: RaftState): { data: unknown; entries: readonly Entry[] } {
  const role = s.role.kind === "leader"
    ? { ...s.role, progress: [...s.role.progress.entries()] }
    : s.role.kind === "follower"
    ? { ...s.role }
    : { ...s.role, votes: [...s.role.votes.entries()] };
  const entries = s.log.length > 0 ? sliceLog(s.log, s.log.offset + 1, lastIndex(s.log)) : [];
  const data = structuredClone({
    config: s.config,
    term: s.term,
    vote: s.vote,
    commit: s.commit,
    applied: s.applied,
    snapshot: s.snapshot,
    configs: s.configs,
    role,
    rng: s.rng,
    snapshotRequested: s.snapshotRequested,
    log: { offset: s.log.offset, offsetTerm: s.log.offsetTerm, length: s.log.length, stable: s.log.stable },
    terms: entries.map((e) => [e.index, e.term, e.kind]),
  });
  return { data, entries };
}

function assertUnchanged(s: RaftState, before: { data: unknown; entries: readonly Entry[] }, label: string): void {
  const now = snapshot(s);
  assert.deepEqual(now.data, before.data, label);
  assert.equal(now.entries.length, before.entries.length, label);
  assert.ok(now.entries.every((e, i) => e === before.entries[i]), `${label}: entry objects`);
}

/** An input recipe, turned into a concrete input against the current state so it is plausible. */
type Recipe =
  | { kind: "timeout"; timer: "election" | "heartbeat" | "quorum" | "transfer" }
  | { kind: "propose"; count: number }
  | { kind: "persisted"; back: number; termDelta: number }
  | { kind: "append"; from: string; termDelta: number; back: number; count: number; commitBack: number }
  | { kind: "appendResponse"; from: string; termDelta: number; back: number; success: boolean; seq: number }
  | { kind: "vote"; from: string; termDelta: number; preVote: boolean; back: number }
  | { kind: "voteResponse"; from: string; termDelta: number; preVote: boolean; granted: boolean }
  | { kind: "read" }
  | { kind: "transfer"; to: string }
  | { kind: "confChange"; node: string };

const peer = fc.constantFrom("b", "c");
const delta = fc.integer({ min: -1, max: 1 });
const recipe: fc.Arbitrary<Recipe> = fc.oneof(
  fc.record({
    kind: fc.constant("timeout" as const),
    timer: fc.constantFrom("election" as const, "heartbeat" as const, "quorum" as const, "transfer" as const),
  }),
  fc.record({ kind: fc.constant("propose" as const), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    kind: fc.constant("persisted" as const),
    back: fc.nat({ max: 3 }),
    termDelta: fc.integer({ min: -1, max: 0 }),
  }),
  fc.record({
    kind: fc.constant("append" as const),
    from: peer,
    termDelta: delta,
    back: fc.nat({ max: 3 }),
    count: fc.nat({ max: 3 }),
    commitBack: fc.nat({ max: 4 }),
  }),
  fc.record({
    kind: fc.constant("appendResponse" as const),
    from: peer,
    termDelta: delta,
    back: fc.nat({ max: 3 }),
    success: fc.boolean(),
    seq: fc.nat({ max: 5 }),
  }),
  fc.record({
    kind: fc.constant("vote" as const),
    from: peer,
    termDelta: delta,
    preVote: fc.boolean(),
    back: fc.nat({ max: 2 }),
  }),
  fc.record({
    kind: fc.constant("voteResponse" as const),
    from: peer,
    termDelta: fc.integer({ min: 0, max: 1 }),
    preVote: fc.boolean(),
    granted: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("read" as const) }),
  fc.record({ kind: fc.constant("transfer" as const), to: peer }),
  fc.record({ kind: fc.constant("confChange" as const), node: fc.constantFrom("d", "b") }),
);

let requestIds = 0;

function toInput(s: RaftState, r: Recipe): Input {
  const last = lastIndex(s.log);
  const term = Math.max(0, s.term + ("termDelta" in r ? r.termDelta : 0));
  switch (r.kind) {
    case "timeout":
      return { type: "Timeout", timer: r.timer };
    case "propose":
      return {
        type: "Propose",
        proposals: Array.from({ length: r.count }, () => ({ requestId: ++requestIds, data: new Uint8Array([1, 2]) })),
      };
    case "persisted": {
      const index = Math.max(s.log.offset, last - r.back);
      return { type: "Persisted", index, term: Math.max(0, (termAt(s.log, index) ?? 0) + r.termDelta) };
    }
    case "append": {
      const prevIndex = Math.max(s.commit, last - r.back);
      const entries = Array.from({ length: r.count }, (_, i): Entry => ({
        index: prevIndex + 1 + i,
        term,
        kind: "command",
        data: new Uint8Array([i]),
        config: undefined,
      }));
      const prevTerm = termAt(s.log, prevIndex) ?? 0;
      if (prevTerm > term) return { type: "Timeout", timer: "heartbeat" }; // no legitimate leader sends this
      return receive(
        appendEntries({
          from: r.from,
          to: s.config.id,
          term,
          prevIndex,
          prevTerm,
          entries,
          commit: Math.max(0, prevIndex + r.count - r.commitBack),
        }),
      );
    }
    case "appendResponse":
      return receive(
        appendResponse({
          from: r.from,
          to: s.config.id,
          term,
          index: Math.max(0, last - r.back),
          success: r.success,
          conflictTerm: r.success ? 0 : termAt(s.log, Math.max(0, last - r.back - 1)) ?? 0,
          conflictIndex: r.success ? 0 : Math.max(1, last - r.back - 1),
          seq: r.seq,
        }),
      );
    case "vote":
      return receive(
        requestVote({
          from: r.from,
          to: s.config.id,
          term: r.preVote ? term + 1 : term,
          lastIndex: Math.max(0, last - r.back),
          lastTerm: termAt(s.log, Math.max(0, last - r.back)) ?? 0,
          preVote: r.preVote,
        }),
      );
    case "voteResponse":
      return receive(voteResponse({ from: r.from, to: s.config.id, term, preVote: r.preVote, granted: r.granted }));
    case "read":
      return { type: "ReadIndex", requestId: ++requestIds };
    case "transfer":
      return { type: "TransferLeadership", requestId: ++requestIds, to: r.to };
    case "confChange":
      return { type: "ProposeConfChange", requestId: ++requestIds, change: { type: "addLearner", node: r.node } };
  }
}

describe("purity of step", () => {
  const starts: [string, () => RaftState][] = [
    ["follower", () => node("a", { log: [1, 1, 2], term: 2, commit: 1, config: { preVote: true, checkQuorum: true } })],
    ["leader", () => leaderWith("a", { log: [1, 1], replicating: ["b"], config: { checkQuorum: true } })],
    ["single-node leader", () => leaderWith("a", { voters: ["a"] })],
  ];
  for (const [name, make] of starts) {
    test(`step never modifies the state it is given (${name}, random inputs)`, () => {
      fc.assert(
        fc.property(fc.array(recipe, { minLength: 1, maxLength: 40 }), (recipes) => {
          let s = make();
          const history: [RaftState, ReturnType<typeof snapshot>][] = [];
          for (const r of recipes) {
            const before = snapshot(s);
            history.push([s, before]);
            const input = toInput(s, r);
            const next = step(s, input).state;
            assertUnchanged(s, before, `after ${input.type}`);
            s = next;
          }
          // Later steps (which may grow the shared log buffer in place) change no earlier state either.
          history.forEach(([old, snap], i) => assertUnchanged(old, snap, `state ${i} at the end`));
        }),
        { numRuns: 150 },
      );
    });
  }
});
