// Snapshots of a user state machine: streamed on save and restore, taken on demand, a persistent
// state machine that reports its applied index (no replay), and the default snapshot policy.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createNode,
  DEFAULT_SNAPSHOT_EVERY,
  type RaftNode,
  type SnapshotReader,
  StateMachineFailure,
} from "../../mod.ts";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { testConfig, waitFor } from "./testkit.ts";

/** A counter map whose snapshot streams one chunk per key, and whose restore reads chunk by chunk. */
class Streaming {
  readonly data = new Map<string, number>();
  restoredChunks = 0;
  snapshotChunks = 0;
  applied: number[] = [];
  apply(c: { key: string }, index: number): number {
    this.applied.push(index);
    const n = (this.data.get(c.key) ?? 0) + 1;
    this.data.set(c.key, n);
    return n;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const rows = [...this.data]; // captured now: the node applies on while the chunks are written
    const counted = () => void this.snapshotChunks++;
    return (async function* () {
      for (const [k, v] of rows) {
        counted();
        yield new TextEncoder().encode(`${k}=${v}\n`);
      }
    })();
  }

  async restore(snapshot: SnapshotReader): Promise<void> {
    this.data.clear();
    let text = "";
    for await (const chunk of snapshot) {
      this.restoredChunks++;
      text += new TextDecoder().decode(chunk);
    }
    for (const line of text.split("\n").filter(Boolean)) {
      const [k, v] = line.split("=");
      this.data.set(k!, Number(v));
    }
  }
}

type Node = RaftNode<{ key: string }, number, Streaming>;

async function solo(
  machine: Streaming,
  stores = { log: new MemoryLogStore(), snapshots: new MemorySnapshotStore() },
  config = {},
): Promise<{ node: Node; stores: typeof stores }> {
  const node = await createNode({
    id: "a",
    peers: { a: "a" },
    stateMachine: machine,
    logStore: stores.log,
    snapshotStore: stores.snapshots,
    transport: new MemoryHub().transport("a"),
    config: { ...testConfig, ...config },
  });
  await node.waitForLeader(3000);
  return { node, stores };
}

describe("user state machine snapshots", () => {
  test("snapshot() on demand streams chunks to the store; restore() reads them back chunk by chunk", async () => {
    const machine = new Streaming();
    const { node, stores } = await solo(machine);
    try {
      for (let i = 0; i < 30; i++) await node.propose({ key: `k${i % 10}` });
      const meta = await node.snapshot();
      assert.equal(meta.index, node.status().applied);
      assert.equal(machine.snapshotChunks, 10, "one chunk per key, streamed");
      assert.equal((await stores.snapshots.latest())?.meta.index, meta.index);
      assert.equal((await node.snapshot()).index, meta.index, "nothing applied since: the same snapshot");
    } finally {
      await node.stop();
    }
    // A fresh state machine restores from the snapshot, streaming, and replays only what follows it.
    const again = new Streaming();
    const { node: b } = await solo(again, stores);
    try {
      assert.ok(again.restoredChunks >= 1);
      assert.equal(again.data.get("k3"), 3);
      assert.deepEqual(again.applied, [], "nothing before the snapshot is applied again");
    } finally {
      await b.stop();
    }
  });

  test("a follower that fell behind installs the leader's streamed snapshot", async () => {
    const hub = new MemoryHub();
    const ids = ["a", "b", "c"] as const;
    const peers = { a: "a", b: "b", c: "c" };
    const machines = new Map(ids.map((id) => [id, new Streaming()]));
    const nodes = await Promise.all(ids.map((id) =>
      createNode({
        id,
        peers,
        stateMachine: machines.get(id)!,
        logStore: new MemoryLogStore(),
        snapshotStore: new MemorySnapshotStore(),
        transport: hub.transport(id),
        config: { ...testConfig, keepAfterSnapshot: 0 },
      })
    ));
    try {
      const leaderId = await nodes[0]!.waitForLeader(3000);
      const leader = nodes[ids.indexOf(leaderId as "a")]!;
      const laggard = ids.find((id) => id !== leaderId)!;
      hub.isolate(laggard);
      for (let i = 0; i < 20; i++) await leader.propose({ key: `k${i}` });
      await leader.snapshot();
      hub.heal();
      const behind = machines.get(laggard)!;
      await waitFor(() => behind.data.get("k19") === 1, 5000, "the laggard to catch up");
      assert.ok(behind.restoredChunks >= 1, "by a snapshot, read chunk by chunk");
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });

  test("a state machine that reports its applied index is not replayed, nor restored from an older snapshot", async () => {
    const machine = new Streaming();
    const { node, stores } = await solo(machine);
    let persisted = 0;
    try {
      for (let i = 0; i < 10; i++) await node.propose({ key: "x" });
      persisted = node.status().applied;
    } finally {
      await node.stop();
    }
    // Its durable state holds everything up to `persisted`: nothing is applied again, nothing restored.
    const durable = Object.assign(new Streaming(), { appliedIndex: () => persisted });
    const { node: b } = await solo(durable, stores);
    try {
      assert.deepEqual(durable.applied, []);
      assert.equal(durable.restoredChunks, 0);
      await b.propose({ key: "y" });
      assert.deepEqual(durable.applied, [persisted + 2], "the next command only (after the new leader's no-op)");
    } finally {
      await b.stop();
    }
    // One that claims more than the log holds is refused: it is not this node's state.
    const liar = Object.assign(new Streaming(), { appliedIndex: () => persisted + 100 });
    await assert.rejects(solo(liar, stores), StateMachineFailure);
  });

  test("a snapshot the state machine fails to stream is not fatal: snapshot() rejects, the node goes on", async () => {
    const machine = Object.assign(new Streaming(), {
      snapshot(): AsyncIterable<Uint8Array> {
        return (async function* () {
          yield new Uint8Array([1]);
          throw new Error("disk of the state machine is gone");
        })();
      },
    });
    const { node } = await solo(machine);
    try {
      await node.propose({ key: "a" });
      await assert.rejects(node.snapshot(), StateMachineFailure);
      assert.equal(await node.propose({ key: "a" }), 2);
      assert.equal(node.status().stopped, false);
    } finally {
      await node.stop();
    }
  });

  test("by default a state machine with snapshot() is snapshotted every DEFAULT_SNAPSHOT_EVERY entries", async () => {
    assert.equal(DEFAULT_SNAPSHOT_EVERY, 10_000);
    const machine = new Streaming();
    const stores = { log: new MemoryLogStore(), snapshots: new MemorySnapshotStore() };
    const { node } = await solo(machine, stores, { keepAfterSnapshot: 0 });
    try {
      const writes: Promise<number>[] = [];
      for (let i = 0; i < DEFAULT_SNAPSHOT_EVERY + 10; i++) writes.push(node.propose({ key: `k${i % 100}` }));
      await Promise.all(writes);
      const latest = await waitFor(() => stores.snapshots.latest(), 5000, "a snapshot");
      assert.ok(latest.meta.index >= DEFAULT_SNAPSHOT_EVERY);
      // Compaction follows the store's report, on the node's loop.
      await waitFor(async () => (await stores.log.load()).entries.length < 1000, 5000, "the log compacted behind it");
    } finally {
      await node.stop();
    }
  });
});
