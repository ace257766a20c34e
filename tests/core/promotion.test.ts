import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendResponse,
  effectsOf,
  elect,
  entriesOf,
  leaderWith,
  pastStartup,
  persistedAll,
  receive,
  requestVote,
  run,
  sent,
  timeout,
} from "../core_helpers.ts";
import { makeConfig } from "../../core/config.ts";
import { lastIndex } from "../../core/log.ts";
import { promotable } from "../../core/confchange.ts";
import { membershipOf } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import { start, step } from "../../core/step.ts";
import type { ConfChange, Entry, Input, Membership } from "../../core/types.ts";

const change = (requestId: number, c: ConfChange): Input => ({ type: "ProposeConfChange", requestId, change: c });
const ack = (s: RaftState, from: string, index: number): Input =>
  receive(appendResponse({ from, to: s.config.id, term: s.term, index }));
const sortedVoters = (s: RaftState) => [...currentMembership(s).voters].sort();

/** Leader `a` of {a,b,c} over a 40-entry log (so a lag of a few entries is distinguishable from none). */
function bigLeader(): RaftState {
  return leaderWith("a", { log: Array(40).fill(1), commit: 40, replicating: ["b", "c"] });
}

/** `a` proposes addVoter(d) and the learner entry commits through b; returns the state and the entry's index. */
function addD(leader: RaftState): { state: RaftState; at: number } {
  let r = run(leader, change(1, { type: "addVoter", node: "d" }));
  const at = lastIndex(r.state.log);
  r = run(r.state, persistedAll(r.state), ack(r.state, "b", at));
  assert.equal(r.state.commit, at);
  return { state: r.state, at };
}

describe("learners and automatic promotion (thesis §4.2.1)", () => {
  test("addVoter of a new node adds it as a learner marked for promotion; it does not count toward quorum", () => {
    const r = run(bigLeader(), change(1, { type: "addVoter", node: "d" }));
    const m = currentMembership(r.state);
    assert.deepEqual(m.learners, ["d"]);
    assert.deepEqual(promotable(m), ["d"]);
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c"]);
    assert.ok(sent(r.effects, "AppendEntries", "d").length > 0, "the learner is replicated to");
    // A majority of the voters {a,b,c} commits without d.
    const at = lastIndex(r.state.log);
    const after = run(r.state, persistedAll(r.state), ack(r.state, "b", at));
    assert.equal(after.state.commit, at);
  });

  test("a marked learner that has caught up is promoted by the leader, with no request", () => {
    const { state, at } = addD(bigLeader());
    const r = run(state, ack(state, "d", at));
    const promoteAt = lastIndex(r.state.log);
    assert.equal(promoteAt, at + 1, "the leader appended the promotion");
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "d"]);
    assert.deepEqual(currentMembership(r.state).learners, []);
    assert.equal(currentMembership(r.state).promote, undefined, "the mark goes with the promotion");
    assert.deepEqual(effectsOf(r.effects, "Proposed"), [], "no caller to answer");
    // The promotion is a config entry replicated like any other.
    const toB = sent(r.effects, "AppendEntries", "b").flatMap((m) => m.entries);
    assert.ok(toB.some((e) => e.index === promoteAt && e.kind === "config"));
  });

  test("a learner far behind the commit index is not promoted until it catches up", () => {
    const { state, at } = addD(bigLeader());
    let r = run(
      state,
      receive(appendResponse({ from: "d", to: "a", term: state.term, index: at, success: false, conflictIndex: 1 })),
      ack(state, "d", 5),
    );
    assert.deepEqual(currentMembership(r.state).learners, ["d"], "5 of 42 entries is not caught up");
    assert.equal(lastIndex(r.state.log), at);
    r = run(r.state, ack(r.state, "d", at - 5));
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "d"], "within a few entries of commit counts");
  });

  test("one change at a time (§4.1): no promotion while the learner's own entry is uncommitted", () => {
    let r = run(bigLeader(), change(1, { type: "addVoter", node: "d" }));
    const at = lastIndex(r.state.log);
    r = run(r.state, persistedAll(r.state), ack(r.state, "d", at));
    assert.ok(r.state.commit < at);
    assert.deepEqual(currentMembership(r.state).learners, ["d"], "still a learner: its config is in flight");
    r = run(r.state, ack(r.state, "b", at));
    assert.equal(r.state.commit, at);
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "d"], "promoted as soon as the add commits");
  });

  test("no promotion during a leadership transfer (proposals are paused, §3.10); it follows the abort", () => {
    const { state, at } = addD(bigLeader());
    let r = run(
      state,
      { type: "TransferLeadership", requestId: 9, to: "c" },
      ack(state, "d", at),
    );
    assert.deepEqual(currentMembership(r.state).learners, ["d"]);
    r = run(r.state, timeout("transfer"), ack(r.state, "d", at));
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "d"]);
  });

  test("an explicit learner (addLearner) is not promoted automatically, but is on request", () => {
    let r = run(bigLeader(), change(1, { type: "addLearner", node: "l" }));
    const at = lastIndex(r.state.log);
    r = run(r.state, persistedAll(r.state), ack(r.state, "b", at), ack(r.state, "l", at));
    assert.deepEqual(currentMembership(r.state).learners, ["l"]);
    assert.equal(lastIndex(r.state.log), at);
    r = run(r.state, change(2, { type: "promote", node: "l" }));
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "l"]);
    assert.deepEqual(effectsOf(r.effects, "Proposed").map((p) => p.requestId), [2]);
  });

  test("removing a marked learner drops the mark", () => {
    const { state } = addD(bigLeader());
    const r = run(state, change(2, { type: "remove", node: "d" }));
    assert.deepEqual(promotable(currentMembership(r.state)), []);
    assert.equal(currentMembership(r.state).promote, undefined);
  });

  test("the mark survives a change of leader: the next leader promotes the learner", () => {
    const marked: Membership = { ...membershipOf(["a", "b", "c"], ["d"]), promote: ["d"] };
    const entries: Entry[] = [
      ...entriesOf([1, 1]),
      { index: 3, term: 1, kind: "config", data: new Uint8Array(0), config: marked },
    ];
    const config = makeConfig({ id: "b", preVote: false, checkQuorum: false });
    const b = start(config, {
      membership: membershipOf(["a", "b", "c"]),
      hardState: { term: 1, vote: undefined, commit: 3 },
      entries,
    }).state;
    assert.deepEqual(currentMembership(b).learners, ["d"]);
    let r = elect(pastStartup(b), ["c"]);
    r = run(r.state, persistedAll(r.state));
    const noop = lastIndex(r.state.log);
    r = run(r.state, ack(r.state, "c", noop));
    assert.equal(r.state.commit, noop);
    assert.deepEqual(currentMembership(r.state).learners, ["d"]);
    r = run(r.state, ack(r.state, "d", noop));
    assert.deepEqual(sortedVoters(r.state), ["a", "b", "c", "d"]);
  });

  test("a learner never campaigns, even when marked for promotion", () => {
    const marked: Membership = { ...membershipOf(["a", "b"], ["l"]), promote: ["l"] };
    const l = start(makeConfig({ id: "l", preVote: false, checkQuorum: false }), { membership: marked }).state;
    const r = step(pastStartup(l), timeout("election"));
    assert.equal(r.state.role.kind, "follower");
    assert.equal(sent(r.effects, "RequestVote").length, 0);
  });

  test("a learner's vote is not counted: a candidate needs a majority of voters", () => {
    const c = start(makeConfig({ id: "a", preVote: false, checkQuorum: false }), {
      membership: membershipOf(["a", "b", "c"], ["l"]),
    }).state;
    let r = run(pastStartup(c), timeout("election"));
    assert.equal(r.state.role.kind, "candidate");
    assert.deepEqual(sent(r.effects, "RequestVote").map((m) => m.to).sort(), ["b", "c"], "learners are not asked");
    r = run(r.state, receive({ ...requestVote({ from: "l", to: "a", term: 0, lastIndex: 0, lastTerm: 0 }) }));
    r = run(
      r.state,
      receive({
        group: 0,
        from: "l",
        to: "a",
        term: r.state.term,
        type: "RequestVoteResponse",
        preVote: false,
        granted: true,
      }),
    );
    assert.equal(r.state.role.kind, "candidate", "self + learner is not a majority of {a,b,c}");
  });
});
