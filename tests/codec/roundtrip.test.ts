import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { entriesArb, entryArb, hardStateArb, membershipArb, messageArbs, snapshotMetaArb } from "../arbitraries.ts";
import type { Entry, Message, MessageType } from "../../core/types.ts";
import {
  CODEC_VERSION,
  decodeEntries,
  decodeEntry,
  DecodeError,
  decodeHardState,
  decodeMembership,
  decodeMessage,
  decodeSnapshotMeta,
  encodedEntrySize,
  encodedMessageSize,
  encodeEntries,
  encodeEntry,
  encodeHardState,
  encodeMembership,
  encodeMessage,
  encodeSnapshotMeta,
  MESSAGE_TAGS,
  QUIESCE_TAG,
} from "../../core/codec/mod.ts";

const RUNS = { numRuns: 500 };

describe("round-trips", () => {
  test("entries of every kind, with encodedEntrySize exact", () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const b = encodeEntry(e);
        assert.equal(b[0], CODEC_VERSION);
        assert.equal(b.length, encodedEntrySize(e));
        assert.deepEqual(decodeEntry(b), e);
      }),
      { numRuns: 1000 },
    );
  });

  test("entry batches", () => {
    fc.assert(
      fc.property(entriesArb(20), (es) => {
        const b = encodeEntries(es);
        // One version byte for the batch, not one per entry.
        const count = es.length < 128 ? 1 : 2;
        assert.equal(b.length, 1 + count + es.reduce((n, e) => n + encodedEntrySize(e) - 1, 0));
        assert.deepEqual(decodeEntries(b), es);
      }),
      RUNS,
    );
  });

  test("hard state, with and without a vote", () => {
    fc.assert(fc.property(hardStateArb, (h) => assert.deepEqual(decodeHardState(encodeHardState(h)), h)), RUNS);
    // An empty node id is a vote, distinct from no vote.
    const empty = { term: 1, vote: "", commit: 0 };
    assert.deepEqual(decodeHardState(encodeHardState(empty)), empty);
    const none = decodeHardState(encodeHardState({ term: 1, vote: undefined, commit: 0 }));
    assert.ok("vote" in none && none.vote === undefined);
  });

  test("membership, joint and not", () => {
    fc.assert(
      fc.property(membershipArb, (m) => {
        const back = decodeMembership(encodeMembership(m));
        assert.deepEqual(back, m);
        assert.ok("outgoing" in back);
      }),
      RUNS,
    );
    // An empty outgoing set stays distinct from "not joint".
    const joint = { voters: ["a"], learners: [], outgoing: [] };
    assert.deepEqual(decodeMembership(encodeMembership(joint)), joint);
  });

  test("snapshot metadata", () => {
    fc.assert(
      fc.property(snapshotMetaArb, (m) => assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(m)), m)),
      RUNS,
    );
  });

  for (const type of Object.keys(messageArbs) as MessageType[]) {
    test(`message ${type}, with encodedMessageSize exact`, () => {
      fc.assert(
        fc.property(messageArbs[type] as fc.Arbitrary<Message>, (m) => {
          const b = encodeMessage(m);
          assert.equal(b[0], CODEC_VERSION);
          // A quiescing AppendEntries has a tag of its own, so that every other append keeps its bytes.
          const quiescing = m.type === "AppendEntries" && m.quiesce === true;
          assert.equal(b[1], quiescing ? QUIESCE_TAG : MESSAGE_TAGS[type]);
          assert.equal(b.length, encodedMessageSize(m));
          // One exact-size allocation: the result is its whole buffer, never a view of a grown one.
          assert.equal(b.buffer.byteLength, b.length);
          assert.deepEqual(decodeMessage(b), m);
        }),
        RUNS,
      );
    });
  }

  test("decoded payloads view the encoded buffer (zero-copy)", () => {
    const data = new Uint8Array([9, 8, 7]);
    const m: Message = {
      type: "AppendEntries",
      group: 0,
      from: "a",
      to: "b",
      term: 2,
      prevIndex: 0,
      prevTerm: 0,
      entries: [{ term: 2, index: 1, kind: "command", data, config: undefined }],
      commit: 0,
      seq: 1,
    };
    const b = encodeMessage(m);
    const back = decodeMessage(b) as typeof m;
    assert.equal(back.entries[0].data.buffer, b.buffer);
    assert.deepEqual(back.entries[0].data, data);
  });

  test("a compact layout: a heartbeat between short ids is a handful of bytes", () => {
    const heartbeat: Message = {
      type: "AppendEntries",
      group: 0,
      from: "n1",
      to: "n2",
      term: 5,
      prevIndex: 100,
      prevTerm: 5,
      entries: [],
      commit: 100,
      seq: 7,
    };
    // version, tag, group, 2×(len+2), term, prevIndex, prevTerm, commit, seq, count
    assert.equal(encodeMessage(heartbeat).length, 15);
  });
});

describe("encoders refuse what the format cannot hold", () => {
  const base: Entry = { term: 1, index: 1, kind: "command", data: new Uint8Array(0), config: undefined };

  test("entry kind and config must agree", () => {
    assert.throws(() => encodeEntry({ ...base, kind: "config" }), RangeError);
    assert.throws(
      () => encodeEntry({ ...base, config: { voters: [], learners: [], outgoing: undefined } }),
      RangeError,
    );
    assert.throws(() => encodeEntry({ ...base, kind: "bogus" as Entry["kind"] }), RangeError);
  });

  test("an InstallSnapshot checksum is a 32-bit unsigned integer, both ways", () => {
    const chunk: Message = {
      type: "InstallSnapshot",
      group: 0,
      from: "a",
      to: "b",
      term: 1,
      meta: { index: 3, term: 1, membership: { voters: ["a"], learners: [], outgoing: undefined } },
      offset: 0,
      data: new Uint8Array([1, 2]),
      done: true,
      checksum: 0xffffffff,
    };
    assert.deepEqual(decodeMessage(encodeMessage(chunk)), chunk);
    assert.throws(() => encodeMessage({ ...chunk, checksum: 2 ** 32 }), RangeError);
    assert.throws(() => encodeMessage({ ...chunk, checksum: -1 }), RangeError);
    // 2^32 on the wire (as a forged peer would send it) is a DecodeError, not a value.
    const b = encodeMessage(chunk);
    const at = b.indexOf(0xff); // the checksum varint: ff ff ff ff 0f
    const forged = new Uint8Array([...b.subarray(0, at), 0x80, 0x80, 0x80, 0x80, 0x10, ...b.subarray(at + 5)]);
    assert.throws(() => decodeMessage(forged), (e: unknown) => e instanceof DecodeError && /32 bits/.test(e.message));
  });

  test("negative terms and unknown message types", () => {
    assert.throws(() => encodeEntry({ ...base, term: -1 }), RangeError);
    assert.throws(
      () => encodeMessage({ type: "Bogus", group: 0, from: "a", to: "b", term: 1 } as unknown as Message),
      RangeError,
    );
  });
});
