import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  effectsOf,
  entriesOf,
  leaderWith,
  node,
  persistedAll,
  receive,
  run,
  sent,
  timeout,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex } from "../../core/log.ts";
import { applyConfChange } from "../../core/confchange.ts";
import { isJoint, membershipOf } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import type { ConfChange, Entry, Membership } from "../../core/types.ts";

const abc = membershipOf(["a", "b", "c"]);
const sorted = (m: Membership | string) =>
  typeof m === "string" ? m : {
    voters: [...m.voters].sort(),
    learners: [...m.learners].sort(),
    outgoing: m.outgoing && [...m.outgoing].sort(),
  };

describe("applyConfChange (thesis ch. 4)", () => {
  test("§4.1 single-server steps: add a voter, add a learner, promote it, remove a node", () => {
    // §4.2.1: a new server first joins without a vote, marked for promotion.
    assert.deepEqual(
      applyConfChange(abc, { type: "addVoter", node: "d" }),
      { ...membershipOf(["a", "b", "c"], ["d"]), promote: ["d"] },
    );
    const withL = membershipOf(["a", "b", "c"], ["l"]);
    assert.deepEqual(
      sorted(applyConfChange(withL, { type: "addVoter", node: "l" })),
      sorted(membershipOf(["a", "b", "c", "l"])),
      "addVoter of a learner promotes it at once",
    );
    const withLearner = applyConfChange(abc, { type: "addLearner", node: "l" });
    assert.deepEqual(sorted(withLearner), sorted(membershipOf(["a", "b", "c"], ["l"])));
    assert.deepEqual(
      sorted(applyConfChange(withLearner as Membership, { type: "promote", node: "l" })),
      sorted(membershipOf(["a", "b", "c", "l"])),
    );
    assert.deepEqual(sorted(applyConfChange(abc, { type: "remove", node: "b" })), sorted(membershipOf(["a", "c"])));
  });

  test("§4.3 a joint change enters C_old,new with the old voters as `outgoing`", () => {
    const next = applyConfChange(abc, { type: "joint", voters: ["c", "d", "e"], learners: ["a"] });
    assert.notEqual(typeof next, "string");
    const m = next as Membership;
    assert.ok(isJoint(m));
    assert.deepEqual(sorted(m), { voters: ["c", "d", "e"], learners: ["a"], outgoing: ["a", "b", "c"] });
  });

  test("§4.3 no further change is accepted while joint", () => {
    const joint = applyConfChange(abc, { type: "joint", voters: ["d", "e", "f"] }) as Membership;
    assert.equal(applyConfChange(joint, { type: "addVoter", node: "g" }), "joint-pending");
  });

  test("unsafe changes are refused: an empty voter set, demoting a voter to learner", () => {
    const solo = membershipOf(["a"]);
    const unsafe: [Membership, ConfChange][] = [
      [solo, { type: "remove", node: "a" }],
      [abc, { type: "joint", voters: [] }],
      [abc, { type: "addLearner", node: "b" }],
    ];
    for (const [m, change] of unsafe) assert.equal(applyConfChange(m, change), "unsafe", JSON.stringify(change));
  });

  test("applyConfChange does not modify its input", () => {
    const m = membershipOf(["a", "b"], ["l"]);
    const copy = structuredClone(m);
    applyConfChange(m, { type: "promote", node: "l" });
    applyConfChange(m, { type: "remove", node: "a" });
    applyConfChange(m, { type: "joint", voters: ["x"] });
    assert.deepEqual(m, copy);
  });
});

describe("membership changes through step (thesis §4.1-4.3)", () => {
  const change = (requestId: number, c: ConfChange) => ({ type: "ProposeConfChange" as const, requestId, change: c });

  test("§4.1 a new configuration takes effect on the leader as soon as it is appended", () => {
    const leader = leaderWith("a", { replicating: ["b"] });
    const { state, effects } = step(leader, change(1, { type: "addVoter", node: "d" }));
    assert.deepEqual(currentMembership(state).learners, ["d"]);
    assert.deepEqual(currentMembership(state).promote, ["d"]);
    assert.ok(effectsOf(effects, "MembershipChanged").length === 1);
    assert.deepEqual(effectsOf(effects, "Proposed").map((p) => [p.requestId, p.index]), [[1, lastIndex(state.log)]]);
    assert.ok(sent(effects, "AppendEntries", "d").length === 1, "the new member is replicated to at once");
  });

  test("§4.1 one change at a time: a second change while one is uncommitted is refused", () => {
    const leader = leaderWith("a", { replicating: ["b"] });
    const { effects } = run(
      leader,
      change(1, { type: "addVoter", node: "d" }),
      change(2, { type: "addVoter", node: "e" }),
    );
    assert.deepEqual(effectsOf(effects, "Reject").map((e) => [e.requestId, e.reason]), [[2, "conf-change-pending"]]);
  });

  test("unsafe membership changes are refused with unsafe-conf-change", () => {
    const leader = leaderWith("a", { voters: ["a"] });
    const { effects } = step(leader, change(1, { type: "remove", node: "a" }));
    assert.deepEqual(effectsOf(effects, "Reject").map((e) => [e.requestId, e.reason]), [[1, "unsafe-conf-change"]]);
  });

  test("a two-voter leader may not remove itself (it could wedge the cluster); removing the other voter is fine", () => {
    const leader = leaderWith("a", { voters: ["a", "b"], replicating: ["b"] });
    const self = step(leader, change(1, { type: "remove", node: "a" }));
    assert.deepEqual(effectsOf(self.effects, "Reject").map((e) => [e.requestId, e.reason]), [[
      1,
      "unsafe-conf-change",
    ]]);
    assert.equal(lastIndex(self.state.log), lastIndex(leader.log), "nothing appended");
    const other = step(leader, change(2, { type: "remove", node: "b" }));
    assert.deepEqual(effectsOf(other.effects, "Reject"), []);
    assert.equal(lastIndex(other.state.log), lastIndex(leader.log) + 1);
  });

  test("§4.3 once the joint configuration commits, the leader appends C_new by itself", () => {
    let r = run(leaderWith("a", { replicating: ["b", "c"] }), change(1, { type: "joint", voters: ["a", "b", "d"] }));
    const jointAt = lastIndex(r.state.log);
    assert.ok(isJoint(currentMembership(r.state)));
    r = run(
      r.state,
      persistedAll(r.state),
      receive(appendResponse({ from: "c", to: "a", term: r.state.term, index: jointAt })),
    );
    assert.ok(r.state.commit < jointAt, "a majority of C_old ({a,c}) alone is not enough");
    r = run(r.state, receive(appendResponse({ from: "d", to: "a", term: r.state.term, index: jointAt })));
    assert.equal(r.state.commit, jointAt, "majorities of both {a,b,c} and {a,b,d}");
    assert.equal(isJoint(currentMembership(r.state)), false);
    assert.equal(lastIndex(r.state.log), jointAt + 1, "C_new appended");
    assert.deepEqual([...currentMembership(r.state).voters].sort(), ["a", "b", "d"]);
  });

  test("§4.2.2 a leader removed from the configuration steps down once the change commits", () => {
    let r = run(leaderWith("a", { replicating: ["b", "c"] }), change(1, { type: "remove", node: "a" }));
    const at = lastIndex(r.state.log);
    assert.equal(r.state.role.kind, "leader", "it keeps leading until the change commits");
    r = run(
      r.state,
      persistedAll(r.state),
      receive(appendResponse({ from: "b", to: "a", term: r.state.term, index: at })),
    );
    assert.ok(r.state.commit < at, "C_new is {b, c}: the leader does not count itself (§4.2.2)");
    r = run(r.state, receive(appendResponse({ from: "c", to: "a", term: r.state.term, index: at })));
    assert.equal(r.state.commit, at);
    assert.equal(r.state.role.kind, "follower");
    // A removed node never campaigns.
    const after = step(r.state, timeout("election"));
    assert.equal(sent(after.effects, "RequestVote").length, 0);
  });

  test("§4.2.2 a leader whose removal commits answers its pending reads (not-leader), so none waits forever", () => {
    let r = run(leaderWith("a", { replicating: ["b", "c"] }), change(1, { type: "remove", node: "a" }));
    const at = lastIndex(r.state.log);
    r = run(r.state, persistedAll(r.state), { type: "ReadIndex", requestId: 9 });
    assert.deepEqual(effectsOf(r.effects, "ReadReady"), [], "the read waits for a heartbeat round");
    // b and c store the removal but answer an older round: the read is still pending when the change commits.
    r = run(
      r.state,
      receive(appendResponse({ from: "b", to: "a", term: r.state.term, index: at })),
      receive(appendResponse({ from: "c", to: "a", term: r.state.term, index: at })),
    );
    assert.equal(r.state.role.kind, "follower");
    assert.deepEqual(effectsOf(r.effects, "Reject").map((e) => [e.requestId, e.reason]), [[9, "not-leader"]]);
    assert.deepEqual(effectsOf(r.effects, "ReadReady"), []);
  });

  test("§4.2.2 a leader whose removal commits while a transfer is pending answers the transfer", () => {
    let r = run(
      leaderWith("a", { replicating: ["b", "c"] }),
      change(1, { type: "remove", node: "a" }),
      { type: "TransferLeadership", requestId: 2, to: "b" },
    );
    const at = lastIndex(r.state.log);
    r = run(
      r.state,
      persistedAll(r.state),
      receive(appendResponse({ from: "c", to: "a", term: r.state.term, index: at })),
      receive(appendResponse({ from: "b", to: "a", term: r.state.term, index: at })),
    );
    assert.equal(r.state.role.kind, "follower");
    assert.deepEqual(effectsOf(r.effects, "TransferDone").map((e) => e.requestId), [2]);
  });

  test("§4.1 a follower adopts a configuration on append and rolls it back if the entry is truncated", () => {
    const cfg: Entry = {
      index: 2,
      term: 1,
      kind: "config",
      data: new Uint8Array(0),
      config: membershipOf(["a", "b", "c", "d"]),
    };
    let r = run(
      node("b", { log: [1] }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 1, prevTerm: 1, entries: [cfg] })),
    );
    assert.deepEqual([...currentMembership(r.state).voters].sort(), ["a", "b", "c", "d"]);
    r = run(
      r.state,
      receive(appendEntries({ from: "c", to: "b", term: 2, prevIndex: 1, prevTerm: 1, entries: entriesOf([2], 2) })),
    );
    assert.deepEqual([...currentMembership(r.state).voters].sort(), ["a", "b", "c"]);
    assert.ok(effectsOf(r.effects, "MembershipChanged").length > 0);
  });

  test("learners receive the log but never campaign", () => {
    const learner: RaftState = node("l", { voters: ["a", "b"], learners: ["l"] });
    const { state, effects } = step(learner, timeout("election"));
    assert.equal(state.role.kind, "follower");
    assert.equal(state.term, learner.term);
    assert.equal(sent(effects, "RequestVote").length, 0);
  });
});

describe("joint consensus decisions need both majorities (thesis §4.3)", () => {
  const joint: Membership = { voters: ["a", "d", "e"], learners: [], outgoing: ["a", "b", "c"] };

  test("an election in C_old,new is won only with a majority of each configuration", () => {
    const s0 = { ...node("a", { voters: ["a", "b", "c"] }), configs: [{ index: 0, membership: joint }] };
    let r = run(s0, timeout("election"));
    assert.equal(r.state.role.kind, "candidate");
    const term = r.state.term;
    const grant = (from: string) =>
      receive({ group: 0, from, to: "a", term, type: "RequestVoteResponse", preVote: false, granted: true });
    r = run(r.state, grant("d"), grant("e"));
    assert.equal(r.state.role.kind, "candidate", "all of C_new but only a of C_old: not yet");
    r = run(r.state, grant("b"));
    assert.equal(r.state.role.kind, "leader", "a majority of both");
  });

  test("an entry commits in C_old,new only once a majority of each configuration holds it", () => {
    let s: RaftState = leaderWith("a", { voters: ["a", "b", "c"], replicating: ["b", "c"] });
    s = step(s, { type: "ProposeConfChange", requestId: 9, change: { type: "joint", voters: ["a", "d", "e"] } }).state;
    assert.deepEqual(currentMembership(s).outgoing, ["a", "b", "c"]);
    s = step(s, persistedAll(s)).state;
    const last = lastIndex(s.log);
    const ack = (from: string) => receive(appendResponse({ from, to: "a", term: s.term, index: last }));
    const before = s.commit;
    s = run(s, ack("d"), ack("e")).state;
    assert.equal(s.commit, before, "C_new alone does not commit");
    s = run(s, ack("b")).state;
    assert.equal(s.commit, last);
  });
});
