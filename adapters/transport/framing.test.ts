import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkHandshake,
  concatBytes,
  decodeHandshake,
  encodeFrame,
  encodeHandshake,
  FrameDecoder,
  FrameTooLargeError,
  HANDSHAKE_MAGIC,
  HandshakeError,
  handshakeFrame,
  PROTOCOL_VERSION,
} from "./framing.ts";

/** Split `bytes` at the given cut points (any values; reduced modulo the length). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

describe("FrameDecoder", () => {
  test("recovers every payload, in order, across arbitrary chunk boundaries", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const stream = concatBytes(payloads.map(encodeFrame));
          const decoder = new FrameDecoder(1024);
          const out: Uint8Array[] = [];
          for (const chunk of split(stream, cuts)) out.push(...decoder.push(chunk));
          assert.deepEqual(out.map((f) => [...f]), payloads.map((p) => [...p]));
          assert.ok(decoder.idle);
        },
      ),
    );
  });

  test("returned payloads do not alias the pushed chunk (the runtime may reuse its read buffer)", () => {
    const decoder = new FrameDecoder(1024);
    const chunk = concatBytes([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array([4]))]);
    const frames = decoder.push(chunk);
    chunk.fill(0);
    assert.deepEqual(frames.map((f) => [...f]), [[1, 2, 3], [4]]);
  });

  test("one byte at a time works, and idle is false mid-frame", () => {
    const decoder = new FrameDecoder(1024);
    const stream = encodeFrame(new Uint8Array([9, 8, 7]));
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) {
      out.push(...decoder.push(stream.subarray(i, i + 1)));
      if (i < stream.length - 1) assert.equal(decoder.idle, false);
    }
    assert.deepEqual(out.map((f) => [...f]), [[9, 8, 7]]);
  });

  test("a frame announcing more than maxFrameBytes is rejected with a typed error", () => {
    const decoder = new FrameDecoder(16);
    assert.deepEqual(decoder.push(encodeFrame(new Uint8Array(16))).length, 1);
    assert.throws(
      () => decoder.push(encodeFrame(new Uint8Array(17))),
      (e: unknown) => e instanceof FrameTooLargeError && e._tag === "FrameTooLargeError" && e.size === 17,
    );
  });

  test("the oversized length is caught from the header alone, even when split", () => {
    const decoder = new FrameDecoder(100);
    const header = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual(decoder.push(header.subarray(0, 2)), []);
    assert.throws(() => decoder.push(header.subarray(2)), FrameTooLargeError);
  });
});

describe("handshake", () => {
  test("round-trips, including non-ASCII ids", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (clusterId, from) => {
        const h = { magic: HANDSHAKE_MAGIC, version: PROTOCOL_VERSION, clusterId, from };
        assert.deepEqual(decodeHandshake(encodeHandshake(h)), h);
      }),
    );
  });

  test("handshakeFrame is one frame holding the handshake", () => {
    const frames = new FrameDecoder(1024).push(handshakeFrame("c1", "n1"));
    assert.equal(frames.length, 1);
    assert.equal(decodeHandshake(frames[0]).from, "n1");
  });

  test("bad magic, other version, truncation and trailing bytes are malformed (not forbidden)", () => {
    const good = encodeHandshake({ magic: HANDSHAKE_MAGIC, version: PROTOCOL_VERSION, clusterId: "c", from: "a" });
    const badMagic = good.slice();
    badMagic[0] = "X".charCodeAt(0);
    const badVersion = encodeHandshake({
      magic: HANDSHAKE_MAGIC,
      version: PROTOCOL_VERSION + 1,
      clusterId: "c",
      from: "a",
    });
    const trailing = concatBytes([good, new Uint8Array([0])]);
    for (const bytes of [badMagic, badVersion, good.subarray(0, good.length - 1), good.subarray(0, 3), trailing]) {
      assert.throws(() => decodeHandshake(bytes), (e: unknown) => e instanceof HandshakeError && !e.forbidden);
    }
  });

  test("another cluster or an unknown sender is forbidden", () => {
    const h = { magic: HANDSHAKE_MAGIC, version: PROTOCOL_VERSION, clusterId: "c1", from: "a" };
    const known = (id: string) => id === "a";
    checkHandshake(h, "c1", known);
    assert.throws(() => checkHandshake(h, "c2", known), (e: unknown) => e instanceof HandshakeError && e.forbidden);
    assert.throws(
      () => checkHandshake({ ...h, from: "z" }, "c1", known),
      (e: unknown) => e instanceof HandshakeError && e.forbidden,
    );
  });
});
