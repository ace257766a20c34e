// The coalesced heartbeat messages (tags 14 and 15): round trips, their size
// next to the messages they replace, and malformed input, refused with a
// DecodeError before anything reaches a host or a core.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CODEC_VERSION,
  DecodeError,
  decodeMessage,
  encodedMessageSize,
  encodeMessage,
  MAX_COALESCED_ITEMS,
  MESSAGE_TAGS,
  Writer,
} from "../../core/codec/mod.ts";
import type { AppendEntries, HeartbeatItem, HeartbeatResponses, Heartbeats, Message } from "../../core/types.ts";
import { heartbeatItemArb, messageArbs } from "../arbitraries.ts";

function rejects(bytes: Uint8Array, reason: RegExp): void {
  assert.throws(() => decodeMessage(bytes), (e: unknown) => e instanceof DecodeError && reason.test(e.reason));
}

/** A hand-built encoding: the version, the header of `tag` from a to b, then `body`. */
function forge(tag: number, body: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  w.u8(CODEC_VERSION);
  w.u8(tag);
  w.uvarint(0);
  w.string("a");
  w.string("b");
  w.uvarint(0);
  body(w);
  return w.finish();
}

/** One heartbeat item written field by field (flags as given). */
function item(w: Writer, f: { flags: number; prevTerm?: number; commit?: number }): void {
  w.uvarint(1); // group
  w.uvarint(5); // term
  w.uvarint(9); // prevIndex
  w.u8(f.flags);
  if (f.prevTerm !== undefined) w.uvarint(f.prevTerm);
  if (f.commit !== undefined) w.uvarint(f.commit);
  w.svarint(3); // seq
}

const hb = (items: readonly HeartbeatItem[]): Heartbeats => ({
  type: "Heartbeats",
  group: 0,
  from: "node-a",
  to: "node-b",
  term: 0,
  items,
});

describe("coalesced heartbeats on the wire", () => {
  test("round trips keep every field, quiesce included, and the tags are recorded", () => {
    assert.equal(MESSAGE_TAGS.Heartbeats, 14);
    assert.equal(MESSAGE_TAGS.HeartbeatResponses, 15);
    const m = hb([
      { group: 1, term: 4, prevIndex: 100, prevTerm: 4, commit: 100, seq: 12 },
      { group: 300, term: 9, prevIndex: 7, prevTerm: 2, commit: 3, seq: -1, quiesce: true },
    ]);
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
    const r: HeartbeatResponses = {
      type: "HeartbeatResponses",
      group: 0,
      from: "node-b",
      to: "node-a",
      term: 0,
      items: [{ group: 1, term: 4, index: 100, seq: 12 }, { group: 2, term: 4, index: 0, seq: 0 }],
    };
    assert.deepEqual(decodeMessage(encodeMessage(r)), r);
    for (const type of ["Heartbeats", "HeartbeatResponses"] as const) {
      fc.assert(
        fc.property(messageArbs[type] as fc.Arbitrary<Message>, (x) => {
          const b = encodeMessage(x);
          assert.equal(b.length, encodedMessageSize(x));
          assert.deepEqual(decodeMessage(b), x);
        }),
        { numRuns: 500 },
      );
    }
  });

  test("compact: a steady-state heartbeat item costs a fraction of its own AppendEntries", () => {
    const items = Array.from({ length: 1024 }, (_, i): HeartbeatItem => ({
      group: i + 1,
      term: 3,
      prevIndex: 5_000 + i,
      prevTerm: 3,
      commit: 5_000 + i,
      seq: 40_000,
    }));
    const alone = items.reduce((n, x) => {
      const ae: AppendEntries = {
        type: "AppendEntries",
        from: "node-a",
        to: "node-b",
        entries: [],
        ...x,
      };
      return n + encodedMessageSize(ae);
    }, 0);
    const packed = encodedMessageSize(hb(items));
    // group (2) + term + prevIndex (2) + flags + seq (3): 9 bytes, against a header and 7 fields each.
    assert.ok(packed <= 1024 * 9 + 20, `${packed} bytes`);
    assert.ok(packed * 2 < alone, `${packed} bytes against ${alone}`);
  });

  test("an empty list, or one past MAX_COALESCED_ITEMS, is refused (and not encoded)", () => {
    rejects(forge(14, (w) => w.uvarint(0)), /coalesced message with 0 items/);
    rejects(forge(15, (w) => w.uvarint(0)), /coalesced message with 0 items/);
    const over = forge(15, (w) => {
      w.uvarint(MAX_COALESCED_ITEMS + 1);
      for (let i = 0; i <= MAX_COALESCED_ITEMS; i++) for (const v of [1, 1, 1, 1]) w.uvarint(v);
    });
    rejects(over, new RegExp(`coalesced message with ${MAX_COALESCED_ITEMS + 1} items`));
    assert.throws(() => encodeMessage(hb([])), RangeError);
    const full = Array.from({ length: MAX_COALESCED_ITEMS + 1 }, () => ({
      group: 1,
      term: 1,
      prevIndex: 1,
      prevTerm: 1,
      commit: 1,
      seq: 1,
    }));
    assert.throws(() => encodeMessage(hb(full)), RangeError);
  });

  test("a count the remaining bytes cannot hold fails before any item is built", () => {
    rejects(forge(14, (w) => w.uvarint(2 ** 40)), /count 1099511627776 exceeds what the remaining/);
    rejects(
      forge(15, (w) => {
        w.uvarint(3);
        w.raw(new Uint8Array(8));
      }),
      /count 3 exceeds what the remaining 8/,
    );
  });

  test("each item passes its AppendEntries' checks: prevTerm above the term is refused", () => {
    rejects(
      forge(14, (w) => {
        w.uvarint(1);
        item(w, { flags: 0b100, prevTerm: 6 });
      }),
      /prevTerm 6 above the message term 5/,
    );
  });

  test("non-canonical items (a field sent that its flag would imply) and unknown flag bits are refused", () => {
    rejects(
      forge(14, (w) => {
        w.uvarint(1);
        item(w, { flags: 0b100, prevTerm: 5 });
      }),
      /non-canonical heartbeat: prevTerm/,
    );
    rejects(
      forge(14, (w) => {
        w.uvarint(1);
        item(w, { flags: 0b010, commit: 9 });
      }),
      /non-canonical heartbeat: commit/,
    );
    rejects(
      forge(14, (w) => {
        w.uvarint(1);
        item(w, { flags: 0b1110 });
      }),
      /unknown flag bits 0x8/,
    );
    // The canonical forms decode.
    const ok = decodeMessage(forge(14, (w) => {
      w.uvarint(1);
      item(w, { flags: 0b001, prevTerm: 4, commit: 2 });
    }));
    assert.deepEqual(ok, {
      type: "Heartbeats",
      group: 0,
      from: "a",
      to: "b",
      term: 0,
      items: [{ group: 1, term: 5, prevIndex: 9, prevTerm: 4, commit: 2, seq: 3, quiesce: true }],
    });
  });

  test("every strict prefix, and random corruption, fail with a DecodeError only", () => {
    fc.assert(
      fc.property(fc.array(heartbeatItemArb, { minLength: 1, maxLength: 6 }), fc.nat(), fc.nat(255), (items, at, v) => {
        const b = encodeMessage(hb(items));
        for (let n = 0; n < b.length; n++) assert.throws(() => decodeMessage(b.subarray(0, n)), DecodeError);
        const bad = b.slice();
        bad[at % bad.length] = v;
        try {
          const m = decodeMessage(bad);
          assert.deepEqual(encodeMessage(m), bad, "accepted only in its canonical form");
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});
