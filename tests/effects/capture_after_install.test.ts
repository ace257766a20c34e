/**
 * A follower's own capture (index 2) is still being stored when it installs
 * a newer snapshot from its leader (index 10), and the capture's store
 * finishes last. The newer snapshot stays the latest: in the store (which
 * keeps the highest index) and in what the streams hold. The memory store
 * once kept the last one written, so a restart recovered from 2 with a log
 * compacted to 10 — behind what the node had acknowledged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import type { AppendEntries } from "../../core/types.ts";
import type { SnapshotStorePort } from "../../effects/ports/mod.ts";
import { handFollower, handTransport, kvEntry, waitFor, wholeSnapshot } from "./testkit.ts";

test("an own capture stored after a newer installed snapshot does not become the latest", async () => {
  const { transport, deliver } = handTransport();
  const log = new MemoryLogStore();
  const memory = new MemorySnapshotStore();
  let gate: Promise<void> | undefined;
  let writing = false;
  const snapshots: SnapshotStorePort = {
    latest: () => memory.latest(),
    receive: (meta) => memory.receive(meta),
    write: async (meta, chunks) => {
      if (gate) writing = true;
      await gate;
      return memory.write(meta, chunks);
    },
  };
  const start = () => handFollower(log, snapshots, transport);
  const node = await start();
  const header = { group: 0, from: "l", to: "f", term: 1 } as const;
  const append: AppendEntries = {
    ...header,
    type: "AppendEntries",
    prevIndex: 0,
    prevTerm: 0,
    entries: [kvEntry(1), kvEntry(2)],
    commit: 2,
    seq: 1,
  };
  let open = () => {};
  try {
    deliver(append);
    await waitFor(() => node.status().applied === 2, 5000, "2 applied");
    gate = new Promise<void>((r) => (open = r));
    const own = node.snapshot();
    await waitFor(() => writing, 5000, "the own capture's store to start");
    const state = new TextEncoder().encode(JSON.stringify([["k1", "v"], ["k2", "v"], ["k10", "v"]]));
    deliver(wholeSnapshot(10, state));
    await waitFor(() => node.status().applied === 10, 5000, "snapshot 10 installed");
    await waitFor(
      () => (log.entries[0]?.index ?? log.durableLastIndex + 1) > 10 || log.entries.length === 0,
      5000,
      "log compacted",
    );
    gate = undefined;
    open();
    const meta = await own;
    console.log(
      "own snapshot resolved with",
      meta.index,
      "store latest",
      memory.latestMeta?.index,
      "log",
      log.entries.map((e) => e.index),
      "durableLast",
      log.durableLastIndex,
    );
  } finally {
    open();
    await node.stop().catch(() => {});
  }
  // What a restart on the same stores makes of it.
  const again = await start().catch((e) => e);
  console.log(
    "restart:",
    again instanceof Error
      ? `failed: ${again.message}`
      : JSON.stringify({ applied: again.status().applied, last: again.status().lastIndex }),
  );
  if (!(again instanceof Error)) await again.stop();
  assert.equal(memory.latestMeta?.index, 10, "the store's latest went back to the older capture");
});
