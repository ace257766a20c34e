import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { crc32c } from "../../core/crc32c.ts";
import { SnapshotChecksumMismatch } from "../../mod.ts";
import { rejects } from "../contract/wal.ts";
import type { Message } from "../../core/types.ts";
import { catchUpBySnapshot } from "./testkit.ts";

type Chunk = Extract<Message, { type: "InstallSnapshot" }>;

/** Catches a node up by snapshot, `tamper` acting on each chunk; `sent` is the chunks sent to it. */
async function catchUp(tamper: (m: Chunk) => Chunk = (m) => m) {
  const r = await catchUpBySnapshot({ tamper: (m) => (m.type === "InstallSnapshot" ? tamper(m) : m) });
  const sent = r.messages.filter((m): m is Chunk => m.type === "InstallSnapshot" && m.to === r.lagging);
  return { ...r, sent };
}

describe("snapshot data checked end to end", () => {
  test("the leader sends its stored checksum with the last chunk only", async () => {
    const r = await catchUp();
    const last = r.sent.filter((m) => m.done);
    assert.ok(last.length >= 1 && last.every((m) => m.checksum === r.leaderChecksum), "checksum on the last chunk");
    assert.ok(r.sent.filter((m) => !m.done).every((m) => m.checksum === undefined), "and on no other");
    assert.equal(r.installedChecksum, r.leaderChecksum);
    assert.deepEqual(r.laggingData, r.leaderData);
  });

  test("the receiver restores from the bytes its store verified, without reading the snapshot back", async () => {
    const r = await catchUp();
    assert.ok(r.sent.length > 2, "several chunks");
    assert.equal(r.laggingStoreReads, 0);
    assert.deepEqual(r.laggingData, r.leaderData);
  });

  test("a chunk damaged in transit: refused before restore, discarded, sent again from the start", async () => {
    // Damage the chunk at offset 64 of every transfer until one that carries it reaches its last
    // chunk (a transfer restarted from 0 under load would otherwise leave the damage behind).
    let damaged = false;
    let inThisTransfer = false;
    let done = false;
    const r = await catchUp((m) => {
      if (done) return m;
      if (m.offset === 0) inThisTransfer = false;
      if (m.done && inThisTransfer) done = true;
      if (m.offset !== 64) return m;
      damaged = inThisTransfer = true;
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
    const r = await catchUp((m) => {
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

  test("the memory store keeps only received bytes that match the sender's checksum", async () => {
    const store = new MemorySnapshotStore();
    const meta = { index: 1, term: 1, membership: { voters: ["a"], learners: [], outgoing: undefined } };
    const bytes = new Uint8Array([1, 2, 3, 4]);
    assert.equal((await store.write(meta, [bytes])).checksum, crc32c(bytes));
    const newer = { ...meta, index: 2 };
    for (const wrong of [crc32c(bytes) ^ 1, undefined]) {
      const rx = await store.receive(newer);
      await rx.writeChunk(0, bytes);
      const err = await rejects(rx.finish(wrong));
      assert.ok(err instanceof SnapshotChecksumMismatch, `expected SnapshotChecksumMismatch, got ${err}`);
      assert.equal(err.expected, wrong);
      assert.equal(err.actual, crc32c(bytes));
      assert.equal(store.latestMeta?.index, 1, "nothing became current");
    }
    const rx = await store.receive(newer);
    await rx.writeChunk(0, bytes);
    assert.equal((await rx.finish(crc32c(bytes))).checksum, crc32c(bytes));
    assert.equal(store.latestMeta?.index, 2);
  });
});
