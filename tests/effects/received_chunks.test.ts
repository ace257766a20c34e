import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32c } from "../../core/crc32c.ts";
import type { StoredSnapshot } from "../../effects/ports/mod.ts";
import { ReceivedChunks, RETAIN_RECEIVED_BYTES } from "../../effects/runtime/snapshot_io.ts";

const meta = { index: 7, term: 2, membership: { voters: ["a"], learners: [], outgoing: undefined } };

/** What the store would return for `bytes`; its read must not be used when the chunks are kept. */
function stored(bytes: Uint8Array): StoredSnapshot {
  return {
    meta,
    size: bytes.length,
    checksum: crc32c(bytes),
    read: () => {
      throw new Error("read the store");
    },
  };
}

async function all(it: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const c of it) out.push(...c);
  return out;
}

describe("a received snapshot's chunks kept for its restore", () => {
  test("read from memory, from the start or an offset, with the store's meta, size and checksum", async () => {
    const r = new ReceivedChunks();
    r.add(new Uint8Array([1, 2, 3]));
    r.add(new Uint8Array([4, 5]));
    const s = r.asStored(stored(new Uint8Array([1, 2, 3, 4, 5])))!;
    assert.equal(s.size, 5);
    assert.equal(s.checksum, crc32c(new Uint8Array([1, 2, 3, 4, 5])));
    assert.deepEqual(s.meta, meta);
    assert.deepEqual(await all(s.read()), [1, 2, 3, 4, 5]);
    assert.deepEqual(await all(s.read(2)), [3, 4, 5]);
    assert.deepEqual(await all(s.read(5)), []);
    assert.throws(() => s.read(6), RangeError);
  });

  test("kept as copies: a buffer changed after it was written does not change what is restored", async () => {
    const r = new ReceivedChunks();
    const chunk = new Uint8Array([9, 9]);
    r.add(chunk);
    chunk[0] = 0;
    assert.deepEqual(await all(r.asStored(stored(new Uint8Array([9, 9])))!.read()), [9, 9]);
  });

  test("chunks that do not add up to what the store holds: read the store instead", () => {
    const r = new ReceivedChunks();
    r.add(new Uint8Array([1, 2]));
    assert.equal(r.asStored(stored(new Uint8Array([1, 2, 3]))), undefined);
  });

  test("past the cap nothing is kept, and the store is read instead", () => {
    const r = new ReceivedChunks();
    r.add(new Uint8Array(1));
    r.add(new Uint8Array(RETAIN_RECEIVED_BYTES));
    r.add(new Uint8Array(1));
    assert.equal(r.asStored(stored(new Uint8Array(RETAIN_RECEIVED_BYTES + 2))), undefined);
  });
});
