import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  effectsOf,
  entriesOf,
  leaderWith,
  node,
  receive,
  run,
  sent,
  timeout,
} from "../core_helpers.ts";
import { makeConfig } from "../../core/config.ts";
import { entryAt, lastIndex, termAt } from "../../core/log.ts";
import { membershipOf } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import { start, step } from "../../core/step.ts";
import type { Entry, Input, InstallSnapshot, Membership, SnapshotMeta } from "../../core/types.ts";

const abc = membershipOf(["a", "b", "c"]);
const meta = (index: number, term: number, membership: Membership = abc): SnapshotMeta => ({ index, term, membership });
const taken = (m: SnapshotMeta): Input => ({ type: "SnapshotTaken", meta: m });
const restored = (m: SnapshotMeta): Input => ({ type: "SnapshotRestored", meta: m });
const configEntry = (index: number, term: number, m: Membership): Entry => ({
  index,
  term,
  kind: "config",
  data: new Uint8Array(0),
  config: m,
});
const installSnapshot = (p: { from: string; to: string; term: number; meta: SnapshotMeta; done?: boolean }) =>
  receive(
    {
      group: 0,
      from: p.from,
      to: p.to,
      term: p.term,
      type: "InstallSnapshot",
      meta: p.meta,
      offset: 0,
      data: new Uint8Array([1, 2, 3]),
      done: p.done ?? true,
    } satisfies InstallSnapshot,
  );
const snapshotResponse = (s: RaftState, from: string, index: number, done: boolean, success = true) =>
  receive({
    group: 0,
    from,
    to: s.config.id,
    term: s.term,
    type: "InstallSnapshotResponse",
    index,
    offset: done ? 3 : 1,
    done,
    success,
  });

/** A node started over `entries` (all durable) with `commit`, and the effects `start` returned. */
function startWith(
  id: string,
  entries: Entry[],
  commit: number,
  config: Parameters<typeof makeConfig>[0] | object = {},
) {
  return start(makeConfig({ id, preVote: false, checkQuorum: false, ...config }), {
    membership: abc,
    hardState: { term: entries.at(-1)?.term ?? 0, vote: undefined, commit },
    entries,
  });
}

describe("snapshot policy and compaction", () => {
  test("TakeSnapshot every `snapshotEvery` applied entries, not before", () => {
    const started = startWith("b", entriesOf([1, 1, 1, 1, 1, 1, 1]), 7, { snapshotEvery: 5 });
    assert.deepEqual(effectsOf(started.effects, "TakeSnapshot").map((e) => e.index), [7], "replay counts");
    const append = (from: number, n: number, commit: number) =>
      receive(appendEntries({
        from: "a",
        to: "b",
        term: 1,
        prevIndex: from - 1,
        prevTerm: 1,
        entries: entriesOf(Array(n).fill(1), from),
        commit,
      }));
    let r = run(started.state, append(8, 4, 11), { type: "Persisted", index: 11, term: 1 });
    assert.equal(r.state.applied, 11);
    assert.deepEqual(effectsOf(r.effects, "TakeSnapshot"), [], "4 applied since the last request");
    r = run(r.state, append(12, 1, 12), { type: "Persisted", index: 12, term: 1 });
    assert.deepEqual(effectsOf(r.effects, "TakeSnapshot").map((e) => e.index), [12]);
  });

  test("snapshotEvery 0 never asks for a snapshot", () => {
    const started = startWith("b", entriesOf(Array(50).fill(1)), 50);
    assert.deepEqual(effectsOf(started.effects, "TakeSnapshot"), []);
  });

  test("SnapshotTaken compacts the log, keeping `keepAfterSnapshot` entries behind the snapshot", () => {
    const s = node("a", { log: Array(20).fill(1), commit: 20, config: { keepAfterSnapshot: 5 } });
    const r = step(s, taken(meta(20, 1)));
    assert.deepEqual(effectsOf(r.effects, "Compact").map((e) => e.index), [15]);
    assert.equal(r.state.log.offset, 15);
    assert.equal(entryAt(r.state.log, 15), undefined, "compacted");
    assert.equal(entryAt(r.state.log, 16)?.index, 16, "kept for slow followers");
    assert.equal(termAt(r.state.log, 15), 1, "the term at the cut is still known (consistency check)");
    assert.deepEqual(r.state.snapshot, meta(20, 1));
    assert.equal(lastIndex(r.state.log), 20);
  });

  test("with keepAfterSnapshot 0 the log is compacted up to the snapshot itself", () => {
    const s = node("a", { log: Array(10).fill(1), commit: 10, config: { keepAfterSnapshot: 0 } });
    const r = step(s, taken(meta(10, 1)));
    assert.deepEqual(effectsOf(r.effects, "Compact").map((e) => e.index), [10]);
    assert.equal(lastIndex(r.state.log), 10);
  });

  test("compaction never passes the applied index; an older snapshot is ignored", () => {
    const s = node("a", { log: Array(20).fill(1), commit: 8, config: { keepAfterSnapshot: 0 } });
    assert.equal(s.applied, 8);
    let r = step(s, taken(meta(12, 1)));
    assert.ok(r.state.log.offset <= 8, `offset ${r.state.log.offset} past applied 8`);
    r = run(step(s, taken(meta(8, 1))).state, taken(meta(6, 1)));
    assert.deepEqual(r.effects, [], "a snapshot older than ours changes nothing");
    assert.equal(r.state.snapshot?.index, 8);
  });

  test("configurations roll forward: the one in force at the cut and later ones are kept", () => {
    const m1 = membershipOf(["a", "b", "c", "d"]);
    const m2 = membershipOf(["a", "b", "c", "d", "e"]);
    const entries = [...entriesOf([1, 1]), configEntry(3, 1, m1), ...entriesOf(Array(14).fill(1), 4)];
    entries.push(configEntry(18, 1, m2), ...entriesOf([1, 1], 19));
    const s = startWith("a", entries, 20, { keepAfterSnapshot: 5 }).state;
    assert.deepEqual(s.configs.map((c) => c.index), [0, 3, 18]);
    const r = step(s, taken(meta(20, 1, m2)));
    assert.equal(r.state.log.offset, 15);
    assert.deepEqual(r.state.configs.map((c) => c.index), [3, 18], "the bootstrap config is gone");
    assert.deepEqual(currentMembership(r.state), m2);
  });
});

/** Leader `a` (term 2) over a 20-entry log, compacted to its no-op at 21 with nothing kept; c never answered. */
function compactedLeader(): RaftState {
  const l = leaderWith("a", {
    log: Array(20).fill(1),
    commit: 20,
    replicating: ["b"],
    config: { keepAfterSnapshot: 0, checkQuorum: true },
  });
  assert.equal(l.commit, 21);
  const r = step(l, taken(meta(21, 2)));
  assert.equal(r.state.log.offset, 21);
  return r.state;
}

/** A check-quorum round in which `b` was heard from (so the leader keeps its quorum). */
function quorumRound(s: RaftState): Input[] {
  return [receive(appendResponse({ from: "b", to: "a", term: s.term, index: 21 })), timeout("quorum")];
}

/** `c` rejects the leader's probe: its log is only 4 entries long. */
function cIsBehind(s: RaftState): Input {
  const pr = s.role.kind === "leader" ? s.role.progress.get("c")! : undefined;
  return receive(appendResponse({
    from: "c",
    to: "a",
    term: s.term,
    index: pr!.next - 1,
    success: false,
    conflictIndex: 5,
  }));
}

function progressOf(s: RaftState, id: string) {
  assert.equal(s.role.kind, "leader");
  return s.role.kind === "leader" ? s.role.progress.get(id)! : undefined!;
}

describe("sending snapshots (leader)", () => {
  test("a follower whose next entries are compacted is sent the snapshot, and appends to it pause", () => {
    const s = compactedLeader();
    const r = run(s, cIsBehind(s));
    assert.deepEqual(
      effectsOf(r.effects, "SendSnapshot").map((e) => [e.to, e.term, e.meta.index]),
      [["c", 2, 21]],
    );
    assert.equal(progressOf(r.state, "c").state, "snapshot");
    const more = run(r.state, { type: "Propose", proposals: [{ requestId: 1, data: new Uint8Array([7]) }] });
    assert.equal(sent(more.effects, "AppendEntries", "c").length, 0, "no appends while the snapshot is in flight");
    assert.ok(sent(more.effects, "AppendEntries", "b").length > 0);
  });

  test("a chunk acknowledgement (not done) keeps the follower in snapshot state and marks it active", () => {
    let r = run(compactedLeader());
    r = run(r.state, cIsBehind(r.state));
    r = run(r.state, ...quorumRound(r.state));
    assert.equal(progressOf(r.state, "c").active, false);
    r = run(r.state, snapshotResponse(r.state, "c", 21, false));
    assert.equal(progressOf(r.state, "c").state, "snapshot");
    assert.equal(progressOf(r.state, "c").active, true);
    assert.deepEqual(effectsOf(r.effects, "SendSnapshot"), [], "no restart of a transfer in progress");
  });

  test("the final response moves the follower out of snapshot state and replication resumes after it", () => {
    let r = run(compactedLeader());
    r = run(r.state, cIsBehind(r.state));
    r = run(r.state, snapshotResponse(r.state, "c", 21, true));
    const pr = progressOf(r.state, "c");
    assert.equal(pr.state, "probe");
    assert.equal(pr.match, 21);
    assert.deepEqual(sent(r.effects, "AppendEntries", "c").map((m) => m.prevIndex), [21]);
  });

  test("a failed transfer is abandoned and, the entries still compacted, the snapshot is sent again", () => {
    let r = run(compactedLeader());
    r = run(r.state, cIsBehind(r.state));
    r = run(r.state, snapshotResponse(r.state, "c", 21, true, false));
    assert.equal(progressOf(r.state, "c").state, "probe");
    assert.equal(progressOf(r.state, "c").match, 0, "a failed install confirms nothing");
    assert.deepEqual(effectsOf(r.effects, "SendSnapshot"), [], "not at once: c may be down");
    r = run(r.state, timeout("heartbeat"));
    r = run(r.state, cIsBehind(r.state));
    assert.deepEqual(effectsOf(r.effects, "SendSnapshot").map((e) => e.to), ["c"], "resent once c answers");
  });

  test("an unreachable follower's snapshot is presumed lost: probed from its match, so sent again", () => {
    let r = run(compactedLeader());
    r = run(r.state, cIsBehind(r.state));
    r = run(r.state, { type: "Unreachable", to: "c" });
    assert.equal(progressOf(r.state, "c").state, "probe");
    assert.equal(progressOf(r.state, "c").next, 1, "not past the snapshot it never confirmed");
    r = run(r.state, { type: "Timeout", timer: "heartbeat" });
    r = run(r.state, cIsBehind(r.state));
    assert.deepEqual(effectsOf(r.effects, "SendSnapshot").map((e) => e.to), ["c"]);
  });

  for (const checkQuorum of [true, false]) {
    test(`a transfer with no progress for a whole leader round is presumed lost and resent (checkQuorum ${checkQuorum})`, () => {
      const l = leaderWith("a", {
        log: Array(20).fill(1),
        commit: 20,
        replicating: ["b"],
        config: { keepAfterSnapshot: 0, checkQuorum },
      });
      let r = run(l, taken(meta(21, 2)));
      r = run(r.state, cIsBehind(r.state));
      r = run(r.state, ...quorumRound(r.state));
      assert.equal(progressOf(r.state, "c").state, "snapshot", "one round may be a slow transfer");
      assert.deepEqual(effectsOf(r.effects, "SendSnapshot"), []);
      r = run(r.state, ...quorumRound(r.state));
      assert.equal(progressOf(r.state, "c").state, "probe", "presumed lost");
      assert.equal(r.state.role.kind, "leader");
      r = run(r.state, timeout("heartbeat"));
      r = run(r.state, cIsBehind(r.state));
      assert.deepEqual(effectsOf(r.effects, "SendSnapshot").map((e) => e.to), ["c"], "resent once c answers");
    });
  }
});

describe("receiving snapshots (follower)", () => {
  test("InstallSnapshot at or below the commit index is answered at once, with nothing to store", () => {
    const s = node("b", { log: Array(10).fill(1), commit: 10 });
    const r = step(s, installSnapshot({ from: "a", to: "b", term: 1, meta: meta(8, 1) }));
    assert.deepEqual(effectsOf(r.effects, "ReceiveSnapshotChunk"), []);
    const [reply] = sent(r.effects, "InstallSnapshotResponse", "a");
    assert.deepEqual([reply?.done, reply?.success, reply?.index], [true, true, 10]);
  });

  test("a chunk of a newer snapshot goes to the interpreter as ReceiveSnapshotChunk", () => {
    const s = node("b", { log: [1, 1], commit: 2 });
    const r = step(s, installSnapshot({ from: "a", to: "b", term: 1, meta: meta(30, 1), done: false }));
    const [chunk] = effectsOf(r.effects, "ReceiveSnapshotChunk");
    assert.deepEqual([chunk?.from, chunk?.meta.index, chunk?.offset, [...chunk!.data], chunk?.done], [
      "a",
      30,
      0,
      [1, 2, 3],
      false,
    ]);
    assert.equal(r.state.role.kind === "follower" && r.state.role.leader, "a", "a snapshot comes from the leader");
  });

  test("SnapshotRestored keeps the log suffix that matches the snapshot's last entry (§7)", () => {
    let r = run(
      node("b", { log: Array(10).fill(1), commit: 3 }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 10, prevTerm: 1, commit: 3 })),
    );
    r = run(r.state, restored(meta(6, 1)));
    assert.equal(r.state.log.offset, 6);
    assert.equal(lastIndex(r.state.log), 10, "entries 7..10 kept");
    assert.equal(r.state.commit, 6);
    assert.equal(r.state.applied, 6);
    assert.equal(persistedTruncation(r), undefined, "nothing truncated");
    assert.deepEqual(effectsOf(r.effects, "Compact").map((e) => e.index), [6]);
    assert.deepEqual(effectsOf(r.effects, "Apply"), [], "the snapshot replaces applying 4..6");
    const [reply] = sent(r.effects, "InstallSnapshotResponse", "a");
    assert.deepEqual([reply?.done, reply?.success, reply?.index], [true, true, 6]);
  });

  test("SnapshotRestored discards a log that conflicts with the snapshot", () => {
    const r = run(node("b", { log: Array(10).fill(1), commit: 3 }), restored(meta(6, 2)));
    assert.equal(lastIndex(r.state.log), 6, "the whole log goes");
    assert.equal(termAt(r.state.log, 6), 2);
    assert.equal(persistedTruncation(r), 1, "the stored log is dropped too");
  });

  test("SnapshotRestored beyond the end of the log replaces it", () => {
    const r = run(node("b", { log: [1, 1], commit: 2 }), restored(meta(40, 3)));
    assert.equal(r.state.log.offset, 40);
    assert.equal(lastIndex(r.state.log), 40);
    assert.equal(r.state.commit, 40);
    assert.deepEqual(r.state.snapshot, meta(40, 3));
  });

  test("configurations roll forward to the snapshot's membership, plus later config entries kept", () => {
    const m1 = membershipOf(["a", "b", "c", "d"]);
    const m2 = membershipOf(["a", "b", "c", "d", "e"]);
    const entries = [...entriesOf([1, 1, 1, 1, 1]), configEntry(6, 1, m2), ...entriesOf([1], 7)];
    const s = startWith("b", entries, 2).state;
    const r = step(s, restored(meta(4, 1, m1)));
    assert.deepEqual(r.state.configs.map((c) => [c.index, c.membership]), [[4, m1], [6, m2]]);
    const discarded = step(s, restored(meta(8, 2, m1)));
    assert.deepEqual(discarded.state.configs.map((c) => [c.index, c.membership]), [[8, m1]]);
    assert.deepEqual(currentMembership(discarded.state), m1);
  });

  test("start keeps a recovered log only if it holds the snapshot's last entry with the snapshot's term (§7)", () => {
    const boot = (entries: Entry[]) =>
      start(makeConfig({ id: "b", preVote: false, checkQuorum: false }), {
        membership: abc,
        hardState: { term: 2, vote: undefined, commit: 2 },
        entries,
        snapshot: meta(2, 2),
      }).state;
    // Entry 2 has term 1 in the log but term 2 in the snapshot: the log conflicts and is dropped.
    const conflicting = boot(entriesOf([1, 1, 1]));
    assert.equal(lastIndex(conflicting.log), 2);
    assert.equal(termAt(conflicting.log, 2), 2);
    assert.equal(entryAt(conflicting.log, 3), undefined);
    // A log that agrees at 2 keeps what follows.
    const agreeing = boot(entriesOf([1, 2, 2]));
    assert.equal(lastIndex(agreeing.log), 3);
  });

  test("start adopts at least the term of its last log entry, even if the hard state says less", () => {
    const s = start(makeConfig({ id: "b" }), {
      membership: abc,
      hardState: { term: 1, vote: undefined, commit: 0 },
      entries: entriesOf([1, 3]),
    }).state;
    assert.equal(s.term, 3);
  });

  test("SnapshotRestored for a snapshot already applied is ignored", () => {
    const s = node("b", { log: Array(10).fill(1), commit: 10 });
    const r = step(s, restored(meta(8, 1)));
    assert.deepEqual(r.effects, []);
    assert.equal(r.state.log.offset, s.log.offset);
  });
});

function persistedTruncation(r: { effects: readonly import("../../core/types.ts").RaftEffect[] }): number | undefined {
  return effectsOf(r.effects, "Persist").find((p) => p.truncateFrom !== undefined)?.truncateFrom;
}
