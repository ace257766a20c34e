import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PeerQueue } from "./queue.ts";

describe("PeerQueue", () => {
  test("refuses past the message bound, and in-flight messages still count until settled", () => {
    const q = new PeerQueue(1_000, 3);
    assert.ok(q.offer(new Uint8Array([1])));
    assert.ok(q.offer(new Uint8Array([2])));
    const batch = q.take();
    assert.deepEqual([...batch!], [1, 2]);
    assert.equal(q.length, 0);
    assert.ok(q.offer(new Uint8Array([3])));
    assert.equal(q.offer(new Uint8Array([4])), false, "2 in flight + 1 queued = bound");
    q.settle();
    assert.ok(q.offer(new Uint8Array([4])));
  });

  test("refuses past the byte bound", () => {
    const q = new PeerQueue(10, 100);
    assert.ok(q.offer(new Uint8Array(6)));
    assert.equal(q.offer(new Uint8Array(5)), false);
    assert.ok(q.offer(new Uint8Array(4)));
    assert.equal(q.bytes, 10);
  });

  test("take puts the prefix first and concatenates in order; empty queue yields only the prefix", () => {
    const q = new PeerQueue(100, 100);
    assert.equal(q.take(), undefined);
    assert.deepEqual([...q.take(new Uint8Array([9]))!], [9]);
    q.offer(new Uint8Array([1, 2]));
    q.offer(new Uint8Array([3]));
    assert.deepEqual([...q.take(new Uint8Array([0]))!], [0, 1, 2, 3]);
  });

  test("clear drops everything and frees the bounds", () => {
    const q = new PeerQueue(4, 100);
    q.offer(new Uint8Array(4));
    q.take();
    q.offer(new Uint8Array(0));
    q.clear();
    assert.equal(q.length, 0);
    assert.ok(q.offer(new Uint8Array(4)));
  });
});
