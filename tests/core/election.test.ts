import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  effectsOf,
  elect,
  leaderWith,
  node,
  persisted,
  receive,
  requestVote,
  run,
  sent,
  timeout,
  voteResponse,
} from "../core_helpers.ts";
import { step } from "../../core/step.ts";
import { lastIndex } from "../../core/log.ts";
import type { RaftState } from "../../core/state.ts";

const electionTimers = (effects: ReturnType<typeof step>["effects"]) =>
  effectsOf(effects, "SetTimer").filter((t) => t.timer === "election").map((t) => t.ms);

describe("terms (§5.1)", () => {
  test("§5.1 a node that sees a higher term in any message becomes follower and adopts it", () => {
    const messages = [
      appendEntries({ from: "b", to: "a", term: 5, prevIndex: 0, prevTerm: 0 }),
      appendResponse({ from: "b", to: "a", term: 5, index: 0, success: false }),
      voteResponse({ from: "b", to: "a", term: 5, granted: false }),
      requestVote({ from: "b", to: "a", term: 5, lastIndex: 0, lastTerm: 0 }),
    ];
    const starts: [string, RaftState][] = [
      ["follower", node("a", { term: 2 })],
      ["candidate", run(node("a", { term: 2 }), timeout("election")).state],
      ["leader", leaderWith("a", { term: 2 })],
    ];
    for (const [name, s0] of starts) {
      for (const m of messages) {
        // A leader ignores vote requests while it leads (stickiness, §4.2.3); covered in its own test.
        if (name === "leader" && m.type === "RequestVote") continue;
        const { state, effects } = run(s0, receive(m));
        assert.equal(state.term, 5, `${name} + ${m.type}`);
        assert.equal(state.role.kind, "follower", `${name} + ${m.type}`);
        const hard = persisted(effects)[0]?.hardState;
        assert.equal(hard?.term, 5, `${name} + ${m.type}: the new term is persisted`);
        if (m.type !== "RequestVote") assert.equal(state.vote, undefined, "adopting a term clears the vote");
      }
    }
  });

  test("§5.1 a higher-term AppendEntries makes the sender the known leader", () => {
    const { state, effects } = run(
      node("a", { term: 2 }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
    );
    assert.deepEqual(state.role, { kind: "follower", leader: "c", sticky: true });
    assert.ok(effectsOf(effects, "LeaderChanged").some((e) => e.leader === "c" && e.term === 3));
  });

  test("§5.1 a stale-term AppendEntries is rejected and the stale leader is told the current term", () => {
    const s0 = node("a", { term: 4, log: [1, 1] });
    const { state, effects } = run(
      s0,
      receive(appendEntries({ from: "b", to: "a", term: 3, prevIndex: 2, prevTerm: 1, entries: [], commit: 2 })),
    );
    assert.equal(state.term, 4);
    assert.equal(state.commit, 0, "a stale leader's commit index is not adopted");
    assert.deepEqual(state.role, s0.role, "a stale leader is not followed");
    const [reply] = sent(effects, "AppendEntriesResponse", "b");
    assert.ok(reply);
    assert.equal(reply.success, false);
    assert.equal(reply.term, 4);
    assert.equal(persisted(effects).length, 0);
  });

  test("§5.1 a stale leader that hears the newer term steps down", () => {
    const leader = leaderWith("a", { term: 2 });
    const { state } = run(
      leader,
      receive(appendResponse({ from: "b", to: "a", term: leader.term + 1, index: 0, success: false })),
    );
    assert.equal(state.role.kind, "follower");
    assert.equal(state.term, leader.term + 1);
  });

  test("Figure 2 RequestVote: reject a candidate whose term is stale", () => {
    const { state, effects } = run(
      node("a", { term: 5 }),
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 10, lastTerm: 4 })),
    );
    assert.equal(state.vote, undefined);
    assert.equal(state.term, 5);
    assert.ok(sent(effects, "RequestVoteResponse").every((r) => !r.granted));
    assert.equal(persisted(effects).length, 0);
  });
});

describe("voting (§5.2, §5.4.1)", () => {
  test("Figure 2 RequestVote: grant to the first candidate of a term with an up-to-date log", () => {
    const { state, effects } = run(
      node("a", { term: 1, log: [1] }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 1, lastTerm: 1 })),
    );
    assert.equal(state.vote, "b");
    assert.equal(state.term, 2);
    const [reply] = sent(effects, "RequestVoteResponse", "b");
    assert.equal(reply?.granted, true);
    assert.equal(reply?.term, 2);
  });

  test("Figure 2 RequestVote: vote at most once per term (a second candidate is rejected)", () => {
    const s1 = run(
      node("a", { term: 1 }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 })),
    ).state;
    const { state, effects } = run(
      s1,
      receive(requestVote({ from: "c", to: "a", term: 2, lastIndex: 5, lastTerm: 2 })),
    );
    assert.equal(state.vote, "b");
    const [reply] = sent(effects, "RequestVoteResponse", "c");
    assert.equal(reply?.granted, false);
    assert.equal(persisted(effects).length, 0, "a refused vote changes nothing durable");
  });

  test("Figure 2 RequestVote: the same candidate asking again in the same term is granted again", () => {
    const vote = requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 });
    const { state, effects } = run(node("a", { term: 1 }), receive(vote), receive(vote));
    assert.equal(state.vote, "b");
    const replies = sent(effects, "RequestVoteResponse", "b");
    assert.deepEqual(replies.map((r) => r.granted), [true, true]);
  });

  test("Figure 2 RequestVote: a vote persisted from before a restart still binds the term", () => {
    const { effects } = run(
      node("a", { term: 2, vote: "c" }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, false);
  });

  test("Figure 2 RequestVote: reject when the candidate's last term is older (§5.4.1)", () => {
    // Our log ends in term 3; the candidate's is longer but ends in term 2.
    const { state, effects } = run(
      node("a", { log: [1, 3], term: 3 }),
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 9, lastTerm: 2 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, false);
    assert.equal(state.vote, undefined);
    assert.equal(state.term, 4, "the higher term is still adopted");
  });

  test("Figure 2 RequestVote: reject when last terms tie but the candidate's log is shorter (§5.4.1)", () => {
    const { effects } = run(
      node("a", { log: [1, 2, 2] }),
      receive(requestVote({ from: "b", to: "a", term: 3, lastIndex: 2, lastTerm: 2 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, false);
  });

  test("Figure 2 RequestVote: grant when the candidate's last term is newer even if its log is shorter (§5.4.1)", () => {
    const { effects } = run(
      node("a", { log: [1, 1, 1, 1] }),
      receive(requestVote({ from: "b", to: "a", term: 3, lastIndex: 2, lastTerm: 2 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, true);
  });

  test("Figure 2 RequestVote: grant when last terms tie and the candidate's log is as long (§5.4.1)", () => {
    const { effects } = run(
      node("a", { log: [1, 2, 2] }),
      receive(requestVote({ from: "b", to: "a", term: 3, lastIndex: 3, lastTerm: 2 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, true);
  });

  test("Figure 2 persistent state: a granted vote's term and vote are persisted before the response is sent", () => {
    const { effects } = step(
      node("a", { term: 1 }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 })),
    );
    const [p] = persisted(effects);
    assert.deepEqual({ term: p?.hardState?.term, vote: p?.hardState?.vote }, { term: 2, vote: "b" });
    assert.deepEqual(effectsOf(effects, "Send"), [], "nothing leaves at once");
    assert.deepEqual(
      p?.after.map((e) => e.type === "Send" && e.message.type),
      ["RequestVoteResponse"],
      "the answer waits for the write",
    );
  });

  test("Figure 2 persistent state: a vote granted in the current term (no term change) is persisted too", () => {
    const { effects } = step(
      node("a", { term: 2 }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 })),
    );
    const [p] = persisted(effects);
    assert.deepEqual([p?.hardState?.term, p?.hardState?.vote], [2, "b"]);
    assert.equal(p?.after.length, 1, "the answer waits for it");
  });

  test("§5.2 granting a vote resets the election timer", () => {
    const { effects } = step(
      node("a", { term: 1 }),
      receive(requestVote({ from: "b", to: "a", term: 1, lastIndex: 0, lastTerm: 0 })),
    );
    assert.equal(sent(effects, "RequestVoteResponse")[0]?.granted, true);
    assert.ok(electionTimers(effects).length > 0);
  });
});

describe("elections (§5.2)", () => {
  test("§5.2 on election timeout a follower becomes candidate, increments its term, votes for itself and asks every voter", () => {
    const s0 = node("a", { term: 3, log: [1, 3], voters: ["a", "b", "c", "d", "e"], learners: ["l"] });
    const { state, effects } = step(s0, timeout("election"));
    assert.equal(state.role.kind, "candidate");
    assert.equal(state.term, 4);
    assert.equal(state.vote, "a");
    const requests = sent(effects, "RequestVote");
    assert.deepEqual(requests.map((r) => r.to).sort(), ["b", "c", "d", "e"], "voters only, not learners");
    for (const r of requests) {
      assert.deepEqual(
        { term: r.term, lastIndex: r.lastIndex, lastTerm: r.lastTerm, preVote: r.preVote },
        { term: 4, lastIndex: 2, lastTerm: 3, preVote: false },
      );
    }
    const [p] = persisted(effects);
    assert.deepEqual([p?.hardState?.term, p?.hardState?.vote], [4, "a"]);
    assert.equal(effectsOf(effects, "Send").length, 0, "vote for self durable first");
    assert.equal(p!.after.length, 4, "the requests wait for it");
    assert.equal(electionTimers(effects).length, 1, "a new randomized election timeout is armed");
  });

  test("§5.2 a candidate that receives votes from a majority becomes leader", () => {
    let r = run(node("a", { voters: ["a", "b", "c", "d", "e"] }), timeout("election"));
    r = run(r.state, receive(voteResponse({ from: "b", to: "a", term: 1 })));
    assert.equal(r.state.role.kind, "candidate", "2 of 5 is not a majority");
    r = run(r.state, receive(voteResponse({ from: "c", to: "a", term: 1 })));
    assert.equal(r.state.role.kind, "leader");
    assert.ok(effectsOf(r.effects, "RoleChanged").some((e) => e.role === "leader" && e.term === 1));
  });

  test("§5.2 a candidate that a majority rejects loses and returns to follower in the same term", () => {
    let r = run(node("a", { voters: ["a", "b", "c"] }), timeout("election"));
    r = run(r.state, receive(voteResponse({ from: "b", to: "a", term: 1, granted: false })));
    assert.equal(r.state.role.kind, "candidate", "1 for, 1 against: still pending");
    r = run(r.state, receive(voteResponse({ from: "c", to: "a", term: 1, granted: false })));
    assert.equal(r.state.role.kind, "follower");
    assert.equal(r.state.term, 1);
    // Figure 2: it voted for itself in term 1 and keeps that vote for the whole term.
    assert.equal(r.state.vote, "a");
    r = run(r.state, receive(requestVote({ from: "c", to: "a", term: 1, lastIndex: 9, lastTerm: 1 })));
    assert.equal(sent(r.effects, "RequestVoteResponse", "c")[0]?.granted, false, "no second vote in term 1");
  });

  test("§5.2 a split vote leaves no leader; the next timeout starts a new election in a higher term", () => {
    const voters = ["a", "b", "c", "d"];
    let r = run(node("a", { voters }), timeout("election"));
    r = run(
      r.state,
      receive(voteResponse({ from: "b", to: "a", term: 1 })),
      receive(voteResponse({ from: "c", to: "a", term: 1, granted: false })),
      receive(voteResponse({ from: "d", to: "a", term: 1, granted: false })),
    );
    assert.notEqual(r.state.role.kind, "leader");
    r = run(r.state, timeout("election"));
    assert.equal(r.state.role.kind, "candidate");
    assert.equal(r.state.term, 2);
  });

  test("§5.2 votes for another term are not counted", () => {
    let r = run(node("a", { term: 1 }), timeout("election")); // candidate in term 2
    r = run(r.state, receive(voteResponse({ from: "b", to: "a", term: 1 })));
    assert.equal(r.state.role.kind, "candidate");
  });

  test("§5.2 a candidate that hears from a leader of its term becomes its follower", () => {
    const c = run(node("a", { term: 1 }), timeout("election")).state;
    const { state } = run(c, receive(appendEntries({ from: "b", to: "a", term: 2, prevIndex: 0, prevTerm: 0 })));
    assert.deepEqual(state.role, { kind: "follower", leader: "b", sticky: true });
    assert.equal(state.term, 2);
  });

  test("§5.2 a single-node cluster elects itself on its first timeout", () => {
    const { state } = run(node("a", { voters: ["a"] }), timeout("election"));
    assert.equal(state.role.kind, "leader");
    assert.equal(state.term, 1);
  });

  test("§5.2 election timeouts are drawn from [T, 2T)", () => {
    let s = node("a", { config: { electionTimeoutMs: 150, heartbeatMs: 10, seed: 12345 } });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const r = step(s, timeout("election"));
      for (const ms of electionTimers(r.effects)) {
        assert.ok(ms >= 150 && ms < 300, `timeout ${ms} outside [150, 300)`);
        seen.add(ms);
      }
      s = r.state;
    }
    assert.ok(seen.size > 20, "timeouts are actually randomized");
  });

  test("§5.2 election timeouts are determined by the seed", () => {
    const draws = (seed: number) => {
      let s = node("a", { config: { seed } });
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = step(s, timeout("election"));
        out.push(...electionTimers(r.effects));
        s = r.state;
      }
      return out;
    };
    assert.deepEqual(draws(7), draws(7));
    assert.notDeepEqual(draws(7), draws(8));
  });

  test("§5.2 a leader sends heartbeats to every follower when its heartbeat timer fires, and re-arms it", () => {
    const leader = leaderWith("a", { voters: ["a", "b", "c"], learners: ["l"] });
    const { effects } = step(leader, timeout("heartbeat"));
    const beats = sent(effects, "AppendEntries");
    assert.deepEqual(beats.map((m) => m.to).sort(), ["b", "c", "l"]);
    assert.ok(beats.every((m) => m.entries.length === 0 && m.term === leader.term));
    assert.ok(
      effectsOf(effects, "SetTimer").some((t) => t.timer === "heartbeat" && t.ms === leader.config.heartbeatMs),
    );
  });

  test("§5.2 a leader ignores its stale election timer", () => {
    const leader = leaderWith("a", {});
    const { state, effects } = step(leader, timeout("election"));
    assert.equal(state.role.kind, "leader");
    assert.equal(state.term, leader.term);
    assert.equal(sent(effects).length, 0);
  });

  test("§8 a new leader appends a no-op entry of its term and replicates it", () => {
    const { state, effects } = elect(node("a", { log: [1, 1], term: 1 }), ["b"]);
    const last = lastIndex(state.log);
    assert.equal(last, 3);
    const noop = persisted(effects).flatMap((p) => p.entries).find((e) => e.index === 3);
    assert.equal(noop?.kind, "noop");
    assert.equal(noop?.term, 2);
    const appends = sent(effects, "AppendEntries");
    assert.deepEqual(appends.map((m) => m.to).sort(), ["b", "c"]);
    for (const m of appends) assert.deepEqual(m.entries.map((e) => e.index), [3]);
  });
});

describe("pre-vote (thesis §9.6)", () => {
  const withPreVote = { preVote: true };

  test("§9.6 an election timeout with pre-vote probes at term+1 without changing term or vote or persisting", () => {
    const s0 = node("a", { term: 3, vote: "b", config: withPreVote });
    const { state, effects } = step(s0, timeout("election"));
    assert.equal(state.role.kind, "precandidate");
    assert.equal(state.term, 3);
    assert.equal(state.vote, "b");
    assert.equal(persisted(effects).length, 0);
    const requests = sent(effects, "RequestVote");
    assert.equal(requests.length, 2);
    assert.ok(requests.every((r) => r.preVote && r.term === 4));
  });

  test("§9.6 a pre-vote request changes neither the voter's term nor its vote", () => {
    const { state, effects } = run(
      node("a", { term: 3, config: withPreVote }),
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 0, lastTerm: 0, preVote: true })),
    );
    assert.equal(state.term, 3);
    assert.equal(state.vote, undefined);
    assert.equal(persisted(effects).length, 0);
    const [reply] = sent(effects, "RequestVoteResponse", "b");
    assert.deepEqual([reply?.preVote, reply?.granted, reply?.term], [true, true, 4]);
  });

  test("§9.6 a pre-vote is refused to a candidate whose log is behind (§5.4.1)", () => {
    const { effects } = run(
      node("a", { log: [1, 2], config: withPreVote }),
      receive(requestVote({ from: "b", to: "a", term: 3, lastIndex: 5, lastTerm: 1, preVote: true })),
    );
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, false);
  });

  test("§9.6 a majority of granted pre-votes starts a real election in term+1", () => {
    let r = run(node("a", { term: 3, config: withPreVote }), timeout("election"));
    r = run(r.state, receive(voteResponse({ from: "b", to: "a", term: 4, preVote: true })));
    assert.equal(r.state.role.kind, "candidate");
    assert.equal(r.state.term, 4);
    assert.equal(r.state.vote, "a");
    const real = sent(r.effects, "RequestVote");
    assert.equal(real.length, 2);
    assert.ok(real.every((m) => !m.preVote && m.term === 4));
    assert.equal(persisted(r.effects)[0]?.hardState?.term, 4);
  });

  test("§9.6 a pre-vote rejected by a majority does not start an election", () => {
    let r = run(node("a", { term: 3, config: withPreVote }), timeout("election"));
    r = run(
      r.state,
      receive(voteResponse({ from: "b", to: "a", term: 3, preVote: true, granted: false })),
      receive(voteResponse({ from: "c", to: "a", term: 3, preVote: true, granted: false })),
    );
    assert.equal(r.state.role.kind, "follower");
    assert.equal(r.state.term, 3);
  });

  test("§4.2.3 a follower with a live leader ignores (pre-)vote requests (leader stickiness)", () => {
    const follower = run(
      node("a", { term: 3, config: withPreVote }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
    ).state;
    for (const preVote of [true, false]) {
      const { state, effects } = run(
        follower,
        receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 9, lastTerm: 3, preVote })),
      );
      assert.equal(state.term, 3, `preVote=${preVote}`);
      assert.equal(state.vote, undefined);
      assert.ok(sent(effects, "RequestVoteResponse").every((m) => !m.granted));
      assert.deepEqual(state.role, { kind: "follower", leader: "c", sticky: true });
    }
  });

  test("§4.2.3 stickiness lasts exactly one election timeout: then pre-votes are granted before this node campaigns", () => {
    const follower = run(
      node("a", { term: 3, config: withPreVote }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
    );
    // Hearing from the leader arms the timer for exactly T, not a random [T, 2T).
    const timers = follower.effects.filter((e) => e.type === "SetTimer" && e.timer === "election");
    assert.deepEqual(timers.at(-1), { type: "SetTimer", timer: "election", ms: 1000 });
    // When it fires, the node stops ignoring vote requests but does not campaign yet...
    const lapsed = run(follower.state, timeout("election"));
    assert.equal(lapsed.state.role.kind, "follower");
    assert.equal(sent(lapsed.effects, "RequestVote").length, 0);
    const jitter = lapsed.effects.find((e) => e.type === "SetTimer" && e.timer === "election");
    assert.ok(jitter && jitter.type === "SetTimer" && jitter.ms < 1000, "then waits only the random remainder");
    // ...so a pre-candidate whose own timeout ran out is heard at once (faster failover).
    const asked = run(
      lapsed.state,
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 0, lastTerm: 0, preVote: true })),
    );
    assert.equal(sent(asked.effects, "RequestVoteResponse", "b")[0]?.granted, true);
    // The remainder then starts its own campaign.
    assert.equal(run(lapsed.state, timeout("election")).state.role.kind, "precandidate");
  });

  test("§4.2.3 a leader ignores vote requests from a disruptive higher-term candidate", () => {
    const leader = leaderWith("a", { term: 2 });
    const { state } = run(
      leader,
      receive(requestVote({ from: "b", to: "a", term: leader.term + 5, lastIndex: 99, lastTerm: 9 })),
    );
    assert.equal(state.role.kind, "leader");
    assert.equal(state.term, leader.term);
  });

  test("§3.10 a transfer campaign our leader announced overrides leader stickiness", () => {
    const follower = run(
      node("a", { term: 3 }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
      receive({ group: 0, from: "c", to: "a", term: 3, type: "TimeoutNow", candidate: "b" }),
    ).state;
    assert.equal(follower.role.kind, "follower", "an announcement for another node does not make us campaign");
    const { state, effects } = run(
      follower,
      receive(requestVote({ from: "b", to: "a", term: 4, lastIndex: 0, lastTerm: 0, transfer: true })),
    );
    assert.equal(state.term, 4);
    assert.equal(state.vote, "b");
    assert.equal(sent(effects, "RequestVoteResponse", "b")[0]?.granted, true);
  });

  test("§3.10 a vote request merely claiming `transfer` is ignored by a sticky follower", () => {
    const follower = run(
      node("a", { term: 3 }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
    ).state;
    for (const term of [4, 1e12]) {
      const { state, effects } = run(
        follower,
        receive(requestVote({ from: "b", to: "a", term, lastIndex: 0, lastTerm: 0, transfer: true })),
      );
      assert.equal(state.term, 3, `term ${term} is not adopted`);
      assert.equal(state.vote, undefined);
      assert.equal(sent(effects).length, 0);
    }
    // Announced for b, the flag still does not carry a candidate that skips a term, nor another candidate.
    const told = run(follower, receive({ group: 0, from: "c", to: "a", term: 3, type: "TimeoutNow", candidate: "b" }))
      .state;
    for (const [from, term] of [["b", 9], ["d", 4]] as const) {
      const r = run(told, receive(requestVote({ from, to: "a", term, lastIndex: 0, lastTerm: 0, transfer: true })));
      assert.equal(r.state.term, 3, `${from} in term ${term} is ignored`);
    }
  });

  test("§3.10 TimeoutNow counts only from the leader we follow, in its term", () => {
    const follower = run(
      node("a", { term: 3 }),
      receive(appendEntries({ from: "c", to: "a", term: 3, prevIndex: 0, prevTerm: 0 })),
    ).state;
    for (const [from, term] of [["b", 3], ["c", 4], ["b", 4]] as const) {
      const r = run(follower, receive({ group: 0, from, to: "a", term, type: "TimeoutNow", candidate: "a" }));
      assert.notEqual(r.state.role.kind, "candidate", `TimeoutNow from ${from} in term ${term}`);
      assert.equal(sent(r.effects, "RequestVote").length, 0);
    }
  });

  test("§9.6 a partitioned node rejoining with pre-vote does not raise the cluster's term", () => {
    const cfg = { config: withPreVote };
    // c was cut off and timed out several times: it never left its term.
    let c = node("c", { term: 2, ...cfg });
    for (let i = 0; i < 5; i++) c = step(c, timeout("election")).state;
    assert.equal(c.term, 2);
    assert.equal(c.role.kind, "precandidate");
    // Meanwhile a leads term 3 with b following it.
    const leader = leaderWith("a", { term: 2, ...cfg, replicating: ["b"] });
    let b = run(
      node("b", { term: 2, ...cfg }),
      receive(appendEntries({ from: "a", to: "b", term: leader.term, prevIndex: 0, prevTerm: 0 })),
    ).state;
    // c's next pre-vote reaches the healthy cluster.
    const r = step(c, timeout("election"));
    const requests = sent(r.effects, "RequestVote");
    assert.ok(requests.length > 0 && requests.every((m) => m.preVote));
    const atLeader = run(leader, ...requests.filter((m) => m.to === "a").map(receive));
    const atB = run(b, ...requests.filter((m) => m.to === "b").map(receive));
    b = atB.state;
    assert.equal(atLeader.state.term, leader.term);
    assert.equal(atLeader.state.role.kind, "leader");
    assert.equal(b.term, leader.term);
    assert.ok([...sent(atLeader.effects, "RequestVoteResponse"), ...sent(atB.effects, "RequestVoteResponse")]
      .every((m) => !m.granted));
    // The leader's heartbeat brings c back as a follower in the cluster's term.
    const beat = sent(step(leader, timeout("heartbeat")).effects, "AppendEntries", "c")[0]!;
    const back = step(r.state, receive(beat)).state;
    assert.deepEqual(back.role, { kind: "follower", leader: "a", sticky: true });
    assert.equal(back.term, leader.term);
  });
});

describe("check-quorum (thesis §6.2)", () => {
  const cq = { config: { checkQuorum: true } };

  test("§6.2 a leader arms the quorum timer on election", () => {
    const { effects } = elect(node("a", cq), ["b"]);
    assert.ok(effectsOf(effects, "SetTimer").some((t) => t.timer === "quorum"));
  });

  test("§6.2 each check-quorum round arms the next one", () => {
    const leader = leaderWith("a", { ...cq, replicating: ["b"] });
    const { state, effects } = step(leader, timeout("quorum"));
    assert.equal(state.role.kind, "leader");
    assert.deepEqual(
      effectsOf(effects, "SetTimer").filter((t) => t.timer === "quorum").map((t) => t.ms),
      [leader.config.electionTimeoutMs],
    );
  });

  test("§6.2 a leader that heard from no quorum during an election timeout steps down", () => {
    let leader = leaderWith("a", cq);
    leader = step(leader, timeout("quorum")).state; // the first round counts the election itself
    assert.equal(leader.role.kind, "leader");
    const { state, effects } = step(leader, timeout("quorum"));
    assert.equal(state.role.kind, "follower");
    assert.equal(state.term, leader.term, "stepping down does not change the term");
    assert.ok(effectsOf(effects, "RoleChanged").some((e) => e.role === "follower"));
  });

  test("§6.2 a leader that heard from a quorum stays leader", () => {
    let leader = leaderWith("a", { ...cq, voters: ["a", "b", "c", "d", "e"] });
    for (let round = 0; round < 3; round++) {
      leader = run(
        leader,
        receive(appendResponse({ from: "b", to: "a", term: leader.term, index: 0 })),
        receive(appendResponse({ from: "d", to: "a", term: leader.term, index: 0 })),
        timeout("quorum"),
      ).state;
      assert.equal(leader.role.kind, "leader", `round ${round}`);
    }
  });

  test("§6.2 hearing from a minority is not enough", () => {
    let leader = leaderWith("a", { ...cq, voters: ["a", "b", "c", "d", "e"] });
    leader = step(leader, timeout("quorum")).state;
    const { state } = run(
      leader,
      receive(appendResponse({ from: "b", to: "a", term: leader.term, index: 0 })),
      timeout("quorum"),
    );
    assert.equal(state.role.kind, "follower");
  });

  test("§6.2 without checkQuorum the quorum timer is ignored", () => {
    let leader = leaderWith("a", {});
    leader = run(leader, timeout("quorum"), timeout("quorum")).state;
    assert.equal(leader.role.kind, "leader");
  });
});
