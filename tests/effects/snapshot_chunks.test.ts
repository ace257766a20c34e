import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { createNode, type RaftNode } from "../../mod.ts";
import type { Message } from "../../core/types.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

type Kv = RaftNode<{ key: string; value: string }, string | undefined, KvMachine>;

describe("chunked InstallSnapshot through the interpreter", () => {
  test("chunks are acknowledged, and a lost chunk is resent from the follower's offset, not from the start", async () => {
    const ids = ["a", "b", "c"];
    const hub = new MemoryHub();
    const peers = Object.fromEntries(ids.map((id) => [id, id]));
    const stores = new Map(ids.map((id) => [id, { log: new MemoryLogStore(), snapshots: new MemorySnapshotStore() }]));
    const machines = new Map<string, KvMachine>();
    const nodes = new Map<string, Kv>();
    const start = async (id: string) => {
      const machine = new KvMachine();
      machines.set(id, machine);
      nodes.set(
        id,
        await createNode({
          id,
          peers,
          stateMachine: machine,
          logStore: stores.get(id)!.log,
          snapshotStore: stores.get(id)!.snapshots,
          transport: hub.transport(id),
          config: { ...testConfig, snapshotEvery: 20, keepAfterSnapshot: 0 },
          snapshotChunkBytes: 64,
        }),
      );
    };
    const chunks: Message[] = [];
    let dropped: number | undefined;
    hub.drop = (m) => {
      if (m.type === "InstallSnapshot" || m.type === "InstallSnapshotResponse") chunks.push(m);
      // Lose the third chunk of the first transfer, once.
      if (m.type === "InstallSnapshot" && dropped === undefined && m.offset === 128) {
        dropped = m.offset;
        return true;
      }
      return false;
    };
    try {
      await Promise.all(ids.map(start));
      const leader = await waitFor(
        () => [...nodes.values()].find((n) => n.status().role === "leader"),
        4000,
        "a leader",
      );
      const lagging = ids.find((id) => id !== leader.id)!;
      await nodes.get(lagging)!.stop();
      nodes.delete(lagging);
      for (let i = 0; i < 60; i++) await leader.propose({ key: `key-${i}`, value: `value-${i}` });
      await waitFor(() => (stores.get(leader.id)!.snapshots.latestMeta?.index ?? 0) >= 40, 4000, "a snapshot");
      await start(lagging);
      await waitFor(() => stores.get(lagging)!.snapshots.latestMeta !== undefined, 4000, "the snapshot installed");
      await nodes.get(lagging)!.read(() => undefined);
      assert.deepEqual([...machines.get(lagging)!.data].sort(), [...machines.get(leader.id)!.data].sort());

      const sent = chunks.filter((m): m is Extract<Message, { type: "InstallSnapshot" }> =>
        m.type === "InstallSnapshot" && m.to === lagging
      );
      assert.equal(dropped, 128, "a chunk was lost");
      assert.ok(sent.filter((m) => m.offset === 128).length >= 2, "the lost chunk was sent again");
      assert.equal(sent.filter((m) => m.offset === 0).length, 1, "the transfer resumed instead of restarting");
      assert.ok(sent.length > 5 && sent.every((m) => m.data.length <= 64), "several chunks within the size limit");
      const acks = chunks.filter((m) => m.type === "InstallSnapshotResponse" && !m.done && m.success);
      assert.ok(acks.length > 0, "chunks are acknowledged one by one");
      const gap = chunks.find((m) => m.type === "InstallSnapshotResponse" && !m.done && !m.success);
      assert.ok(gap?.type === "InstallSnapshotResponse" && gap.offset === 128, "the follower named the gap");
    } finally {
      await Promise.allSettled([...nodes.values()].map((n) => n.stop()));
    }
  });
});
