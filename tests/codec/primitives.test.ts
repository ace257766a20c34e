import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { natArb, safeIntArb } from "../arbitraries.ts";
import {
  DecodeError,
  Reader,
  stringFieldSize,
  svarintSize,
  utf8Length,
  uvarintSize,
  Writer,
} from "../../core/codec/mod.ts";

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

function written(f: (w: Writer) => void): Uint8Array {
  const w = new Writer(1);
  f(w);
  return w.finish().slice();
}

function decodeFails(
  bytes: number[],
  read: (r: Reader) => unknown,
  reason: RegExp,
): void {
  assert.throws(() => {
    const r = new Reader(new Uint8Array(bytes));
    read(r);
    r.done();
  }, (e: unknown) => e instanceof DecodeError && reason.test(e.reason));
}

describe("varints", () => {
  test("known unsigned and zigzag encodings", () => {
    assert.equal(hex(written((w) => w.uvarint(0))), "00");
    assert.equal(hex(written((w) => w.uvarint(127))), "7f");
    assert.equal(hex(written((w) => w.uvarint(300))), "ac 02");
    assert.equal(hex(written((w) => w.uvarint(2 ** 32))), "80 80 80 80 10");
    assert.equal(
      hex(written((w) => w.uvarint(Number.MAX_SAFE_INTEGER))),
      "ff ff ff ff ff ff ff 0f",
    );
    assert.equal(hex(written((w) => w.svarint(0))), "00");
    assert.equal(hex(written((w) => w.svarint(-1))), "01");
    assert.equal(hex(written((w) => w.svarint(1))), "02");
    assert.equal(hex(written((w) => w.svarint(-64))), "7f");
    assert.equal(hex(written((w) => w.svarint(64))), "80 01");
    // 2 * MAX_SAFE + 1 is not a double; the writer must still produce it.
    assert.equal(
      hex(written((w) => w.svarint(-Number.MAX_SAFE_INTEGER))),
      "fd ff ff ff ff ff ff 1f",
    );
  });

  test("unsigned round-trip with exact sizes", () => {
    fc.assert(
      fc.property(natArb, (n) => {
        const b = written((w) => w.uvarint(n));
        assert.equal(b.length, uvarintSize(n));
        const r = new Reader(b);
        assert.equal(r.uvarint(), n);
        r.done();
      }),
      { numRuns: 2000 },
    );
  });

  test("zigzag round-trip with exact sizes", () => {
    fc.assert(
      fc.property(safeIntArb, (n) => {
        const b = written((w) => w.svarint(n));
        assert.equal(b.length, svarintSize(n));
        const r = new Reader(b);
        assert.equal(r.svarint(), n);
        r.done();
      }),
      { numRuns: 2000 },
    );
  });

  test("decoder rejects overflow, over-long, non-canonical and truncated varints", () => {
    decodeFails(
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
      (r) => r.uvarint(),
      /exceeds 2\^53/,
    );
    decodeFails(
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
      (r) => r.uvarint(),
      /exceeds 2\^53/,
    );
    decodeFails(
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
      (r) => r.uvarint(),
      /longer than 8/,
    );
    decodeFails([0x81, 0x00], (r) => r.uvarint(), /non-canonical/);
    decodeFails([0x81, 0x80], (r) => r.uvarint(), /truncated/);
    decodeFails([], (r) => r.uvarint(), /truncated/);
    decodeFails([0x80, 0x00], (r) => r.svarint(), /non-canonical/);
    // Zigzag of -(2^53): one below the safe range.
    decodeFails(
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f],
      (r) => r.svarint(),
      /below/,
    );
  });

  test("encoder refuses values outside the format with RangeError", () => {
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      assert.throws(() => new Writer().uvarint(bad), RangeError);
    }
    for (const bad of [0.5, NaN, -Infinity, 2 ** 53, -(2 ** 53)]) {
      assert.throws(() => new Writer().svarint(bad), RangeError);
    }
  });
});

describe("strings and bytes", () => {
  test("strings round-trip with exact sizes, including non-ASCII and a leading BOM", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary" }),
          fc.string({ unit: "binary-ascii", maxLength: 100 }),
        ),
        (s) => {
          for (const str of [s, "\uFEFF" + s]) {
            const b = written((w) => w.string(str));
            assert.equal(b.length, stringFieldSize(str));
            assert.equal(utf8Length(str), new TextEncoder().encode(str).length);
            const r = new Reader(b);
            assert.equal(r.string(), str);
            r.done();
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("lone surrogates cannot be encoded", () => {
    assert.throws(() => new Writer().string("a\uD800b"), RangeError);
    assert.throws(() => new Writer().string("\uDC00"), RangeError);
    assert.throws(() => utf8Length("x\uD83D"), RangeError);
  });

  test("malformed UTF-8 is a DecodeError", () => {
    decodeFails([2, 0xc3, 0x28], (r) => r.string(), /invalid UTF-8/);
    decodeFails([3, 0xed, 0xa0, 0x80], (r) => r.string(), /invalid UTF-8/); // encoded surrogate
    decodeFails([2, 0xc0, 0x80], (r) => r.string(), /invalid UTF-8/); // over-long NUL
  });

  test("bytes are views into the input, not copies", () => {
    const input = written((w) => w.bytes(new Uint8Array([1, 2, 3])));
    const out = new Reader(input).bytes();
    assert.deepEqual(out, new Uint8Array([1, 2, 3]));
    assert.equal(out.buffer, input.buffer);
  });

  test("lengths beyond the input or the configured limits fail before allocating", () => {
    decodeFails(
      [0x80, 0x80, 0x80, 0x80, 0x10, 1, 2],
      (r) => r.bytes(),
      /exceeds the 2 remaining/,
    );
    decodeFails([4, 1, 2, 3], (r) => r.bytes(), /exceeds the 3 remaining/);
    assert.throws(
      () => new Reader(new Uint8Array([3, 1, 2, 3]), { maxBytes: 2 }).bytes(),
      (e) => e instanceof DecodeError && /limit 2/.test(e.reason),
    );
    assert.throws(
      () => new Reader(new Uint8Array([3, 97, 98, 99]), { maxString: 2 }).string(),
      (e) => e instanceof DecodeError && /limit 2/.test(e.reason),
    );
    assert.throws(
      () => new Reader(new Uint8Array([3, 0, 0, 0]), { maxItems: 2 }).count(1),
      (e) => e instanceof DecodeError && /limit 2/.test(e.reason),
    );
    decodeFails(
      [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
      (r) => r.count(1),
      /exceeds what the remaining/,
    );
  });

  test("unknown flag bits and trailing bytes are rejected", () => {
    decodeFails([0b100], (r) => r.flags(0b011), /unknown flag bits 0x4/);
    decodeFails([0, 0], (r) => r.u8(), /1 trailing byte/);
  });
});

describe("Writer", () => {
  test("grows from a tiny buffer and can be reset for reuse", () => {
    const w = new Writer(1);
    const payload = new Uint8Array(1000).map((_, i) => i & 0xff);
    w.bytes(payload);
    w.string("hello");
    assert.equal(w.length, 2 + 1000 + 1 + 5);
    const r = new Reader(w.finish());
    assert.deepEqual(r.bytes(), payload);
    assert.equal(r.string(), "hello");
    r.done();
    w.reset();
    w.u8(7);
    assert.deepEqual(w.finish(), new Uint8Array([7]));
  });
});
