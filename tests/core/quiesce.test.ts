/**
 * Quiescence (`core/quiesce.ts`): when an idle, fully replicated group stops
 * heartbeating and ticking, what wakes it, and that check-quorum still holds.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import type { LeaderRole } from "../../core/state.ts";
import type { Message, RaftEffect } from "../../core/types.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import { ScenarioCluster } from "../core_cluster.ts";
import { appendEntries, bytes, leaderWith, node, persistedAll, receive, run } from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { appendToLog, lastIndex } from "../../core/log.ts";

const voters = ["a", "b", "c"];

/** A three-voter cluster led by `a` with one committed command, everything delivered. */
function idleCluster(config: Record<string, unknown> = {}): ScenarioCluster {
  const c = new ScenarioCluster(voters, { quiesce: true, checkQuorum: true, preVote: true, ...config });
  c.elect("a", voters);
  c.input("a", { type: "Propose", proposals: [{ requestId: 1, data: bytes("x") }] });
  c.deliver();
  return c;
}

/** Two heartbeat ticks with everything delivered: the quiescing round, then quiescence. */
function quiesce(c: ScenarioCluster): void {
  c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  c.deliver();
  c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
}

const sends = (fx: readonly RaftEffect[]): Message[] =>
  fx.flatMap((e) =>
    e.type === "Send"
      ? [e.message]
      : e.type === "Persist"
      ? e.after.flatMap((d) => d.type === "Send" ? [d.message] : [])
      : []
  );
const timers = (fx: readonly RaftEffect[]): string[] => fx.flatMap((e) => e.type === "SetTimer" ? [e.timer] : []);

test("an idle leader sends a quiescing round, then quiesces once every member acknowledged it", () => {
  const c = idleCluster();
  const first = c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  const round = sends(first);
  assert.equal(round.length, 2);
  assert.ok(round.every((m) => m.type === "AppendEntries" && m.quiesce === true));
  assert.deepEqual(timers(first), ["heartbeat"], "still ticking until the round is acknowledged");
  assert.equal(isQuiescent(c.state("a")), false);
  c.deliver();
  assert.ok(isQuiescent(c.state("b")) && isQuiescent(c.state("c")), "followers holding the whole log quiesce");
  const second = c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  assert.deepEqual(sends(second), [], "no more heartbeats");
  assert.deepEqual(timers(second), [], "no timer re-armed");
  assert.ok(isQuiescent(c.state("a")));
  // The timers left armed lapse without effect.
  assert.deepEqual(c.input("a", { type: "Timeout", timer: "quorum", now: 0 }), []);
  assert.deepEqual(c.input("b", { type: "Timeout", timer: "election", now: 0 }), []);
  assert.deepEqual(
    c.input("b", { type: "Timeout", timer: "election", now: 0 }),
    [],
    "a quiescent follower never campaigns",
  );
  assert.equal(c.state("b").role.kind, "follower");
});

test("with quiescence off the leader heartbeats forever and followers campaign when it goes silent", () => {
  const c = idleCluster({ quiesce: false });
  for (let i = 0; i < 3; i++) {
    const fx = c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
    assert.equal(sends(fx).length, 2);
    assert.ok(sends(fx).every((m) => m.type === "AppendEntries" && m.quiesce === undefined));
    assert.deepEqual(timers(fx), ["heartbeat"]);
    c.deliver();
  }
  c.input("b", { type: "Timeout", timer: "election", now: 0 });
  const fx = c.input("b", { type: "Timeout", timer: "election", now: 0 });
  assert.ok(sends(fx).some((m) => m.type === "RequestVote"));
});

test("a busy leader does not quiesce: a follower behind gets an ordinary round, caught up it quiesces", () => {
  const c = idleCluster();
  c.input("a", { type: "Propose", proposals: [{ requestId: 2, data: bytes("y") }] });
  c.drop((m) => m.to === "c"); // c misses the append
  c.deliver();
  const fx = c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  assert.ok(sends(fx).every((m) => m.type === "AppendEntries" && m.quiesce === undefined));
  assert.deepEqual(timers(fx), ["heartbeat"]);
  c.deliver(); // c answers, is caught up
  quiesce(c);
  assert.ok(isQuiescent(c.state("a")) && isQuiescent(c.state("c")));
  assert.equal(c.state("c").commit, 3);
});

test("a lost quiescing heartbeat keeps the leader awake, and it sends the round again", () => {
  const c = idleCluster();
  c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  c.drop((m) => m.to === "c");
  c.deliver();
  const again = c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  assert.equal(isQuiescent(c.state("a")), false);
  assert.ok(sends(again).every((m) => m.type === "AppendEntries" && m.quiesce === true));
  c.deliver();
  c.input("a", { type: "Timeout", timer: "heartbeat", now: 0 });
  assert.ok(isQuiescent(c.state("a")));
});

test("a proposal wakes a quiescent leader, whose appends wake the followers", () => {
  const c = idleCluster();
  quiesce(c);
  const fx = c.input("a", { type: "Propose", proposals: [{ requestId: 2, data: bytes("y") }] });
  assert.equal(isQuiescent(c.state("a")), false);
  assert.deepEqual(timers(fx).sort(), ["heartbeat", "quorum"]);
  c.deliver();
  assert.equal(isQuiescent(c.state("b")), false);
  assert.equal(c.state("b").commit, 3);
  // Idle again: it quiesces again.
  quiesce(c);
  assert.ok(isQuiescent(c.state("a")) && isQuiescent(c.state("b")));
});

test("a read wakes a quiescent leader and is served only after a quorum answered a round", () => {
  const c = idleCluster({ leaseReads: true });
  quiesce(c);
  const fx = c.input("a", { type: "ReadIndex", requestId: 7, now: 10_000 });
  assert.ok(!fx.some((e) => e.type === "ReadReady"), "no lease survives quiescence: the read waits for a round");
  assert.ok(sends(fx).some((m) => m.type === "AppendEntries"));
  c.deliver();
  assert.ok(c.effects.get("a")!.some((e) => e.type === "ReadReady" && e.requestId === 7));
});

test("PeerDown of a voter wakes a quiescent leader; check-quorum then steps it down if nobody answers", () => {
  const c = idleCluster();
  quiesce(c);
  assert.deepEqual(c.input("a", { type: "PeerDown", peer: "z" }), [], "a peer that is not a member wakes nothing");
  const fx = c.input("a", { type: "PeerDown", peer: "b" });
  assert.equal(isQuiescent(c.state("a")), false);
  assert.deepEqual(timers(fx).sort(), ["heartbeat", "quorum"]);
  const role = c.state("a").role as LeaderRole;
  assert.ok([...role.progress.values()].every((pr) => !pr.active), "what was heard while quiescent does not count");
  c.drop(); // cut off
  c.input("a", { type: "Timeout", timer: "quorum", now: 0 });
  assert.equal(c.state("a").role.kind, "follower");
});

test("a woken leader that hears from a quorum keeps leading", () => {
  const c = idleCluster();
  quiesce(c);
  c.input("a", { type: "PeerDown", peer: "c" });
  c.drop((m) => m.to === "c");
  c.deliver();
  c.input("a", { type: "Timeout", timer: "quorum", now: 0 });
  assert.equal(c.state("a").role.kind, "leader");
});

test("PeerDown of its leader wakes a quiescent follower, which campaigns after a full timeout", () => {
  const c = idleCluster();
  quiesce(c);
  assert.deepEqual(c.input("b", { type: "PeerDown", peer: "c" }), [], "another follower's loss is not its concern");
  assert.ok(isQuiescent(c.state("b")));
  const fx = c.input("b", { type: "PeerDown", peer: "a" });
  assert.equal(isQuiescent(c.state("b")), false);
  assert.deepEqual(timers(fx), ["election"]);
  // Sticky for one timeout (a lease a lost leader may still hold), then it campaigns.
  assert.deepEqual(sends(c.input("b", { type: "Timeout", timer: "election", now: 0 })), []);
  const campaign = sends(c.input("b", { type: "Timeout", timer: "election", now: 0 }));
  assert.ok(campaign.some((m) => m.type === "RequestVote" && m.preVote));
});

test("PeerUp of its leader quiesces a follower that PeerDown woke, sticky, before it campaigns", () => {
  const c = idleCluster();
  quiesce(c);
  c.input("b", { type: "PeerDown", peer: "a" });
  // One timeout passes (stickiness lapses); then the leader's process is heard again.
  c.input("b", { type: "Timeout", timer: "election", now: 0 });
  assert.equal(c.input("b", { type: "PeerUp", peer: "c" }).length, 0, "another peer's return is not its concern");
  assert.equal(isQuiescent(c.state("b")), false);
  assert.deepEqual(c.input("b", { type: "PeerUp", peer: "a" }), []);
  assert.ok(isQuiescent(c.state("b")));
  const role = c.state("b").role;
  assert.ok(role.kind === "follower" && role.sticky && role.leader === "a" && role.wokenBy === undefined);
  // Its timer lapses without a campaign, and a stranger's pre-vote finds it sticky.
  assert.deepEqual(sends(c.input("b", { type: "Timeout", timer: "election", now: 0 })), []);
  const term = c.state("b").term;
  const answer = sends(c.input("b", {
    type: "Receive",
    message: {
      group: c.state("b").config.group,
      from: "c",
      to: "b",
      term: term + 1,
      type: "RequestVote",
      preVote: true,
      transfer: false,
      lastIndex: 99,
      lastTerm: term,
    },
  }));
  assert.ok(!answer.some((m) => m.type === "RequestVoteResponse" && m.granted), "no pre-vote granted");
});

test("PeerUp does not quiesce a follower that heard from its group after PeerDown woke it", () => {
  for (const heard of ["heartbeat", "proposal"] as const) {
    const c = idleCluster({ forwardProposals: true });
    quiesce(c);
    c.input("b", { type: "PeerDown", peer: "a" });
    if (heard === "heartbeat") {
      const { term, commit } = c.state("a");
      const m = appendEntries({ from: "a", to: "b", term, prevIndex: commit, prevTerm: term, commit });
      c.input("b", receive({ ...m, group: c.state("b").config.group }));
    } else c.input("b", { type: "Propose", proposals: [{ requestId: 7, data: bytes("y") }] });
    c.input("b", { type: "PeerUp", peer: "a" });
    assert.equal(isQuiescent(c.state("b")), false, `after a ${heard}`);
  }
});

test("PeerUp does not quiesce a follower whose log is not committed to its end", () => {
  const c = idleCluster();
  quiesce(c);
  c.input("b", { type: "PeerDown", peer: "a" });
  const s = c.state("b");
  // An entry past its commit index (the state edited: an append whose commit has not arrived).
  const last = lastIndex(s.log);
  const grown = {
    ...s,
    log: appendToLog(s.log, [{ index: last + 1, term: s.term, kind: "command", data: bytes("z"), config: undefined }]),
  };
  assert.equal(isQuiescent(step(grown, { type: "PeerUp", peer: "a" }).state), false);
  assert.ok(isQuiescent(step(s, { type: "PeerUp", peer: "a" }).state), "the same follower, committed, does");
});

test("a follower restarted after quiescence campaigns, and its pre-vote wakes the leader", () => {
  const c = idleCluster();
  quiesce(c);
  c.crash("c");
  c.restart("c");
  assert.equal(isQuiescent(c.state("c")), false);
  c.input("c", { type: "Timeout", timer: "election", now: 0 });
  c.input("c", { type: "Timeout", timer: "election", now: 0 });
  const preVotes = c.queue.filter((m) => m.from === "c" && m.type === "RequestVote");
  assert.equal(preVotes.length, 2);
  // b is quiescent: the request wakes it, but it stays sticky and refuses; a wakes and heartbeats.
  c.deliver((m) => m.from === "c" && m.type === "RequestVote");
  assert.equal(isQuiescent(c.state("b")), false);
  assert.equal(c.state("a").role.kind, "leader");
  assert.ok(c.queue.some((m) => m.from === "a" && m.to === "c" && m.type === "AppendEntries"));
  c.deliver();
  assert.equal(c.state("a").role.kind, "leader");
  assert.equal(c.state("c").role.kind, "follower");
  quiesce(c);
  assert.ok(isQuiescent(c.state("a")) && isQuiescent(c.state("c")));
});

test("a quiescent follower refuses votes: it stays bound by stickiness", () => {
  const c = idleCluster();
  quiesce(c);
  const term = c.state("b").term;
  c.input("b", {
    type: "Receive",
    message: {
      type: "RequestVote",
      group: 0,
      from: "c",
      to: "b",
      term: term + 1,
      preVote: false,
      lastIndex: 9,
      lastTerm: 9,
      transfer: false,
    },
  });
  assert.equal(c.state("b").term, term);
  assert.equal(c.state("b").vote, c.state("b").vote);
  assert.ok(!c.queue.some((m) => m.from === "b" && m.type === "RequestVoteResponse"));
});

test("the core ignores a host's liveness beacon, whatever it claims", () => {
  const c = idleCluster();
  const before = c.state("b");
  const fx = c.input("b", {
    type: "Receive",
    message: { type: "HostHeartbeat", group: 0, from: "a", to: "b", term: 99 },
  });
  assert.deepEqual(fx, []);
  assert.equal(c.state("b"), before);
});

test("a follower that lacks part of the log or of the commit does not quiesce on a quiescing heartbeat", () => {
  const config = { quiesce: true };
  const beat = (prevIndex: number, commit: number) =>
    receive({
      ...appendEntries({ from: "a", to: "b", term: 1, prevIndex, prevTerm: 1, entries: [], commit }),
      quiesce: true,
    });
  // Its log runs past what the leader anchored at (uncommitted entries the leader has not confirmed).
  const longer = run(node("b", { log: [1, 1, 1], term: 1, config }), beat(2, 2)).state;
  assert.equal(isQuiescent(longer), false);
  // The leader's commit is behind the anchor.
  const behind = run(node("b", { log: [1, 1], term: 1, config }), beat(2, 1)).state;
  assert.equal(isQuiescent(behind), false);
  // Holding exactly the leader's whole, committed log, it quiesces.
  const whole = run(node("b", { log: [1, 1], term: 1, config }), beat(2, 2)).state;
  assert.equal(isQuiescent(whole), true);
});

test("a leader does not quiesce while an entry of its own is not yet durable", () => {
  const leader = leaderWith("a", { voters: ["a"], config: { quiesce: true } });
  const tick = { type: "Timeout" as const, timer: "heartbeat" as const, now: 0 };
  let r = run(leader, { type: "Propose", proposals: [{ requestId: 1, data: bytes("x") }] }, tick, tick, tick);
  assert.equal(isQuiescent(r.state), false, "its proposal is neither durable nor committed");
  r = run(r.state, persistedAll(r.state), tick, tick);
  assert.equal(isQuiescent(r.state), true, "once durable and committed, the idle leader quiesces");
  assert.equal(step(r.state, tick).effects.length, 0);
});
