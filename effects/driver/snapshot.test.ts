import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { membershipOf } from "../../core/membership.ts";
import { chunkMessage, type SenderOptions, SnapshotSender } from "./snapshot_sender.ts";
import { type ReceivedChunk, type ReceiverOp, SnapshotReceiver } from "./snapshot_receiver.ts";

const meta = { index: 10, term: 2, membership: membershipOf(["a", "b"]) };
const options = (size: number, extra: Partial<SenderOptions> = {}): SenderOptions => ({
  to: "b",
  term: 3,
  meta,
  size,
  chunkBytes: 10,
  window: 2,
  idleMs: 100,
  maxIdle: 3,
  ...extra,
});
const offsets = (s: SnapshotSender) => s.pump().map((c) => [c.offset, c.length, c.done]);

describe("snapshot sender (sans-IO)", () => {
  test("fills a window of chunks beyond the acknowledged offset, and acks move it", () => {
    const s = new SnapshotSender(options(35), 0);
    assert.deepEqual(offsets(s), [[0, 10, false], [10, 10, false]]);
    assert.deepEqual(offsets(s), [], "the window is full");
    s.answer(10, true, false, 5);
    assert.deepEqual(offsets(s), [[20, 10, false]]);
    s.answer(30, true, false, 6);
    assert.deepEqual(offsets(s), [[30, 5, true]], "the last chunk is short and marked done");
    assert.deepEqual(offsets(s), []);
    s.answer(35, true, true, 7);
    assert.ok(s.finished);
  });

  test("a gap report resumes from the offset the follower needs, once per offset", () => {
    const s = new SnapshotSender(options(50, { window: 4 }), 0);
    assert.equal(s.pump().length, 4);
    // Chunk 10 was lost: the chunks at 20 and 30 each report the gap.
    s.answer(10, true, false, 1);
    s.answer(10, false, false, 2);
    assert.deepEqual(offsets(s), [[10, 10, false], [20, 10, false], [30, 10, false], [40, 10, true]]);
    s.answer(10, false, false, 3);
    assert.deepEqual(offsets(s), [], "the same gap reported again does not resend again");
  });

  test("silence for idleMs resends from the acknowledged offset; maxIdle rounds give up", () => {
    const s = new SnapshotSender(options(30), 0);
    s.pump();
    s.answer(10, true, false, 10);
    s.pump();
    assert.equal(s.tick(109), undefined);
    assert.deepEqual(offsets(s), [], "not idle yet");
    assert.equal(s.deadline, 110);
    assert.equal(s.tick(110), undefined);
    assert.deepEqual(offsets(s), [[10, 10, false], [20, 10, true]], "resent from the ack");
    assert.equal(s.tick(210), undefined);
    assert.equal(s.tick(310), undefined);
    assert.equal(s.tick(410), "give-up");
  });

  test("an answer resets the idle count; resume() restarts from the ack", () => {
    const s = new SnapshotSender(options(30), 0);
    s.pump();
    s.tick(100);
    s.tick(200);
    s.answer(10, true, false, 250);
    assert.equal(s.tick(349), undefined);
    assert.equal(s.tick(350), undefined);
    assert.equal(s.tick(450), undefined);
    assert.equal(s.tick(550), undefined, "three idle rounds after the answer, not four");
    s.resume(600);
    assert.deepEqual(offsets(s)[0], [10, 10, false]);
  });

  test("an empty snapshot is one empty, final chunk, resent only when asked", () => {
    const s = new SnapshotSender(options(0), 0);
    assert.deepEqual(offsets(s), [[0, 0, true]]);
    assert.deepEqual(offsets(s), []);
    s.tick(100);
    assert.deepEqual(offsets(s), [[0, 0, true]]);
  });

  test("a chunk size below one byte is raised to one", () => {
    const s = new SnapshotSender(options(3, { chunkBytes: 0, window: 8 }), 0);
    assert.deepEqual(offsets(s), [[0, 1, false], [1, 1, false], [2, 1, true]]);
  });

  test("the checksum rides on the last chunk only", () => {
    const header = { group: 0, from: "a", to: "b", term: 3 };
    const last = chunkMessage(header, meta, { offset: 10, length: 5, done: true }, new Uint8Array(5), 77);
    const first = chunkMessage(header, meta, { offset: 0, length: 10, done: false }, new Uint8Array(10), 77);
    assert.equal(last.checksum, 77);
    assert.equal("checksum" in first, false);
  });
});

const chunk = (offset: number, size: number, done = false, extra: Partial<ReceivedChunk> = {}): ReceivedChunk => ({
  from: "a",
  meta,
  offset,
  data: new Uint8Array(size),
  done,
  checksum: done ? 9 : undefined,
  ...extra,
});
const kinds = (ops: ReceiverOp[]) => ops.map((o) => (o.op === "answer" ? `answer ${o.offset} ${o.success}` : o.op));

describe("snapshot receiver (sans-IO)", () => {
  test("in-order chunks are written and acknowledged; the last finishes with the leader's checksum", () => {
    const r = new SnapshotReceiver();
    assert.deepEqual(kinds(r.chunk(chunk(0, 10), 3)), ["begin", "write", "answer 10 true"]);
    assert.deepEqual(kinds(r.chunk(chunk(10, 5, true), 3)), ["write", "finish"]);
    assert.equal(r.receiving, false);
    const finish = r.chunk(chunk(0, 5, true), 3).find((o) => o.op === "finish");
    assert.deepEqual(finish, { op: "finish", from: "a", meta, checksum: 9 });
  });

  test("a duplicate is acknowledged, a chunk past a gap names the offset to resume from", () => {
    const r = new SnapshotReceiver();
    r.chunk(chunk(0, 10), 3);
    r.chunk(chunk(10, 10), 3);
    assert.deepEqual(kinds(r.chunk(chunk(10, 10), 3)), ["answer 20 true"], "duplicate");
    assert.deepEqual(kinds(r.chunk(chunk(30, 10), 3)), ["answer 20 false"], "gap");
    assert.deepEqual(kinds(r.chunk(chunk(20, 10), 3)), ["write", "answer 30 true"]);
  });

  test("another leader, term or snapshot drops the partial one; a mid-stream chunk without a start is refused", () => {
    const r = new SnapshotReceiver();
    r.chunk(chunk(0, 10), 3);
    assert.deepEqual(kinds(r.chunk(chunk(10, 10, false, { from: "c" }), 3)), ["abort", "answer 0 false"]);
    r.chunk(chunk(0, 10), 3);
    assert.deepEqual(kinds(r.chunk(chunk(0, 10), 4)), ["abort", "begin", "write", "answer 10 true"], "new term");
    const other = { ...meta, index: 20 };
    assert.deepEqual(kinds(r.chunk(chunk(10, 10, false, { meta: other }), 4)), ["abort", "answer 0 false"]);
    assert.deepEqual(kinds(new SnapshotReceiver().chunk(chunk(10, 10), 3)), ["answer 0 false"]);
  });

  test("a term change abandons a partial snapshot of the earlier term; reset() forgets it", () => {
    const r = new SnapshotReceiver();
    r.chunk(chunk(0, 10), 3);
    assert.deepEqual(r.termChanged(3), []);
    assert.deepEqual(kinds(r.termChanged(4)), ["abort"]);
    r.chunk(chunk(0, 10), 4);
    r.reset();
    assert.deepEqual(kinds(r.chunk(chunk(10, 10), 4)), ["answer 0 false"]);
  });

  test("answers go to the sending leader in the receiver's term", () => {
    const r = new SnapshotReceiver();
    const [, , ack] = r.chunk(chunk(0, 4), 7);
    assert.deepEqual(ack, { op: "answer", to: "a", term: 7, index: 10, offset: 4, success: true });
  });
});
