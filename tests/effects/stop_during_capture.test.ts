/**
 * A node stopped while its snapshot capture is being stored: stop() waits
 * for the store's write before the store is closed (it once resolved, and
 * closed the store, with the write still running behind it).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import type { SnapshotStorePort, TransportPort } from "../../effects/ports/mod.ts";
import { createNode } from "../../mod.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

test("stop waits for (or cancels) a snapshot store write in flight before closing the store", async () => {
  const transport: TransportPort = {
    send: () => true,
    onMessage: () => {},
    onUnreachable: () => {},
    setPeers: () => {},
    close: () => Promise.resolve(),
  };
  const memory = new MemorySnapshotStore();
  let open = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let writing = false;
  const events: string[] = [];
  const snapshots: SnapshotStorePort = {
    latest: () => memory.latest(),
    receive: (m) => memory.receive(m),
    write: async (meta, chunks) => {
      writing = true;
      await gate;
      const s = await memory.write(meta, chunks);
      events.push(`write ${meta.index} done`);
      return s;
    },
    close: () => (events.push("close"), Promise.resolve()),
  };
  const node = await createNode({
    id: "a",
    peers: { a: "a" },
    stateMachine: new KvMachine(),
    logStore: new MemoryLogStore(),
    snapshotStore: snapshots,
    transport,
    config: { ...testConfig },
  });
  try {
    await waitFor(() => node.status().role === "leader", 5000, "a leads");
    await node.propose({ key: "k", value: "v" });
    const snap = node.snapshot().catch((e) => e);
    await waitFor(() => writing, 5000, "the capture's write to start");
    let stopped = false;
    const stopping = node.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    events.push(`stopped=${stopped}`);
    open();
    await stopping;
    await snap;
    await new Promise((r) => setTimeout(r, 50));
    // Expected: the store is not closed while its write runs (close after the write, or the write never lands).
    assert.deepEqual(
      events.indexOf("close") > events.indexOf("write 2 done") || !events.includes("write 2 done"),
      true,
      `events: ${events.join(", ")}`,
    );
  } finally {
    open();
    await node.stop().catch(() => {});
  }
});
