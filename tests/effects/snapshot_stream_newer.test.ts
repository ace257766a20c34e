/**
 * A snapshot stream that outlives the latest snapshot: while a follower
 * receives the leader's snapshot in many small chunks, the leader stores a
 * newer one. The stream must keep sending the checksum of the snapshot it
 * streams (it once sent the newer one's, so the follower refused the
 * assembled bytes, asked again, and never caught up).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { createNode, type RaftEvent, type RaftNode } from "../../mod.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

describe("a snapshot stream outliving the latest snapshot", () => {
  test("a newer snapshot stored mid-stream does not make the follower refuse the one it receives", {
    timeout: 60_000,
  }, async () => {
    const ids = ["a", "b", "c"];
    const hub = new MemoryHub();
    const peers = Object.fromEntries(ids.map((id) => [id, id]));
    const machines = new Map(ids.map((id) => [id, new KvMachine()]));
    const warnings: string[] = [];
    const nodes: RaftNode<{ key: string; value: string }, string | undefined, KvMachine>[] = [];
    try {
      for (const id of ids) {
        const node = await createNode({
          id,
          peers,
          stateMachine: machines.get(id)!,
          logStore: new MemoryLogStore(),
          snapshotStore: new MemorySnapshotStore(),
          transport: hub.transport(id),
          config: { ...testConfig, snapshotEvery: 5, keepAfterSnapshot: 0 },
          snapshotChunkBytes: 16, // a long stream: many round trips
        });
        node.subscribe((e: RaftEvent) => void (e.type === "warning" && warnings.push(`${id}: ${e.message}`)));
        nodes.push(node);
      }
      const leader = await waitFor(() => nodes.find((n) => n.status().role === "leader"), 4000, "a leader");
      const lagging = nodes.find((n) => n !== leader)!;
      hub.isolate(lagging.id);
      const value = "v".repeat(40);
      for (let i = 0; i < 30; i++) await leader.propose({ key: `k${i}`, value });
      hub.heal();
      // Newer snapshots are stored while the stream to the lagging node runs.
      for (let i = 30; i < 45; i++) await leader.propose({ key: `k${i}`, value });
      await waitFor(() => machines.get(lagging.id)!.data.size === 45, 20_000, "the lagging node caught up");
      assert.deepEqual([...machines.get(lagging.id)!.data].sort(), [...machines.get(leader.id)!.data].sort());
      assert.deepEqual(warnings.filter((w) => /checksum/.test(w)), []);
    } finally {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    }
  });
});
