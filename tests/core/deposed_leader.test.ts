// Issue 14, "a restarted follower took a leader that had stepped down as current":
// a heartbeat the leader sent before it stepped down for want of a quorum can reach a follower late (a
// transport's queue flushed on reconnect). The follower rightly takes it as its leader's (same term), and
// stickiness then drops that very node's pre-vote, although a node asking for votes has stopped leading:
// with two of three nodes up the cluster waits a full election timeout (more, if stale heartbeats keep
// arriving) for the follower's own campaign. Granting the (pre-)vote of the leader we follow cannot cut
// any lease short — that leader is the one asking.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendEntries, node, receive, requestVote, run, sent } from "../core_helpers.ts";

describe("a deposed leader's own campaign", () => {
  test(
    "a follower sticky to leader c grants c's pre-vote for the next term",
    () => {
      // b follows c in term 5: a heartbeat from c arrived (possibly a stale one, delivered late).
      const follower = run(
        node("b", { term: 5 }),
        receive(appendEntries({ from: "c", to: "b", term: 5, prevIndex: 0, prevTerm: 0 })),
      ).state;
      assert.deepEqual(follower.role, { kind: "follower", leader: "c", sticky: true });
      // c has stepped down (check-quorum) and asks for pre-votes for term 6.
      const { effects } = run(
        follower,
        receive(requestVote({ from: "c", to: "b", term: 6, lastIndex: 0, lastTerm: 0, preVote: true })),
      );
      assert.equal(sent(effects, "RequestVoteResponse", "c")[0]?.granted, true);
      const vote = run(follower, receive(requestVote({ from: "c", to: "b", term: 6, lastIndex: 0, lastTerm: 0 })));
      assert.equal(sent(vote.effects, "RequestVoteResponse", "c")[0]?.granted, true, "and its vote");
      // Another node's campaign is still ignored while b follows c.
      const other = run(follower, receive(requestVote({ from: "a", to: "b", term: 6, lastIndex: 0, lastTerm: 0 })));
      assert.deepEqual(sent(other.effects), []);
    },
  );
});
