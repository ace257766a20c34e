import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Message } from "../../core/types.ts";
import { type Cluster, startCluster, waitFor, waitForLeader } from "./testkit.ts";

describe("the interpreter's disk discipline", () => {
  test("group commit: 1,000 concurrent proposals cost far fewer than 1,000 syncs", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(c);
      const before = leader.log.syncCalls;
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => leader.node!.propose({ key: `k${i}`, value: String(i) })),
      );
      assert.equal(results.length, 1000);
      assert.equal(leader.machine.data.get("k999"), "999");
      const syncs = leader.log.syncCalls - before;
      assert.ok(syncs >= 1, "the proposals were synced");
      assert.ok(syncs < 100, `expected batched syncs, got ${syncs} for 1,000 proposals`);
    } finally {
      await c.stopAll();
    }
  });

  test("rule 1: votes and acks never leave before their sync; the leader's AppendEntries does", async () => {
    // Every sync takes a few milliseconds, so a message that outran the disk would be caught.
    const c: Cluster = await startCluster(["a", "b", "c"], {
      log: { beforeSync: () => new Promise((r) => setTimeout(r, 3)) },
    });
    const violations: string[] = [];
    let leaderSentAhead = 0;
    const store = (id: string) => c.members.find((m) => m.id === id)!.log;
    c.hub.onSend = (m: Message) => {
      const log = store(m.from);
      if (m.type === "RequestVoteResponse" && m.granted && !m.preVote) {
        const hs = log.durableHardState;
        if (hs.term < m.term || hs.vote !== m.to) {
          violations.push(`${m.from} granted a vote to ${m.to} before it was durable`);
        }
      } else if (m.type === "AppendEntriesResponse" && m.success && m.index > log.durableLastIndex) {
        violations.push(`${m.from} acknowledged ${m.index} with only ${log.durableLastIndex} durable`);
      } else if (m.type === "AppendEntries" && m.entries.length > 0) {
        if (m.entries[m.entries.length - 1]!.index > log.durableLastIndex) leaderSentAhead++;
      }
    };
    try {
      const leader = await waitForLeader(c);
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => leader.node!.propose({ key: `r${round}`, value: String(i) })),
        );
      }
      assert.deepEqual(violations, []);
      assert.ok(leaderSentAhead > 0, "the leader sent AppendEntries before its own sync completed (thesis §10.2.1)");
    } finally {
      await c.stopAll();
    }
  });

  test("the loop goes on during the leader's fsync: followers' answers commit, apply waits for the disk", async () => {
    const c = await startCluster(["a", "b", "c"]);
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    try {
      const leader = await waitForLeader(c);
      await leader.node!.propose({ key: "warm", value: "up" });
      // Hold the leader's next fsync until released.
      const sync = leader.log.sync.bind(leader.log);
      let holding = true;
      leader.log.sync = async () => {
        if (holding) await held;
        return sync();
      };
      const first = leader.node!.propose({ key: "k", value: "1" });
      // While the fsync is held, a second proposal is still taken and replicated, and the
      // followers' answers are counted: both commit (a quorum without the leader, §10.2.1).
      await waitFor(() => leader.node!.status().lastIndex >= leader.log.durableLastIndex + 1, 2000, "the first entry");
      const second = leader.node!.propose({ key: "k", value: "2" });
      const last = await waitFor(
        () => {
          const s = leader.node!.status();
          return s.lastIndex >= leader.log.durableLastIndex + 2 && s.commit === s.lastIndex && s.lastIndex;
        },
        2000,
        "both entries committed by the followers while the leader's fsync is held",
      );
      assert.ok(leader.log.durableLastIndex < last, "the leader's own fsync has not completed");
      // The leader applies only what its own disk holds.
      assert.equal(leader.machine.data.get("k"), undefined);
      holding = false;
      release();
      await Promise.all([first, second]);
      assert.equal(leader.machine.data.get("k"), "2");
      assert.ok(leader.log.durableLastIndex >= last);
    } finally {
      release();
      await c.stopAll();
    }
  });

  test("a restarted node recovers its log from the store and catches up", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(c);
      for (let i = 0; i < 10; i++) await leader.node!.propose({ key: "x", value: String(i) });
      const follower = c.members.find((m) => m !== leader)!;
      await follower.node!.stop();
      follower.node = undefined;
      await leader.node!.propose({ key: "y", value: "while-down" });
      await c.start(follower.id);
      // Until it hears from the leader, a restarted follower refuses reads (RaftRejected "not-leader").
      await waitFor(() => follower.node!.status().leader !== undefined, 4000, "the follower to find the leader");
      const value = await follower.node!.read((sm) => sm.data.get("y"));
      assert.equal(value, "while-down");
      assert.equal(follower.machine.data.get("x"), "9");
    } finally {
      await c.stopAll();
    }
  });
});
