/**
 * Write reports come in the order the write units were taken, also when the
 * writer finishes while the loop is inside a round: a unit with nothing to
 * write is durable at once only if no earlier unit is still to be reported.
 * It once was reported as soon as the writer fiber had gone idle, ahead of
 * the writer's own report still queued for the loop, and the node died with
 * "write N reported durable out of order" (seen once on Bun in CI: a wiped
 * node receiving a snapshot, whose chunk is stored before the round's write
 * is handed on).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import type { AppendEntries, AppendEntriesResponse, Entry, InstallSnapshot } from "../../core/types.ts";
import type { SnapshotStorePort } from "../../effects/ports/mod.ts";
import { handFollower, handTransport, kvEntry, waitFor } from "./testkit.ts";

/** A gate the test opens. */
function gate(): { readonly wait: Promise<void>; readonly open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

test("a write with nothing to write is reported after the writer's last report, not before it", async () => {
  const { transport, sent, deliver } = handTransport();
  let syncGate: Promise<void> | undefined;
  let held = false;
  const log = new MemoryLogStore({
    beforeSync: () => {
      if (syncGate) held = true;
      return syncGate ?? Promise.resolve();
    },
  });
  const memory = new MemorySnapshotStore();
  let receiveGate: Promise<void> | undefined;
  let receiving = false;
  const snapshots: SnapshotStorePort = {
    latest: () => memory.latest(),
    write: (meta, chunks) => memory.write(meta, chunks),
    receive: async (meta) => {
      receiving = true;
      await receiveGate;
      return memory.receive(meta);
    },
  };
  const stopped: unknown[] = [];
  // The test plays the leader "l" of a three-node group; "f" is the node under test.
  const node = await handFollower(log, snapshots, transport);
  node.subscribe((e) => void (e.type === "stopped" && stopped.push(e.error)));
  let seq = 0;
  const header = { group: 0, from: "l", to: "f", term: 1 } as const;
  const append = (prevIndex: number, entries: Entry[], commit: number): AppendEntries => ({
    ...header,
    type: "AppendEntries",
    prevIndex,
    prevTerm: prevIndex === 0 ? 0 : 1,
    entries,
    commit,
    seq: ++seq,
  });
  const acked = (index: number) =>
    waitFor(
      () =>
        sent.find((m): m is AppendEntriesResponse =>
          m.type === "AppendEntriesResponse" && m.success && m.index >= index
        ),
      5_000,
      `an acknowledgement of ${index}`,
    );
  try {
    deliver(append(0, [kvEntry(1)], 1));
    await acked(1);
    // Entry 2 goes to the writer, whose sync is held.
    const sync = gate();
    syncGate = sync.wait;
    deliver(append(1, [kvEntry(2)], 1));
    await waitFor(() => held, 5_000, "entry 2's sync to start");
    // One round with a heartbeat (its answer waits for entry 2: a unit with nothing to write) and the first
    // chunk of a snapshot, whose store is held: the round stores the chunk before it hands on its write.
    const store = gate();
    receiveGate = store.wait;
    const snapshot: InstallSnapshot = {
      ...header,
      type: "InstallSnapshot",
      meta: { index: 10, term: 1, membership: { voters: ["f", "l", "x"], learners: [], outgoing: undefined } },
      offset: 0,
      data: new Uint8Array(8),
      done: false,
    };
    deliver(append(2, [], 1));
    deliver(snapshot);
    await waitFor(() => receiving, 5_000, "the chunk's store to be opened");
    // The writer finishes entry 2 while the round waits on the store; its report queues for the loop.
    syncGate = undefined;
    sync.open();
    await waitFor(() => log.durableLastIndex >= 2, 5_000, "entry 2 durable");
    await new Promise((r) => setTimeout(r, 10));
    store.open();
    await acked(2).catch((e) => {
      throw new Error(`${e.message}; stopped with ${stopped.map(String)}`);
    });
    await waitFor(() => sent.some((m) => m.type === "InstallSnapshotResponse"), 5_000, "the chunk answered");
    assert.deepEqual(stopped, []);
    assert.equal(node.status().role, "follower");
  } finally {
    await node.stop().catch(() => {});
  }
});
