import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c as reference } from "@aws-crypto/crc32c";
import { crc32c } from "../../core/crc32c.ts";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("crc32c", () => {
  test("RFC 3720 §B.4 test vectors", () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    const inc = new Uint8Array(32);
    for (let i = 0; i < 32; i++) inc[i] = i;
    assert.equal(crc32c(inc), 0x46dd794e);
    const dec = new Uint8Array(32);
    for (let i = 0; i < 32; i++) dec[i] = 31 - i;
    assert.equal(crc32c(dec), 0x113fdb5c);
    // The iSCSI SCSI Read (10) command PDU from the same appendix.
    // deno-fmt-ignore
    const pdu = new Uint8Array([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    assert.equal(crc32c(pdu), 0xd9963a56);
  });

  test("well-known check value and empty input", () => {
    assert.equal(crc32c(ascii("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32c(new Uint8Array(0), 0xdeadbeef), 0xdeadbeef);
  });

  test("matches @aws-crypto/crc32c on random inputs", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        assert.equal(crc32c(bytes), reference(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  test("matches @aws-crypto/crc32c on buffers long enough for the word loop, at every alignment", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4096, maxLength: 9000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.nat(),
        (bytes, skip, cut) => {
          const view = bytes.subarray(skip);
          assert.equal(crc32c(view), reference(view));
          const at = cut % (view.length + 1);
          assert.equal(crc32c(view.subarray(at), crc32c(view.subarray(0, at))), reference(view));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("works on subarray views with unaligned offsets", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.nat(),
        (bytes, at) => {
          const view = bytes.subarray(at % bytes.length);
          assert.equal(crc32c(view), reference(view.slice()));
        },
      ),
      { numRuns: 500 },
    );
  });

  test("incremental update over random split points equals one-shot", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (bytes, cuts) => {
          const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
          let crc = 0;
          let from = 0;
          for (const p of [...points, bytes.length]) {
            crc = crc32c(bytes.subarray(from, p), crc);
            from = p;
          }
          assert.equal(crc, reference(bytes));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
