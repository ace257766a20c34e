/**
 * Scenario tests of the safety bugs a review of `core/` found (issue 10),
 * each driven through `start`/`step` exactly as reported, and of rules that
 * had no test: nodes start as followers; a leader counts only successful
 * acknowledgements; a transfer is never handed to a node about to lose its
 * vote; leaving a joint configuration waits for a transfer to end.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ScenarioCluster } from "../core_cluster.ts";
import {
  appendResponse,
  effectsOf,
  freshlyStarted,
  leaderWith,
  persistedAll,
  receive,
  requestVote,
  run,
  sent,
  timeout,
  voteResponse,
} from "../core_helpers.ts";
import { makeConfig } from "../../core/config.ts";
import { lastIndex } from "../../core/log.ts";
import { isJoint } from "../../core/membership.ts";
import { membershipOf as currentMembership, type RaftState } from "../../core/state.ts";
import { start, step } from "../../core/step.ts";
import { membershipOf } from "../../core/membership.ts";
import type { Input, Message } from "../../core/types.ts";

const within = ScenarioCluster.within;
const votesOnly = (m: Message) => m.type === "RequestVote" || m.type === "RequestVoteResponse";

describe("membership change before a current-term commit (Ongaro's 2015 errata to thesis §4.1)", () => {
  test("the reported schedule: c's change is refused until its no-op commits, and no two nodes diverge", () => {
    const cl = new ScenarioCluster(["a", "b", "c", "d"], { checkQuorum: true });
    cl.elect("a", ["a", "b", "c", "d"]);
    assert.equal(cl.state("a").role.kind, "leader");
    assert.equal(cl.state("a").commit, 1, "a committed its no-op");
    // a appends C1 = remove d and is cut off before anyone sees it.
    cl.input("a", { type: "ProposeConfChange", requestId: 1, change: { type: "remove", node: "d" } });
    cl.drop();
    // b and d stop hearing from a; c wins term 2 with their votes.
    for (const id of ["b", "c", "d"]) cl.input(id, timeout("election"));
    cl.input("c", timeout("election"));
    cl.deliver((m) => within(["b", "c", "d"])(m) && votesOnly(m));
    assert.equal(cl.state("c").role.kind, "leader");
    assert.equal(cl.state("c").term, 2);
    // At once, before its no-op commits, c proposes C2 = remove a: refused.
    // (With the bug it was accepted and committed with d alone, a majority of C2 = {b,c,d}.)
    const refused = cl.input("c", { type: "ProposeConfChange", requestId: 2, change: { type: "remove", node: "a" } });
    cl.deliver(within(["c", "d"]));
    const commitOfC = cl.state("c").commit;
    // a steps down by check-quorum, then wins term 3 under C1 = {a,b,c} with b's vote.
    cl.input("a", timeout("quorum"));
    cl.input("a", timeout("quorum"));
    assert.equal(cl.state("a").role.kind, "follower");
    cl.elect("a", ["a", "b"]);
    cl.elect("a", ["a", "b"]);
    assert.equal(cl.state("a").role.kind, "leader");
    assert.equal(cl.state("a").term, 3);
    assert.equal(cl.state("a").commit, 3, "a commits its no-op with b");
    // Heal: everyone converges on a's log; the harness checks every apply against the others'.
    cl.deliver();
    cl.input("a", timeout("heartbeat"));
    cl.deliver();
    for (const id of ["b", "c"]) assert.equal(cl.tip(id), cl.tip("a"));
    assert.deepEqual(effectsOf(refused, "Reject").map((e) => e.reason), ["conf-change-pending"]);
    assert.equal(commitOfC, 1, "under {a,b,c,d}, c and d are no majority: nothing of term 2 committed");
  });

  test("a new leader refuses a proposed change until it has committed an entry of its term, then accepts it", () => {
    let s = leaderWith("a", { voters: ["a", "b", "c"] });
    // leaderWith made the no-op durable on a only: nobody acknowledged it.
    assert.ok(s.commit < lastIndex(s.log));
    const change: Input = { type: "ProposeConfChange", requestId: 7, change: { type: "addLearner", node: "l" } };
    const early = run(s, change);
    assert.deepEqual(effectsOf(early.effects, "Reject").map((e) => [e.requestId, e.reason]), [[
      7,
      "conf-change-pending",
    ]]);
    s = step(s, receive(appendResponse({ from: "b", to: "a", term: s.term, index: lastIndex(s.log) }))).state;
    assert.equal(s.commit, lastIndex(s.log));
    const later = run(s, change);
    assert.deepEqual(effectsOf(later.effects, "Proposed").map((e) => e.requestId), [7]);
  });

  test("nor does it promote a caught-up learner before then", () => {
    const marked = { ...membershipOf(["a", "b", "c"], ["l"]), promote: ["l"] };
    let s = leaderWith("a", { voters: ["a", "b", "c"], learners: ["l"] });
    s = { ...s, configs: [{ index: 0, membership: marked }] };
    const noop = lastIndex(s.log);
    // The learner has everything the leader has; the no-op is not committed yet.
    s = step(s, receive(appendResponse({ from: "l", to: "a", term: s.term, index: noop }))).state;
    assert.equal(s.commit, 0);
    assert.deepEqual(currentMembership(s).learners, ["l"], "no promotion before a current-term commit");
    s = step(s, receive(appendResponse({ from: "b", to: "a", term: s.term, index: noop }))).state;
    assert.equal(s.commit, noop);
    assert.deepEqual([...currentMembership(s).voters].sort(), ["a", "b", "c", "l"], "promoted once it committed");
  });
});

describe("lease reads after a follower restarts (thesis §6.4.1)", () => {
  const lease = { leaseReads: true, clockDrift: 0.1, electionTimeoutMs: 1000, heartbeatMs: 100 };

  test("a restarted node votes for nobody for one election timeout, so a lease it backed outlives its crash", () => {
    const cl = new ScenarioCluster(["a", "b", "c"], lease);
    cl.elect("a", ["a", "b", "c"]);
    // b acknowledges a heartbeat round sent at 10,000: a's lease runs to 10,900.
    cl.input("a", { type: "Timeout", timer: "heartbeat", now: 10_000 });
    cl.deliver(within(["a", "b"]));
    cl.drop();
    // a is cut off; b crashes and restarts at once.
    cl.crash("b");
    cl.restart("b");
    // c's stickiness runs out and it campaigns: b must not vote yet.
    cl.input("c", timeout("election"));
    cl.input("c", timeout("election"));
    cl.deliver(within(["b", "c"]));
    assert.notEqual(cl.state("c").role.kind, "leader", "c cannot win while a's lease may hold");
    const read = cl.input("a", { type: "ReadIndex", requestId: 9, now: 10_500 });
    assert.deepEqual(effectsOf(read, "ReadReady").map((e) => e.requestId), [9], "a serves from its lease");
    // Once b's first election timeout has run (at least 11,000 on b's clock, past the lease), c wins.
    cl.input("b", timeout("election"));
    cl.input("c", timeout("election"));
    cl.deliver(within(["b", "c"]));
    assert.equal(cl.state("c").role.kind, "leader");
    const late = cl.input("a", { type: "ReadIndex", requestId: 10, now: 10_950 });
    assert.deepEqual(effectsOf(late, "ReadReady"), [], "past the lease a's read needs a round it cannot get");
  });

  test("Figure 2 / §5.2 nodes start as followers, knowing no leader, sending nothing, with the election timer armed", () => {
    const r = start(makeConfig({ id: "a" }), { membership: membershipOf(["a", "b", "c"]) });
    assert.equal(r.state.role.kind, "follower");
    assert.equal(r.state.role.kind === "follower" ? r.state.role.leader : "?", undefined);
    assert.deepEqual(sent(r.effects), []);
    assert.deepEqual(effectsOf(r.effects, "SetTimer").map((t) => [t.timer, t.ms]), [["election", 1000]]);
  });

  test("start never trusts a persisted commit index beyond the log it recovered (nothing unheld is applied)", () => {
    const entries = [1, 2, 3].map((index) => ({
      index,
      term: 1,
      kind: "command" as const,
      data: new Uint8Array(0),
      config: undefined,
    }));
    const r = start(makeConfig({ id: "a" }), {
      membership: membershipOf(["a", "b", "c"]),
      hardState: { term: 1, vote: undefined, commit: 5 },
      entries,
    });
    assert.equal(r.state.commit, 3);
    assert.deepEqual(effectsOf(r.effects, "Apply").flatMap((a) => a.entries.map((e) => e.index)), [1, 2, 3]);
  });

  test("a freshly started node ignores vote and pre-vote requests until its first election timeout", () => {
    const fresh = freshlyStarted("a", { term: 3, log: [1, 2, 3] });
    for (const preVote of [false, true]) {
      const r = run(fresh, receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 9, lastTerm: 3, preVote })));
      assert.deepEqual(sent(r.effects), [], preVote ? "pre-vote" : "vote");
      assert.equal(r.state.term, 3);
    }
    const after = run(
      fresh,
      timeout("election"),
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 9, lastTerm: 3 })),
    );
    assert.equal(sent(after.effects, "RequestVoteResponse", "b")[0]?.granted, true);
    assert.equal(after.state.role.kind, "follower", "the first timeout only ends the stickiness");
  });

  test("§5.2 the first wait after start is still randomized in [T, 2T): T of stickiness, then a jitter in [0, T)", () => {
    const waits = new Set<number>();
    for (const id of ["a", "b", "c", "d", "e", "f"]) {
      const fresh = freshlyStarted(id);
      const r = step(fresh, timeout("election"));
      const [t] = effectsOf(r.effects, "SetTimer").filter((e) => e.timer === "election");
      assert.ok(t && t.ms >= 0 && t.ms < 1000, `jitter ${t?.ms}`);
      waits.add(t!.ms);
    }
    assert.ok(waits.size > 1, "nodes with default seeds draw different jitter");
  });

  test("the default seed differs per node id (identical jitter invites split votes)", () => {
    assert.notEqual(makeConfig({ id: "a" }).seed, makeConfig({ id: "b" }).seed);
    assert.equal(makeConfig({ id: "a", seed: 5 }).seed, 5);
  });
});

describe("a leader counts only successful acknowledgements (Figure 2: matchIndex)", () => {
  test("a rejection naming the leader's last index neither moves match nor commits", () => {
    let s: RaftState = leaderWith("a", {});
    s = step(s, persistedAll(s)).state;
    const last = lastIndex(s.log);
    const r = run(
      s,
      receive(appendResponse({ from: "b", to: "a", term: s.term, index: last, success: false, conflictIndex: 1 })),
    );
    assert.equal(r.state.commit, 0);
    assert.ok(r.state.role.kind === "leader" && r.state.role.progress.get("b")!.match === 0);
    assert.deepEqual(effectsOf(r.effects, "Committed"), []);
  });
});

describe("transfer and membership changes (thesis §3.10, §4.3)", () => {
  /** Leader a of {a,b,c} in the committed joint configuration {a,b,d && a,b,c}, everyone caught up. */
  function jointLeader(): RaftState {
    let s = leaderWith("a", { voters: ["a", "b", "c"], replicating: ["b", "c"] });
    s = step(s, { type: "ProposeConfChange", requestId: 1, change: { type: "joint", voters: ["a", "b", "d"] } }).state;
    s = step(s, persistedAll(s)).state;
    assert.ok(isJoint(currentMembership(s)));
    return s;
  }

  test("a transfer to a voter of only the outgoing half is refused: leaving the joint config makes it a learner or gone", () => {
    const s = jointLeader();
    const r = run(s, { type: "TransferLeadership", requestId: 5, to: "c" });
    assert.deepEqual(effectsOf(r.effects, "TransferDone"), [{ type: "TransferDone", requestId: 5, ok: false }]);
    assert.deepEqual(sent(r.effects, "TimeoutNow"), []);
  });

  test("the entry that leaves a joint configuration waits for a transfer in progress to end", () => {
    let s = jointLeader();
    // d is not caught up, so the transfer waits; then the joint entry commits.
    s = step(s, { type: "TransferLeadership", requestId: 5, to: "d" }).state;
    const joint = lastIndex(s.log);
    const commit = run(
      s,
      ...["b", "c"].map((f) => receive(appendResponse({ from: f, to: "a", term: s.term, index: joint }))),
    );
    assert.equal(commit.state.commit, joint, "the joint entry committed");
    assert.equal(lastIndex(commit.state.log), joint, "C_new is not appended during the transfer");
    // The transfer is abandoned: now the leader leaves the joint configuration.
    const after = run(commit.state, timeout("transfer"));
    assert.equal(lastIndex(after.state.log), joint + 1);
    assert.ok(!isJoint(currentMembership(after.state)));
  });
});

describe("a server removed by an uncommitted configuration (thesis §4.2.2)", () => {
  /** c holds C_old,new = {a,b && b,c} (committed) and C_new = {a,b} (not committed): it is not in C_new. */
  function removedButNeeded(): RaftState {
    const joint = { voters: ["a", "b"], learners: [], outgoing: ["b", "c"] };
    const entries = [
      { index: 1, term: 1, kind: "noop" as const, data: new Uint8Array(0), config: undefined },
      { index: 2, term: 1, kind: "config" as const, data: new Uint8Array(0), config: joint },
      { index: 3, term: 1, kind: "config" as const, data: new Uint8Array(0), config: membershipOf(["a", "b"]) },
    ];
    const config = makeConfig({ id: "c", preVote: false, checkQuorum: false });
    const s =
      start(config, { membership: membershipOf(["b", "c"]), hardState: { term: 1, vote: "c", commit: 2 }, entries })
        .state;
    return step(s, timeout("election")).state; // past its start-up stickiness
  }

  test("still campaigns while C_new is uncommitted, asking C_new's voters, and does not count itself", () => {
    const r = run(removedButNeeded(), timeout("election"));
    assert.equal(r.state.role.kind, "candidate");
    assert.deepEqual(sent(r.effects, "RequestVote").map((m) => m.to).sort(), ["a", "b"]);
    const one = run(r.state, receive(voteResponse({ from: "a", to: "c", term: r.state.term })));
    assert.equal(one.state.role.kind, "candidate", "its own vote does not count under {a,b}");
    const won = run(one.state, receive(voteResponse({ from: "b", to: "c", term: r.state.term })));
    assert.equal(won.state.role.kind, "leader", "it can commit C_new, then step down");
  });

  test("does not campaign once C_new has committed", () => {
    const s = removedButNeeded();
    const committed = { ...s, commit: 3 };
    const r = run(committed, timeout("election"));
    assert.equal(r.state.role.kind, "follower");
    assert.deepEqual(sent(r.effects, "RequestVote"), []);
  });
});
