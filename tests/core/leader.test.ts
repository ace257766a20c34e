import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  effectsOf,
  leaderWith,
  logTerms,
  node,
  persistedAll,
  propose,
  receive,
  run,
  sent,
  timeout,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex } from "../../core/log.ts";
import type { RaftState } from "../../core/state.ts";
import type { Message } from "../../core/types.ts";

/** A payload of `n` bytes; with the 16-byte entry overhead an entry costs n + 16. */
const payload = (n: number) => new Uint8Array(n);
const progressOf = (s: RaftState, id: string) => {
  if (s.role.kind !== "leader") throw new Error("not leader");
  return s.role.progress.get(id)!;
};

describe("flow control (etcd-style progress)", () => {
  test("probe: a follower whose log position is unknown gets one append at a time until it answers", () => {
    const leader = leaderWith("a", {});
    assert.equal(progressOf(leader, "b").state, "probe");
    // The election's no-op probe is still outstanding: new proposals wait.
    const r1 = step(leader, propose([payload(4)]));
    assert.equal(sent(r1.effects, "AppendEntries", "b").length, 0);
    const r2 = step(leader, propose([payload(4)], 2));
    assert.equal(sent(r2.effects, "AppendEntries", "b").length, 0);
    // Its answer moves it to replicate and what was held back goes out.
    const r3 = run(
      r1.state,
      propose([payload(4)], 2),
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: lastIndex(leader.log) })),
    );
    assert.equal(progressOf(r3.state, "b").state, "replicate");
    const out = sent(r3.effects, "AppendEntries", "b");
    assert.equal(out.length, 1);
    assert.deepEqual(out[0]!.entries.map((e) => e.index), [lastIndex(leader.log) + 1, lastIndex(leader.log) + 2]);
  });

  test("probe: a heartbeat round allows another probe, so a lost probe cannot stall a follower", () => {
    const leader = leaderWith("a", {});
    const r = run(leader, propose([payload(4)]), timeout("heartbeat"), propose([payload(4)], 2));
    // After the heartbeat, the next proposal may go out as a fresh probe.
    const appends = sent(r.effects, "AppendEntries", "b").filter((m) => m.entries.length > 0);
    assert.equal(appends.length, 1);
  });

  test("replicate: appends are pipelined up to maxInflightMessages, then pause", () => {
    // One 4-byte-payload entry (20 bytes) per message.
    const leader = leaderWith("a", { replicating: ["b"], config: { maxInflightMessages: 3, maxMessageBytes: 20 } });
    const { state, effects } = run(leader, propose([1, 2, 3, 4, 5].map(() => payload(4))));
    const out = sent(effects, "AppendEntries", "b");
    assert.equal(out.length, 3, "the window holds three messages");
    assert.ok(out.every((m) => m.entries.length === 1));
    assert.deepEqual(out.map((m) => m.prevIndex), [out[0]!.prevIndex, out[0]!.prevIndex + 1, out[0]!.prevIndex + 2]);
    // Nothing more goes out until something is acknowledged.
    const more = step(state, propose([payload(4)], 9));
    assert.equal(sent(more.effects, "AppendEntries", "b").length, 0);
  });

  test("replicate: an acknowledgement frees the window and the next append goes out", () => {
    const leader = leaderWith("a", { replicating: ["b"], config: { maxInflightMessages: 2, maxMessageBytes: 20 } });
    const r1 = run(leader, propose([1, 2, 3, 4].map(() => payload(4))));
    const first = sent(r1.effects, "AppendEntries", "b");
    assert.equal(first.length, 2);
    const acked = first[0]!.entries[0]!.index;
    const r2 = step(r1.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: acked })));
    const next = sent(r2.effects, "AppendEntries", "b");
    assert.equal(next.length, 1);
    assert.equal(next[0]!.entries[0]!.index, acked + 2);
    // Acknowledging everything in flight frees the whole window.
    const r3 = step(r2.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: acked + 2 })));
    assert.equal(sent(r3.effects, "AppendEntries", "b").length, 1, "only one entry was left to send");
    assert.equal(progressOf(r3.state, "b").inflight.length, 1);
  });

  test("maxMessageBytes splits a large backlog across messages", () => {
    // 3 entries of 36 bytes fit under 110; the backlog of 7 needs 3 messages.
    const leader = leaderWith("a", { replicating: ["b"], config: { maxMessageBytes: 110 } });
    const { effects } = step(leader, propose([1, 2, 3, 4, 5, 6, 7].map(() => payload(20))));
    const out = sent(effects, "AppendEntries", "b");
    assert.deepEqual(out.map((m) => m.entries.length), [3, 3, 1]);
    const indexes = out.flatMap((m) => m.entries.map((e) => e.index));
    const first = lastIndex(leader.log) + 1;
    assert.deepEqual(indexes, [0, 1, 2, 3, 4, 5, 6].map((i) => first + i), "contiguous, in order, each once");
  });

  test("maxMessageBytes: an entry larger than the limit still goes out, alone", () => {
    const leader = leaderWith("a", { replicating: ["b"], config: { maxMessageBytes: 50 } });
    const { effects } = step(leader, propose([payload(500), payload(500)]));
    const out = sent(effects, "AppendEntries", "b");
    assert.deepEqual(out.map((m) => m.entries.length), [1, 1]);
  });

  test("maxInflightBytes bounds the bytes in flight to one follower", () => {
    // Each message carries one 20-byte entry; sending stops once 50 bytes are out.
    const leader = leaderWith("a", {
      replicating: ["b"],
      config: { maxMessageBytes: 20, maxInflightBytes: 50, maxInflightMessages: 100 },
    });
    const { state, effects } = step(leader, propose([1, 2, 3, 4, 5, 6].map(() => payload(4))));
    const out = sent(effects, "AppendEntries", "b");
    assert.equal(out.length, 3);
    assert.equal(progressOf(state, "b").inflightBytes, 60);
    const acked = step(
      state,
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: out[1]!.entries[0]!.index })),
    );
    assert.equal(sent(acked.effects, "AppendEntries", "b").length, 2, "40 bytes freed: two more fit");
  });

  test("many proposals in one Propose input go out as ONE AppendEntries per follower", () => {
    const leader = leaderWith("a", { voters: ["a", "b", "c", "d"], replicating: ["b", "c", "d"] });
    const { effects } = step(leader, propose(Array.from({ length: 50 }, () => payload(8))));
    const out = sent(effects, "AppendEntries");
    assert.deepEqual(out.map((m) => m.to).sort(), ["b", "c", "d"]);
    assert.ok(out.every((m) => m.entries.length === 50));
    assert.equal(effectsOf(effects, "Persist").length, 1, "one write for the batch");
    assert.equal(effectsOf(effects, "Proposed").length, 50);
  });

  test("maxUncommittedBytes: proposals beyond the limit are rejected with too-large", () => {
    const leader = leaderWith("a", { replicating: ["b"], config: { maxUncommittedBytes: 100 } });
    const { effects } = step(leader, propose([payload(40), payload(40), payload(10)]));
    const proposed = effectsOf(effects, "Proposed").map((p) => p.requestId);
    const rejected = effectsOf(effects, "Reject");
    assert.deepEqual(proposed, [1, 3], "56 + 26 bytes fit; 56 + 56 does not");
    assert.deepEqual(rejected, [{ type: "Reject", requestId: 2, reason: "too-large", leader: "a" }]);
  });

  test("maxUncommittedBytes: committing frees room for new proposals", () => {
    const leader = leaderWith("a", { replicating: ["b"], config: { maxUncommittedBytes: 100 } });
    let r = run(leader, propose([payload(60)]));
    assert.equal(effectsOf(step(r.state, propose([payload(60)], 2)).effects, "Reject").length, 1);
    const at = lastIndex(r.state.log);
    r = run(
      r.state,
      persistedAll(r.state),
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: at })),
    );
    assert.equal(r.state.commit, at);
    const again = step(r.state, propose([payload(60)], 2));
    assert.deepEqual(effectsOf(again.effects, "Proposed").map((p) => p.requestId), [2]);
  });

  test("maxUncommittedBytes: committing entries of earlier terms does not free room for this leader's entries", () => {
    // Five old entries (19 bytes each) are committed along with the no-op; they were never counted.
    const leader = leaderWith("a", { log: [1, 1, 1, 1, 1], term: 1, config: { maxUncommittedBytes: 100 } });
    const noop = lastIndex(leader.log);
    let r = run(leader, propose([payload(40)]));
    r = run(r.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: noop })));
    assert.equal(r.state.commit, noop);
    // 56 bytes are still uncommitted: another 56 would exceed 100.
    const { effects } = step(r.state, propose([payload(40)], 2));
    assert.deepEqual(effectsOf(effects, "Reject").map((e) => [e.requestId, e.reason]), [[2, "too-large"]]);
  });

  test("maxUncommittedBytes: a single proposal larger than the limit is admitted when nothing is pending", () => {
    const leader = leaderWith("a", { replicating: ["b"], config: { maxUncommittedBytes: 100 } });
    const { effects } = step(leader, propose([payload(1000)]));
    assert.equal(effectsOf(effects, "Proposed").length, 1);
  });
});

describe("fast log back-off (§5.3 optimisation)", () => {
  /** Delivers messages between leader `a` and follower `b` until quiet; returns both and the round trips. */
  function converge(leader: RaftState, follower: RaftState) {
    let a = leader;
    let b = follower;
    let toB: Message[] = sent(step(a, timeout("heartbeat")).effects, "AppendEntries", "b");
    a = step(a, timeout("heartbeat")).state;
    let rejections = 0;
    for (let i = 0; i < 20 && toB.length > 0; i++) {
      const rb = run(b, ...toB.map(receive));
      b = rb.state;
      b = step(b, persistedAll(b)).state;
      const replies = sent(rb.effects, "AppendEntriesResponse", "a");
      rejections += replies.filter((m) => !m.success).length;
      const ra = run(a, ...replies.map(receive));
      a = ra.state;
      toB = sent(ra.effects, "AppendEntries", "b");
    }
    return { a, b, rejections };
  }

  test("§5.3 a rejection with a conflict term the leader lacks skips the follower's whole term in one step", () => {
    // The leader never had term 2; the follower holds six term-2 entries from a deposed leader.
    const leader = leaderWith("a", { log: [1, 1, 3, 3, 3], term: 3 });
    const follower = node("b", { log: [1, 1, 2, 2, 2, 2, 2, 2], term: 3 });
    const { a, b, rejections } = converge(leader, follower);
    assert.equal(rejections, 1, "one rejection backs off past the whole term");
    assert.deepEqual(logTerms(b), logTerms(a));
    assert.equal(progressOf(a, "b").match, lastIndex(a.log));
  });

  test("§5.3 a rejection with a conflict term the leader has backs off to the leader's last entry of that term", () => {
    const leader = leaderWith("a", { log: [1, 1, 2, 2, 4, 4], term: 4 });
    const follower = node("b", { log: [1, 1, 2, 2, 2, 2, 3, 3], term: 4 });
    const { a, b, rejections } = converge(leader, follower);
    assert.equal(rejections, 1);
    assert.deepEqual(logTerms(b), logTerms(a));
    // The retry is anchored at the leader's last term-2 entry (4), not the follower's first (3).
    const retry = sent(
      step(
        leader,
        receive(
          appendResponse({ from: "b", to: "a", term: 5, index: 6, success: false, conflictTerm: 2, conflictIndex: 3 }),
        ),
      ).effects,
      "AppendEntries",
      "b",
    );
    assert.deepEqual(retry.map((m) => [m.prevIndex, m.prevTerm]), [[4, 2]]);
  });

  test("§5.3 a follower with a short log makes the leader jump to its end", () => {
    const leader = leaderWith("a", { log: [1, 1, 1, 1, 1, 1, 1, 1], term: 1 });
    const follower = node("b", { log: [1], term: 1 });
    const { a, b, rejections } = converge(leader, follower);
    assert.equal(rejections, 1);
    assert.deepEqual(logTerms(b), logTerms(a));
  });

  test("§5.3 a stale rejection (of an append already answered) does not move next backwards", () => {
    const leader = leaderWith("a", { replicating: ["b"], log: [1, 1, 1], term: 1 });
    const before = progressOf(leader, "b");
    const { state } = step(
      leader,
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: 1, success: false, conflictIndex: 1 })),
    );
    assert.deepEqual(
      [progressOf(state, "b").match, progressOf(state, "b").next],
      [before.match, before.next],
    );
    assert.equal(progressOf(state, "b").state, "replicate", "a stale answer does not drop the follower to probing");
  });

  test("§5.3 a rejection's hint never moves next below what the follower confirmed (match + 1)", () => {
    const leader = leaderWith("a", { replicating: ["b"], log: [1, 1, 1], term: 1 });
    const match = progressOf(leader, "b").match;
    assert.ok(match > 1);
    // b is reported unreachable (probe from match + 1), then answers that probe with a hint far below its match.
    const probing = step(leader, { type: "Unreachable", to: "b" }).state;
    const { state, effects } = step(
      probing,
      receive(
        appendResponse({ from: "b", to: "a", term: leader.term, index: match, success: false, conflictIndex: 1 }),
      ),
    );
    assert.equal(progressOf(state, "b").next, match + 1);
    assert.ok(sent(effects, "AppendEntries", "b").every((m) => m.prevIndex >= match), "nothing confirmed is resent");
  });
});

describe("ReadIndex (§6.4)", () => {
  test("§6.4 a leader serves a read at its commit index once a quorum acknowledges a new heartbeat round", () => {
    const leader = leaderWith("a", { replicating: ["b"] });
    assert.equal(leader.commit, lastIndex(leader.log), "the no-op is committed");
    const r1 = step(leader, { type: "ReadIndex", requestId: 7 });
    assert.equal(effectsOf(r1.effects, "ReadReady").length, 0, "leadership not yet confirmed");
    const beats = sent(r1.effects, "AppendEntries");
    assert.deepEqual(beats.map((m) => m.to).sort(), ["b", "c"]);
    const seq = beats[0]!.seq;
    // An acknowledgement of an older round does not confirm it.
    const old = step(
      r1.state,
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: 0, seq: seq - 1 })),
    );
    assert.equal(effectsOf(old.effects, "ReadReady").length, 0);
    const r2 = step(r1.state, receive(appendResponse({ from: "c", to: "a", term: leader.term, index: 0, seq })));
    assert.deepEqual(effectsOf(r2.effects, "ReadReady"), [{ type: "ReadReady", requestId: 7, index: leader.commit }]);
  });

  test("§6.4 a new leader's reads wait until its no-op commits", () => {
    const leader = leaderWith("a", {}); // no-op durable locally but on no follower
    const noop = lastIndex(leader.log);
    let r = run(leader, { type: "ReadIndex", requestId: 1 });
    const seq = sent(r.effects, "AppendEntries")[0]!.seq;
    r = run(r.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: 0, seq })));
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0, "confirmed leadership, but the no-op is uncommitted");
    r = run(r.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index: noop, seq })));
    assert.deepEqual(effectsOf(r.effects, "ReadReady").map((e) => e.index), [noop]);
  });

  test("§6.4 a single-node leader serves reads at once", () => {
    let s = run(node("a", { voters: ["a"] }), timeout("election")).state;
    s = step(s, persistedAll(s)).state;
    const { effects } = step(s, { type: "ReadIndex", requestId: 3 });
    assert.deepEqual(effectsOf(effects, "ReadReady"), [{ type: "ReadReady", requestId: 3, index: s.commit }]);
  });

  test("§6.4 a follower forwards reads to its leader and reports the leader's answer", () => {
    const f = run(
      node("b", {}),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 0, prevTerm: 0 })),
    ).state;
    const r1 = step(f, { type: "ReadIndex", requestId: 5 });
    const [req] = sent(r1.effects, "ReadIndex", "a");
    assert.equal(req?.requestId, 5);
    const r2 = step(
      r1.state,
      receive({ group: 0, from: "a", to: "b", term: 1, type: "ReadIndexResponse", requestId: 5, index: 4 }),
    );
    assert.deepEqual(effectsOf(r2.effects, "ReadReady"), [{ type: "ReadReady", requestId: 5, index: 4 }]);
  });

  test("§6.4 a node without a known leader rejects reads with not-leader", () => {
    const { effects } = step(node("b", {}), { type: "ReadIndex", requestId: 5 });
    assert.deepEqual(effectsOf(effects, "Reject"), [{
      type: "Reject",
      requestId: 5,
      reason: "not-leader",
      leader: undefined,
    }]);
  });

  test("§6.4 pending reads are rejected when the leader steps down", () => {
    const leader = leaderWith("a", { replicating: ["b"] });
    const r = run(
      leader,
      { type: "ReadIndex", requestId: 9 },
      receive(appendEntries({ from: "c", to: "a", term: leader.term + 1, prevIndex: 0, prevTerm: 0 })),
    );
    assert.equal(r.state.role.kind, "follower");
    assert.deepEqual(effectsOf(r.effects, "Reject").map((e) => e.requestId), [9]);
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0);
  });
});

describe("leadership transfer (§3.10)", () => {
  test("§3.10 transferring to an up-to-date follower sends it TimeoutNow at once", () => {
    const leader = leaderWith("a", { replicating: ["b"] });
    const { effects } = step(leader, { type: "TransferLeadership", requestId: 1, to: "b" });
    assert.equal(sent(effects, "TimeoutNow", "b").length, 1);
  });

  test("§3.10 a lagging target is caught up first, then sent TimeoutNow", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const r1 = run(leader, propose([payload(4)]), { type: "TransferLeadership", requestId: 1, to: "b" });
    assert.equal(sent(r1.effects, "TimeoutNow").length, 0);
    const r2 = step(
      r1.state,
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: lastIndex(r1.state.log) })),
    );
    assert.equal(sent(r2.effects, "TimeoutNow", "b").length, 1);
  });

  test("§3.10 proposals are refused while a transfer is in progress, and accepted again after it times out", () => {
    const leader = leaderWith("a", {});
    const r1 = run(leader, { type: "TransferLeadership", requestId: 1, to: "b" }, propose([payload(4)], 2));
    assert.deepEqual(effectsOf(r1.effects, "Reject").map((e) => [e.requestId, e.reason]), [[2, "transferring"]]);
    const r2 = run(r1.state, timeout("transfer"), propose([payload(4)], 3));
    assert.deepEqual(effectsOf(r2.effects, "TransferDone"), [{ type: "TransferDone", requestId: 1, ok: false }]);
    assert.deepEqual(effectsOf(r2.effects, "Proposed").map((e) => e.requestId), [3]);
  });

  test("§3.10 TimeoutNow makes a follower campaign at once in term+1 with transfer set", () => {
    const f = run(
      node("b", { term: 1, config: { preVote: true } }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 0, prevTerm: 0 })),
    ).state;
    const { state, effects } = step(
      f,
      receive({ group: 0, from: "a", to: "b", term: 1, type: "TimeoutNow", candidate: "b" }),
    );
    assert.equal(state.role.kind, "candidate", "no pre-vote round for a transfer");
    assert.equal(state.term, 2);
    const votes = sent(effects, "RequestVote");
    assert.equal(votes.length, 2);
    assert.ok(votes.every((m) => m.transfer && !m.preVote && m.term === 2));
  });

  test("§3.10 a transfer request on a non-leader is rejected with not-leader", () => {
    const { effects } = step(node("b", {}), { type: "TransferLeadership", requestId: 4, to: "c" });
    assert.deepEqual(effectsOf(effects, "Reject").map((e) => [e.requestId, e.reason]), [[4, "not-leader"]]);
  });
});

describe("commit announcement", () => {
  test("an idle follower learns a commit advance at once, not at the next heartbeat (etcd's bcastAppend after commit)", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const appended = run(leader, propose([payload(8)])).state;
    const proposed = run(appended, persistedAll(appended));
    const index = lastIndex(proposed.state.log);
    // b acknowledges: the entry commits. b has nothing else in flight, so it is told now;
    // c still has the entry in flight and learns the commit from its next append.
    const r = run(proposed.state, receive(appendResponse({ from: "b", to: "a", term: leader.term, index })));
    assert.equal(r.state.commit, index);
    assert.ok(sent(r.effects, "AppendEntries", "b").some((m) => m.commit === index), "b learns the commit now");
    assert.equal(
      sent(r.effects, "AppendEntries", "c").length,
      0,
      "no extra traffic to a follower with appends in flight",
    );
  });

  test("a follower whose ack comes after the commit is told the commit then, once (a proposal forwarded through it waits on it)", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const appended = run(leader, propose([payload(8)])).state;
    const proposed = run(appended, persistedAll(appended)).state;
    const index = lastIndex(proposed.log);
    const committed = run(proposed, receive(appendResponse({ from: "b", to: "a", term: leader.term, index }))).state;
    assert.equal(committed.commit, index);
    // c acknowledges last: nothing is in flight to it any more and nothing new is to be sent,
    // so without a message of its own it would learn the commit only at the next heartbeat.
    const late = run(committed, receive(appendResponse({ from: "c", to: "a", term: leader.term, index })));
    const told = sent(late.effects, "AppendEntries", "c");
    assert.deepEqual(told.map((m) => [m.prevIndex, m.entries.length, m.commit]), [[index, 0, index]]);
    // Its answer to that append changes nothing: no second one.
    const again = run(late.state, receive(appendResponse({ from: "c", to: "a", term: leader.term, index })));
    assert.equal(sent(again.effects, "AppendEntries", "c").length, 0);
    // The answer to that append, arriving once a new entry is outstanding, sends nothing either: it
    // acknowledges no new heartbeat round, so it is no sign of lost appends (else: one empty append
    // per round trip for as long as the load lasts).
    const outstanding = run(late.state, propose([payload(8)], 2)).state;
    const answer = run(outstanding, receive(appendResponse({ from: "c", to: "a", term: leader.term, index })));
    assert.equal(sent(answer.effects, "AppendEntries", "c").length, 0);
  });

  test("a follower held back by its window gets the commit with the entries its ack lets out, not beside them", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"], config: { maxInflightMessages: 1 } });
    const appended = run(leader, propose([payload(8)])).state;
    const proposed = run(appended, persistedAll(appended)).state;
    const index = lastIndex(proposed.log);
    const committed = run(proposed, receive(appendResponse({ from: "b", to: "a", term: leader.term, index }))).state;
    // A second entry waits behind c's full window (one message).
    const held = run(committed, propose([payload(8)], 2));
    assert.equal(sent(held.effects, "AppendEntries", "c").length, 0, "c's window is full");
    const acked = run(held.state, receive(appendResponse({ from: "c", to: "a", term: leader.term, index })));
    const toC = sent(acked.effects, "AppendEntries", "c");
    assert.deepEqual(toC.map((m) => [m.prevIndex, m.entries.length, m.commit]), [[index, 1, index]]);
  });

  test("a follower that caught up by appends carrying the commit is sent no empty append after", () => {
    // c is still probing (it never answered the election's no-op) while b's ack commits an entry.
    const leader = leaderWith("a", { replicating: ["b"] });
    const appended = run(leader, propose([payload(8)])).state;
    const proposed = run(appended, persistedAll(appended)).state;
    const index = lastIndex(proposed.log);
    const committed = run(proposed, receive(appendResponse({ from: "b", to: "a", term: leader.term, index }))).state;
    assert.equal(committed.commit, index);
    // c answers the probe: it moves to replicate and gets the rest, which carries the commit.
    const probed = run(committed, receive(appendResponse({ from: "c", to: "a", term: leader.term, index: 1 })));
    const catchUp = sent(probed.effects, "AppendEntries", "c");
    assert.deepEqual(catchUp.map((m) => [m.prevIndex, m.entries.length, m.commit]), [[1, index - 1, index]]);
    // Its ack of them leaves nothing to tell it.
    const caughtUp = run(probed.state, receive(appendResponse({ from: "c", to: "a", term: leader.term, index })));
    assert.equal(sent(caughtUp.effects, "AppendEntries", "c").length, 0);
  });

  test("a heartbeat round's ack without progress while appends are outstanding checks for lost ones; another ack does not", () => {
    const leader = leaderWith("a", { replicating: ["b", "c"] });
    const match = lastIndex(leader.log);
    // An append to c goes out (and is lost: c never sees it).
    const appended = run(leader, propose([payload(8)])).state;
    const outstanding = run(appended, persistedAll(appended)).state;
    // c answers an old round again, without progress: nothing is concluded.
    const stale = run(outstanding, receive(appendResponse({ from: "c", to: "a", term: leader.term, index: match })));
    assert.equal(sent(stale.effects, "AppendEntries", "c").length, 0);
    // A heartbeat round goes out; c's answer to it shows no progress: an empty append at next - 1
    // asks whether it holds what was sent (it will refuse, and back to probe it goes).
    const beat = run(stale.state, timeout("heartbeat"));
    const seq = sent(beat.effects, "AppendEntries", "c")[0]!.seq;
    const ack = run(
      beat.state,
      receive(appendResponse({ from: "c", to: "a", term: leader.term, index: match, seq })),
    );
    assert.deepEqual(
      sent(ack.effects, "AppendEntries", "c").map((m) => [m.prevIndex, m.entries.length]),
      [[lastIndex(outstanding.log), 0]],
    );
  });
});
