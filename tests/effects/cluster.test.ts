import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RaftRejected } from "../../mod.ts";
import { startCluster, waitFor, waitForLeader } from "./testkit.ts";

describe("a 3-node in-memory cluster", () => {
  test("elects one leader and applies a proposal everywhere, returning the state machine's result", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(c);
      assert.equal(await leader.node!.propose({ key: "x", value: "1" }), undefined);
      assert.equal(await leader.node!.propose({ key: "x", value: "2" }), "1");
      await waitFor(() => c.members.every((m) => m.machine.data.get("x") === "2"), 4000, "replication");
      for (const m of c.members) {
        const idx = m.machine.appliedIndexes;
        assert.deepEqual(idx, [...idx].sort((p, q) => p - q), "applied in log order");
        assert.equal(new Set(idx).size, idx.length, "each entry applied once");
      }
    } finally {
      await c.stopAll();
    }
  });

  test("a proposal made on a follower is forwarded and resolves with its result", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(c);
      const follower = c.members.find((m) => m !== leader)!;
      assert.equal(await follower.node!.propose({ key: "k", value: "v1" }), undefined);
      assert.equal(await follower.node!.propose({ key: "k", value: "v2" }), "v1");
      assert.equal(follower.machine.data.get("k"), "v2");
    } finally {
      await c.stopAll();
    }
  });

  test("reads on any node see every write that completed before them", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(c);
      for (let i = 0; i < 5; i++) {
        await leader.node!.propose({ key: "n", value: String(i) });
        for (const m of c.members) {
          assert.equal(await m.node!.read((sm) => sm.data.get("n")), String(i), `read on ${m.id}`);
        }
      }
    } finally {
      await c.stopAll();
    }
  });

  test("after the leader stops, a new leader is elected and serves proposals", async () => {
    const c = await startCluster(["a", "b", "c"]);
    try {
      const first = await waitForLeader(c);
      await first.node!.propose({ key: "before", value: "1" });
      await first.node!.stop();
      first.node = undefined;
      const second = await waitForLeader(c);
      assert.notEqual(second.id, first.id);
      assert.equal(await second.node!.propose({ key: "after", value: "2" }), undefined);
      assert.equal(await second.node!.read((sm) => sm.data.get("before")), "1");
    } finally {
      await c.stopAll();
    }
  });

  test("requests on a stopped node fail with NodeStopped", async () => {
    const c = await startCluster(["a"]);
    const m = c.members[0]!;
    await waitForLeader(c);
    const node = m.node!;
    await node.stop();
    await assert.rejects(node.propose({ key: "x", value: "y" }), (e: Error) => e.name === "NodeStopped");
    assert.equal(node.status().stopped, true);
  });

  test("a proposal made before any election waits for the leader, then succeeds", async () => {
    // Once forwarded, a proposal whose leader changes before answering has an unknown outcome
    // (OutcomeUnknown, rightly); timeouts well above a busy machine's stalls keep the first
    // leader in place, which is what this test is about.
    const c = await startCluster(["a", "b", "c"], { config: { electionTimeoutMs: 1000, heartbeatMs: 100 } });
    try {
      assert.equal(c.members[0]!.node!.status().leader, undefined, "no leader yet");
      await c.members[0]!.node!.propose({ key: "early", value: "bird" });
      const values = await c.members[1]!.node!.read((sm) => sm.data.get("early"));
      assert.equal(values, "bird");
    } finally {
      await c.stopAll();
    }
  });

  test("with leaderWaitMs 0, a proposal without any known leader is rejected at once with a typed error", async () => {
    const c = await startCluster(["a", "b", "c"], {
      config: { electionTimeoutMs: 5000, heartbeatMs: 100 },
      leaderWaitMs: 0,
    });
    try {
      await assert.rejects(
        c.members[0]!.node!.propose({ key: "x", value: "y" }),
        (e: unknown) => e instanceof RaftRejected && e.reason === "not-leader" && e.leader === undefined,
      );
    } finally {
      await c.stopAll();
    }
  });
});
