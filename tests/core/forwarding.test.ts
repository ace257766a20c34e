import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  bytes,
  effectsOf,
  leaderWith,
  node,
  persisted,
  propose,
  receive,
  run,
  sent,
  timeout,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex } from "../../core/log.ts";
import type { RaftState } from "../../core/state.ts";

/** Follower `b` of leader `a` in term 2. */
function followerOfA(config: { forwardProposals?: boolean } = {}): RaftState {
  return run(
    node("b", { term: 2, config }),
    receive(appendEntries({ from: "a", to: "b", term: 2, prevIndex: 0, prevTerm: 0 })),
  ).state;
}

describe("proposal forwarding", () => {
  test("a follower with a known leader forwards a Propose to it and appends nothing itself", () => {
    const f = followerOfA();
    const { state, effects } = step(f, propose([bytes("x"), bytes("y")], 10));
    const [fwd] = sent(effects, "Propose", "a");
    assert.deepEqual(fwd?.proposals.map((p) => p.requestId), [10, 11]);
    assert.equal(fwd?.term, 2);
    assert.equal(persisted(effects).length, 0);
    assert.equal(lastIndex(state.log), 0);
    assert.equal(effectsOf(effects, "Reject").length, 0);
  });

  test("the leader appends forwarded proposals and answers with their indexes", () => {
    const leader = leaderWith("a", { term: 1 });
    const at = lastIndex(leader.log);
    const { state, effects } = step(
      leader,
      receive({
        group: 0,
        from: "b",
        to: "a",
        term: leader.term,
        type: "Propose",
        proposals: [{ requestId: 10, data: bytes("x") }, { requestId: 11, data: bytes("y") }],
      }),
    );
    assert.equal(lastIndex(state.log), at + 2);
    const [reply] = sent(effects, "ProposeResponse", "b");
    assert.deepEqual(reply?.results, [{ requestId: 10, index: at + 1 }, { requestId: 11, index: at + 2 }]);
    assert.equal(reply?.term, leader.term);
    assert.equal(effectsOf(effects, "Proposed").length, 0, "Proposed is the origin's to emit");
  });

  test("the follower emits Proposed when the leader's ProposeResponse arrives, and Reject for refused ones", () => {
    const f = followerOfA();
    const { effects } = step(
      f,
      receive({
        group: 0,
        from: "a",
        to: "b",
        term: 2,
        type: "ProposeResponse",
        results: [{ requestId: 10, index: 7 }, { requestId: 11, index: 0 }],
      }),
    );
    assert.deepEqual(effectsOf(effects, "Proposed"), [{ type: "Proposed", requestId: 10, index: 7, term: 2 }]);
    assert.deepEqual(effectsOf(effects, "Reject"), [{
      type: "Reject",
      requestId: 11,
      reason: "not-leader",
      leader: "a",
    }]);
  });

  test("a forwarded Propose that reaches a non-leader is refused, not appended", () => {
    const f = followerOfA();
    const { state, effects } = step(
      f,
      receive({
        group: 0,
        from: "c",
        to: "b",
        term: 2,
        type: "Propose",
        proposals: [{ requestId: 1, data: bytes("x") }],
      }),
    );
    assert.equal(lastIndex(state.log), 0);
    assert.deepEqual(sent(effects, "ProposeResponse", "c")[0]?.results, [{ requestId: 1, index: 0 }]);
  });

  test("with forwardProposals: false a follower rejects with not-leader naming the leader", () => {
    const f = followerOfA({ forwardProposals: false });
    const { effects } = step(f, propose([bytes("x")], 3));
    assert.equal(sent(effects).length, 0);
    assert.deepEqual(effectsOf(effects, "Reject"), [{
      type: "Reject",
      requestId: 3,
      reason: "not-leader",
      leader: "a",
    }]);
  });

  test("with no known leader a proposal is rejected with not-leader and no leader hint", () => {
    for (const s of [node("b", {}), run(node("b", {}), timeout("election")).state]) {
      const { effects } = step(s, propose([bytes("x"), bytes("y")], 3));
      assert.equal(sent(effects, "Propose").length, 0);
      assert.deepEqual(
        effectsOf(effects, "Reject").map((e) => [e.requestId, e.reason, e.leader]),
        [[3, "not-leader", undefined], [4, "not-leader", undefined]],
        s.role.kind,
      );
    }
  });

  test("a membership change proposed on a follower is rejected with not-leader naming the leader", () => {
    const { effects } = step(followerOfA(), {
      type: "ProposeConfChange",
      requestId: 5,
      change: { type: "addVoter", node: "d" },
    });
    assert.deepEqual(effectsOf(effects, "Reject"), [{
      type: "Reject",
      requestId: 5,
      reason: "not-leader",
      leader: "a",
    }]);
  });
});
