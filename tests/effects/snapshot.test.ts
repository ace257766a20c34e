import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { startCluster, waitFor, waitForLeader } from "./testkit.ts";

describe("snapshots through the interpreter", () => {
  test("the leader snapshots and compacts; a follower that fell behind catches up by InstallSnapshot", async () => {
    const c = await startCluster(["a", "b", "c"], { config: { snapshotEvery: 20, keepAfterSnapshot: 5 } });
    try {
      const leader = await waitForLeader(c);
      const lagging = c.members.find((m) => m !== leader)!;
      await lagging.node!.stop();
      lagging.node = undefined;
      for (let i = 0; i < 100; i++) await leader.node!.propose({ key: `k${i % 7}`, value: String(i) });
      await waitFor(() => (leader.snapshots.latestMeta?.index ?? 0) >= 60, 4000, "a leader snapshot");
      await waitFor(() => leader.log.entries[0]!.index > 2, 4000, "leader log compaction");
      await c.start(lagging.id);
      await waitFor(() => lagging.node!.status().leader !== undefined, 4000, "the follower to find the leader");
      await lagging.node!.read(() => undefined);
      assert.deepEqual([...lagging.machine.data].sort(), [...leader.machine.data].sort());
      assert.ok(lagging.snapshots.latestMeta !== undefined, "the follower installed a snapshot");
      // It never applied the compacted entries one by one: it restored them from the snapshot.
      assert.ok(!lagging.machine.appliedIndexes.includes(3));
    } finally {
      await c.stopAll();
    }
  });

  test("a node restarts from its own snapshot plus the log after it", async () => {
    const c = await startCluster(["a"], { config: { snapshotEvery: 10, keepAfterSnapshot: 2 } });
    try {
      const m = c.members[0]!;
      await waitForLeader(c);
      for (let i = 0; i < 35; i++) await m.node!.propose({ key: `k${i % 5}`, value: String(i) });
      await waitFor(() => (m.snapshots.latestMeta?.index ?? 0) >= 30, 4000, "a snapshot");
      const before = [...m.machine.data].sort();
      await m.node!.stop();
      await c.start("a");
      await waitForLeader(c);
      await m.node!.read(() => undefined);
      assert.deepEqual([...m.machine.data].sort(), before);
      assert.ok(m.machine.appliedIndexes.every((i) => i > m.snapshots.latestMeta!.index));
    } finally {
      await c.stopAll();
    }
  });
});
