/**
 * A snapshot stream that outlives the latest snapshot: while a follower
 * receives the leader's snapshot in many small chunks, the leader stores a
 * newer one. The stream must keep sending the checksum of the snapshot it
 * streams (it once sent the newer one's, so the follower refused the
 * assembled bytes, asked again, and never caught up).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RaftEvent } from "../../mod.ts";
import { startCluster, waitFor, waitForLeader } from "./testkit.ts";

describe("a snapshot stream outliving the latest snapshot", () => {
  test("a newer snapshot stored mid-stream does not make the follower refuse the one it receives", {
    timeout: 60_000,
  }, async () => {
    const cluster = await startCluster(["a", "b", "c"], {
      config: { snapshotEvery: 5, keepAfterSnapshot: 0 },
      snapshotChunkBytes: 16, // a long stream: many round trips
    });
    const warnings: string[] = [];
    for (const m of cluster.members) {
      m.node!.subscribe((e: RaftEvent) => void (e.type === "warning" && warnings.push(`${m.id}: ${e.message}`)));
    }
    try {
      const leader = await waitForLeader(cluster);
      const lagging = cluster.members.find((m) => m !== leader)!;
      cluster.hub.isolate(lagging.id);
      const value = "v".repeat(40);
      for (let i = 0; i < 30; i++) await leader.node!.propose({ key: `k${i}`, value });
      cluster.hub.heal();
      // Newer snapshots are stored while the stream to the lagging node runs.
      for (let i = 30; i < 45; i++) await leader.node!.propose({ key: `k${i}`, value });
      await waitFor(() => lagging.machine.data.size === 45, 20_000, "the lagging node caught up");
      assert.deepEqual([...lagging.machine.data].sort(), [...leader.machine.data].sort());
      assert.deepEqual(warnings.filter((w) => /checksum/.test(w)), []);
    } finally {
      await cluster.stopAll();
    }
  });
});
