import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { membershipArb } from "../arbitraries.ts";
import { DecodeError, decodeMembership, encodeMembership } from "../../core/codec/mod.ts";
import type { Membership } from "../../core/types.ts";

const idArb = fc.string({ minLength: 1, maxLength: 6 });

describe("membership codec: learners marked for promotion", () => {
  test("a non-empty promote list round-trips, joint or not", () => {
    fc.assert(
      fc.property(membershipArb, fc.array(idArb, { minLength: 1, maxLength: 4 }), (m, promote) => {
        const marked: Membership = { ...m, promote };
        assert.deepEqual(decodeMembership(encodeMembership(marked)), marked);
      }),
      { numRuns: 200 },
    );
  });

  test("without marks the encoding is byte-identical to the format before the field existed", () => {
    const m: Membership = { voters: ["a", "b"], learners: ["l"], outgoing: undefined };
    // flags 0, voters [a, b], learners [l], after the version byte.
    const before = new Uint8Array([1, 0, 2, 1, 97, 1, 98, 1, 1, 108]);
    assert.deepEqual(encodeMembership(m), before);
    assert.deepEqual(encodeMembership({ ...m, promote: [] }), before, "an empty list is not written");
    const back = decodeMembership(before);
    assert.deepEqual(back, m);
    assert.ok(!("promote" in back), "records written before the field decode without it");
  });

  test("the promote flag with an empty list is refused as non-canonical", () => {
    const bad = new Uint8Array([1, 2, 1, 1, 97, 0, 0]);
    assert.throws(() => decodeMembership(bad), DecodeError);
  });

  test("unknown flag bits are still refused", () => {
    assert.throws(() => decodeMembership(new Uint8Array([1, 4, 0, 0])), DecodeError);
  });
});
