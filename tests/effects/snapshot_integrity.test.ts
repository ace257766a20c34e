import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { crc32c } from "../../core/crc32c.ts";
import type { Message } from "../../core/types.ts";
import { createNode, type RaftEvent, type RaftNode } from "../../mod.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

type Kv = RaftNode<{ key: string; value: string }, string | undefined, KvMachine>;
type Chunk = Extract<Message, { type: "InstallSnapshot" }>;

/**
 * Three nodes on one hub; one is stopped while 60 writes make the leader
 * snapshot, then restarted, so it must catch up by an InstallSnapshot of
 * several 64-byte chunks. `tamper` sees every chunk on the wire.
 */
async function catchUpBySnapshot(tamper: (m: Chunk) => Chunk) {
  const ids = ["a", "b", "c"];
  const hub = new MemoryHub();
  const peers = Object.fromEntries(ids.map((id) => [id, id]));
  const stores = new Map(ids.map((id) => [id, { log: new MemoryLogStore(), snapshots: new MemorySnapshotStore() }]));
  const machines = new Map<string, KvMachine>();
  const nodes = new Map<string, Kv>();
  const events: RaftEvent[] = [];
  const start = async (id: string) => {
    const machine = new KvMachine();
    machines.set(id, machine);
    const node: Kv = await createNode({
      id,
      peers,
      stateMachine: machine,
      logStore: stores.get(id)!.log,
      snapshotStore: stores.get(id)!.snapshots,
      transport: hub.transport(id),
      config: { ...testConfig, snapshotEvery: 20, keepAfterSnapshot: 0 },
      snapshotChunkBytes: 64,
    });
    node.subscribe((e) => void events.push(e));
    nodes.set(id, node);
  };
  const sent: Chunk[] = [];
  hub.tamper = (m) => {
    if (m.type !== "InstallSnapshot") return m;
    sent.push(m);
    return tamper(m);
  };
  try {
    await Promise.all(ids.map(start));
    const leader = await waitFor(() => [...nodes.values()].find((n) => n.status().role === "leader"), 4000, "a leader");
    const lagging = ids.find((id) => id !== leader.id)!;
    await nodes.get(lagging)!.stop();
    nodes.delete(lagging);
    for (let i = 0; i < 60; i++) await leader.propose({ key: `key-${i}`, value: `value-${i}` });
    await waitFor(() => (stores.get(leader.id)!.snapshots.latestMeta?.index ?? 0) >= 40, 4000, "a snapshot");
    events.length = 0;
    await start(lagging);
    await waitFor(() => stores.get(lagging)!.snapshots.latestMeta !== undefined, 8000, "the snapshot installed");
    await nodes.get(lagging)!.read(() => undefined);
    const leaderSnapshot = (await stores.get(leader.id)!.snapshots.latest())!;
    const installed = (await stores.get(lagging)!.snapshots.latest())!;
    return {
      leaderData: [...machines.get(leader.id)!.data].sort(),
      laggingData: [...machines.get(lagging)!.data].sort(),
      leaderChecksum: leaderSnapshot.checksum,
      installedChecksum: installed.checksum,
      warnings: events.flatMap((e) => e.type === "warning" ? [e.message] : []),
      sent: sent.filter((m) => m.to === lagging),
    };
  } finally {
    await Promise.allSettled([...nodes.values()].map((n) => n.stop()));
  }
}

describe("snapshot data checked end to end", () => {
  test("the leader sends its stored checksum with the last chunk only", async () => {
    const r = await catchUpBySnapshot((m) => m);
    const last = r.sent.filter((m) => m.done);
    assert.ok(last.length >= 1 && last.every((m) => m.checksum === r.leaderChecksum), "checksum on the last chunk");
    assert.ok(r.sent.filter((m) => !m.done).every((m) => m.checksum === undefined), "and on no other");
    assert.equal(r.installedChecksum, r.leaderChecksum);
    assert.deepEqual(r.laggingData, r.leaderData);
  });

  test("a chunk damaged in transit: refused before restore, discarded, sent again from the start", async () => {
    let damaged = false;
    const r = await catchUpBySnapshot((m) => {
      if (damaged || m.offset !== 64) return m;
      damaged = true;
      const data = m.data.slice();
      data[10] ^= 0x20;
      return { ...m, data };
    });
    assert.ok(damaged, "a chunk was damaged");
    assert.ok(r.warnings.some((w) => /failed its checksum.*discarded, asking for it again/.test(w)), `${r.warnings}`);
    assert.ok(r.sent.filter((m) => m.offset === 0).length >= 2, "the transfer restarted from the start");
    // What was installed and restored is the leader's, byte for byte.
    assert.equal(r.installedChecksum, r.leaderChecksum);
    assert.deepEqual(r.laggingData, r.leaderData);
  });

  test("a last chunk without a checksum is refused", async () => {
    let stripped = false;
    const r = await catchUpBySnapshot((m) => {
      if (stripped || !m.done) return m;
      stripped = true;
      const { checksum: _, ...rest } = m;
      return rest;
    });
    assert.ok(stripped);
    assert.ok(r.warnings.some((w) => /came without a checksum/.test(w)), `${r.warnings}`);
    assert.equal(r.installedChecksum, r.leaderChecksum);
    assert.deepEqual(r.laggingData, r.leaderData);
  });

  test("the memory store records the checksum it is given and computes its own on write", async () => {
    const store = new MemorySnapshotStore();
    const meta = { index: 1, term: 1, membership: { voters: ["a"], learners: [], outgoing: undefined } };
    const bytes = new Uint8Array([1, 2, 3, 4]);
    assert.equal((await store.write(meta, [bytes])).checksum, crc32c(bytes));
    const rx = await store.receive(meta);
    await rx.writeChunk(0, bytes);
    assert.equal((await rx.finish(1234)).checksum, 1234);
  });
});
