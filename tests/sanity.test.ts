import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Effect } from "effect";
import fc from "fast-check";

describe("runtime sanity", () => {
  test("effect, fast-check and WebCrypto resolve and work", () => {
    assert.equal(Effect.runSync(Effect.succeed(1)), 1);
    const buf = new Uint8Array(32);
    crypto.getRandomValues(buf);
    assert.ok(buf.some((b) => b !== 0));
    fc.assert(fc.property(fc.integer(), (n) => n + 0 === n));
  });
});
