import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  appliedIndexes,
  bytes,
  effectsOf,
  entriesOf,
  leaderWith,
  logTerms,
  node,
  persisted,
  persistedAll,
  propose,
  receive,
  run,
  sent,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex } from "../../core/log.ts";

describe("AppendEntries receiver (Figure 2)", () => {
  test("Figure 2 AppendEntries: reject when the log has no entry at prevIndex", () => {
    const { state, effects } = run(
      node("a", { log: [1, 1] }),
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 4, prevTerm: 1, entries: entriesOf([1], 5) })),
    );
    assert.equal(lastIndex(state.log), 2, "nothing appended");
    assert.equal(persisted(effects).length, 0);
    const [r] = sent(effects, "AppendEntriesResponse", "b");
    assert.equal(r?.success, false);
    assert.equal(r?.index, 4);
    assert.deepEqual([r?.conflictTerm, r?.conflictIndex], [0, 3], "hint: our log ends at 2");
  });

  test("Figure 2 AppendEntries: reject when the entry at prevIndex has another term", () => {
    const { state, effects } = run(
      node("a", { log: [1, 2, 2, 2], term: 3 }),
      receive(appendEntries({ from: "b", to: "a", term: 3, prevIndex: 4, prevTerm: 3, entries: entriesOf([3], 5) })),
    );
    assert.deepEqual(logTerms(state), [1, 2, 2, 2]);
    const [r] = sent(effects, "AppendEntriesResponse", "b");
    assert.equal(r?.success, false);
    assert.deepEqual([r?.conflictTerm, r?.conflictIndex], [2, 2], "hint: our term-2 run starts at 2");
  });

  test("Figure 2 AppendEntries: accept and append when prevIndex/prevTerm match", () => {
    const { state, effects } = run(
      node("a", { log: [1, 1] }),
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 2, prevTerm: 1, entries: entriesOf([1, 1], 3) })),
    );
    assert.deepEqual(logTerms(state), [1, 1, 1, 1]);
    const [p] = persisted(effects);
    assert.deepEqual(p?.entries.map((e) => e.index), [3, 4]);
    assert.equal(p?.truncateFrom, undefined);
    const [r] = sent(effects, "AppendEntriesResponse", "b");
    assert.deepEqual([r?.success, r?.index], [true, 4]);
  });

  test("Figure 2 AppendEntries: a conflicting suffix is truncated and replaced (Persist.truncateFrom)", () => {
    const { state, effects } = run(
      node("a", { log: [1, 1, 2, 2, 2], term: 2 }),
      receive(appendEntries({ from: "b", to: "a", term: 3, prevIndex: 2, prevTerm: 1, entries: entriesOf([3, 3], 3) })),
    );
    assert.deepEqual(logTerms(state), [1, 1, 3, 3]);
    const [p] = persisted(effects);
    assert.equal(p?.truncateFrom, 3);
    assert.deepEqual(p?.entries.map((e) => [e.index, e.term]), [[3, 3], [4, 3]]);
    assert.equal(sent(effects, "AppendEntriesResponse", "b")[0]?.index, 4);
  });

  test("Figure 2 AppendEntries: entries already held are not re-persisted, only the new tail", () => {
    const { effects } = run(
      node("a", { log: [1, 1, 1] }),
      receive(
        appendEntries({ from: "b", to: "a", term: 1, prevIndex: 0, prevTerm: 0, entries: entriesOf([1, 1, 1, 1]) }),
      ),
    );
    const [p] = persisted(effects);
    assert.deepEqual(p?.entries.map((e) => e.index), [4]);
    assert.equal(p?.truncateFrom, undefined);
  });

  test("Figure 2 AppendEntries: a stale (reordered) append holding only a prefix does not truncate later entries", () => {
    const { state, effects } = run(
      node("a", { log: [1, 1, 1, 1, 1] }),
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 1, prevTerm: 1, entries: entriesOf([1, 1], 2) })),
    );
    assert.equal(lastIndex(state.log), 5);
    assert.equal(persisted(effects).length, 0, "nothing to write");
    assert.deepEqual(sent(effects, "AppendEntriesResponse", "b").map((r) => [r.success, r.index]), [[true, 3]]);
  });

  test("Figure 2 AppendEntries: follower commit = min(leaderCommit, index of last new entry)", () => {
    const base = node("a", { log: [1] });
    const limitedByEntries = run(
      base,
      receive(
        appendEntries({
          from: "b",
          to: "a",
          term: 1,
          prevIndex: 1,
          prevTerm: 1,
          entries: entriesOf([1], 2),
          commit: 9,
        }),
      ),
    );
    assert.equal(limitedByEntries.state.commit, 2);
    const limitedByLeader = run(
      base,
      receive(
        appendEntries({
          from: "b",
          to: "a",
          term: 1,
          prevIndex: 1,
          prevTerm: 1,
          entries: entriesOf([1, 1], 2),
          commit: 2,
        }),
      ),
    );
    assert.equal(limitedByLeader.state.commit, 2);
    // A heartbeat anchored at 1 must not commit entries beyond 1 that it did not check (they may be stale).
    const heartbeat = run(
      node("a", { log: [1, 1, 1] }),
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 1, prevTerm: 1, commit: 3 })),
    );
    assert.equal(heartbeat.state.commit, 1);
  });

  test("Figure 2 AppendEntries: the follower's commit index never moves backwards", () => {
    const s0 = node("a", { log: [1, 1, 1], commit: 3 });
    const { state } = run(
      s0,
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 1, prevTerm: 1, commit: 1 })),
    );
    assert.equal(state.commit, 3);
  });

  test("Figure 2 rules for all servers: committed entries are applied once durable, in order, exactly once", () => {
    let r = run(
      node("a", { log: [] }),
      receive(
        appendEntries({
          from: "b",
          to: "a",
          term: 1,
          prevIndex: 0,
          prevTerm: 0,
          entries: entriesOf([1, 1, 1]),
          commit: 2,
        }),
      ),
    );
    assert.equal(r.state.commit, 2);
    assert.deepEqual(appliedIndexes(r.effects), [], "not yet durable: nothing applied");
    r = run(r.state, { type: "Persisted", index: 3, term: 1 });
    assert.deepEqual(appliedIndexes(r.effects), [1, 2]);
    // The leader's commit advances: only the new entry is applied.
    r = run(r.state, receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 3, prevTerm: 1, commit: 3 })));
    assert.deepEqual(appliedIndexes(r.effects), [3]);
    // Repeats apply nothing.
    r = run(
      r.state,
      { type: "Persisted", index: 3, term: 1 },
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 3, prevTerm: 1, commit: 3 })),
    );
    assert.deepEqual(appliedIndexes(r.effects), []);
    assert.equal(r.state.applied, 3);
  });

  test("thesis §10.2.1 a stale Persisted (its entry was truncated and replaced) is ignored", () => {
    // Entries 2..3 of term 1 are being written when a new leader replaces them with term 2.
    let r = run(
      node("a", { log: [1] }),
      receive(appendEntries({ from: "b", to: "a", term: 1, prevIndex: 1, prevTerm: 1, entries: entriesOf([1, 1], 2) })),
      receive(
        appendEntries({
          from: "c",
          to: "a",
          term: 2,
          prevIndex: 1,
          prevTerm: 1,
          entries: entriesOf([2, 2], 2),
          commit: 3,
        }),
      ),
    );
    assert.equal(r.state.commit, 3);
    assert.deepEqual(appliedIndexes(r.effects), [1], "only the durable entry 1 applies");
    r = run(r.state, { type: "Persisted", index: 3, term: 1 });
    assert.equal(r.state.log.stable, 1, "the old write's report does not cover the new entries");
    assert.deepEqual(appliedIndexes(r.effects), []);
    r = run(r.state, { type: "Persisted", index: 3, term: 2 });
    assert.deepEqual(appliedIndexes(r.effects), [2, 3]);
  });
});

describe("leader commit (§5.3, §5.4.2)", () => {
  test("§5.3 the leader commits an entry once a majority stores it and tells followers", () => {
    const leader = leaderWith("a", { term: 1, replicating: ["b"] });
    const at = lastIndex(leader.log);
    let r = run(leader, propose([bytes("x")]), persistedAll(leader));
    r = run(r.state, persistedAll(r.state));
    assert.equal(r.state.commit, at, "leader alone is not a majority");
    r = run(r.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: at + 1 })));
    assert.equal(r.state.commit, at + 1);
    assert.deepEqual(appliedIndexes(r.effects), [at + 1]);
    assert.ok(effectsOf(r.effects, "Committed").some((c) => c.index === at + 1));
    // The next message to a follower carries the new commit index.
    const beat = sent(step(r.state, { type: "Timeout", timer: "heartbeat" }).effects, "AppendEntries", "b")[0];
    assert.equal(beat?.commit, at + 1);
  });

  test("§5.4.2 an old-term entry stored on a majority is not committed until an entry of the current term is", () => {
    // a holds [1, 2] from earlier leaders and is elected in term 3 (no-op at 3).
    const leader = leaderWith("a", { log: [1, 2], term: 2 });
    assert.equal(leader.term, 3);
    assert.equal(leader.commit, 0);
    // b confirms it holds up to 2 (the old-term entry), not the no-op.
    let r = run(leader, receive(appendResponse({ from: "b", to: "a", term: 3, index: 2 })));
    assert.equal(r.state.commit, 0, "entry 2 (term 2) is on a majority but must not commit by counting");
    assert.deepEqual(appliedIndexes(r.effects), []);
    // Once b stores the term-3 no-op, everything up to it commits.
    r = run(r.state, receive(appendResponse({ from: "b", to: "a", term: 3, index: 3 })));
    assert.equal(r.state.commit, 3);
    assert.deepEqual(appliedIndexes(r.effects), [1, 2, 3]);
  });

  test("§5.3 in a five-node cluster two acknowledgements plus the leader commit; one does not", () => {
    const voters = ["a", "b", "c", "d", "e"];
    const leader = leaderWith("a", { voters, term: 1 });
    const at = lastIndex(leader.log);
    let r = run(leader, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: at })));
    assert.equal(r.state.commit, 0);
    r = run(r.state, receive(appendResponse({ from: "e", to: "a", term: leader.term, index: at })));
    assert.equal(r.state.commit, at);
  });
});

describe("asynchronous persistence on the leader (thesis §10.2.1)", () => {
  test("§10.2.1 the leader sends AppendEntries for entries it is still writing", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const { effects } = step(leader, propose([bytes("x")]));
    const [p] = persisted(effects);
    assert.ok(p && p.entries.length === 1);
    const appends = sent(effects, "AppendEntries");
    assert.deepEqual(appends.map((m) => m.to).sort(), ["b", "c"]);
    assert.ok(appends.every((m) => m.entries.some((e) => e.index === p.entries[0]!.index)));
  });

  test("§10.2.1 the leader counts itself toward commit only after its own Persisted", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const at = lastIndex(leader.log) + 1;
    let r = run(
      leader,
      propose([bytes("x")]),
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: at })),
    );
    assert.equal(r.state.commit, at - 1, "one follower + a leader that has not written it is no majority");
    r = run(r.state, { type: "Persisted", index: at, term: leader.term });
    assert.equal(r.state.commit, at);
    assert.deepEqual(appliedIndexes(r.effects), [at]);
  });

  test("§10.2.1 followers alone may commit an entry, but the leader applies it only once durable locally", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const at = lastIndex(leader.log) + 1;
    let r = run(
      leader,
      propose([bytes("x")]),
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: at })),
      receive(appendResponse({ from: "c", to: "a", term: leader.term, index: at })),
    );
    assert.equal(r.state.commit, at);
    assert.deepEqual(appliedIndexes(r.effects), []);
    r = run(r.state, { type: "Persisted", index: at, term: leader.term });
    assert.deepEqual(appliedIndexes(r.effects), [at]);
  });

  test("§10.2.1 a single-node cluster commits a proposal only after Persisted", () => {
    let r = run(node("a", { voters: ["a"] }), { type: "Timeout", timer: "election" });
    assert.equal(r.state.role.kind, "leader");
    assert.equal(r.state.commit, 0, "the no-op is not durable yet");
    r = run(r.state, persistedAll(r.state), propose([bytes("x"), bytes("y")]));
    const at = lastIndex(r.state.log);
    assert.equal(r.state.commit, at - 2);
    r = run(r.state, { type: "Persisted", index: at, term: r.state.term });
    assert.equal(r.state.commit, at);
    assert.deepEqual(appliedIndexes(r.effects), [at - 1, at]);
  });

  test("§10.2.1 a leader's stale Persisted for an index holding another term is ignored", () => {
    let r = run(node("a", { voters: ["a"] }), { type: "Timeout", timer: "election" });
    const at = lastIndex(r.state.log);
    r = run(r.state, { type: "Persisted", index: at, term: r.state.term + 1 });
    assert.equal(r.state.commit, 0);
    assert.equal(r.state.log.stable, 0);
  });
});
