import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { entriesArb, entryArb, hardStateArb, membershipArb, messageArb, snapshotMetaArb } from "../arbitraries.ts";
import {
  CODEC_VERSION,
  decodeEntries,
  decodeEntry,
  DecodeError,
  decodeHardState,
  decodeMembership,
  decodeMessage,
  decodeSnapshotMeta,
  encodeEntries,
  encodeEntry,
  encodeHardState,
  encodeMembership,
  encodeMessage,
  encodeSnapshotMeta,
  MESSAGE_TAGS,
  Writer,
} from "../../core/codec/mod.ts";

interface Codec {
  readonly name: string;
  readonly valid: fc.Arbitrary<Uint8Array>;
  /** Decodes, then re-encodes: canonical encodings make this the identity on every accepted input. */
  readonly reencode: (b: Uint8Array) => Uint8Array;
}

const codecs: readonly Codec[] = [
  { name: "entry", valid: entryArb.map(encodeEntry), reencode: (b) => encodeEntry(decodeEntry(b)) },
  { name: "entries", valid: entriesArb().map(encodeEntries), reencode: (b) => encodeEntries(decodeEntries(b)) },
  {
    name: "hard state",
    valid: hardStateArb.map(encodeHardState),
    reencode: (b) => encodeHardState(decodeHardState(b)),
  },
  {
    name: "membership",
    valid: membershipArb.map(encodeMembership),
    reencode: (b) => encodeMembership(decodeMembership(b)),
  },
  {
    name: "snapshot meta",
    valid: snapshotMetaArb.map(encodeSnapshotMeta),
    reencode: (b) => encodeSnapshotMeta(decodeSnapshotMeta(b)),
  },
  { name: "message", valid: messageArb.map(encodeMessage), reencode: (b) => encodeMessage(decodeMessage(b)) },
];

/** Either decodes to a value whose encoding is `b` again, or throws DecodeError; anything else fails the test. */
function decodesOrRejects(codec: Codec, b: Uint8Array): void {
  let again: Uint8Array;
  try {
    again = codec.reencode(b);
  } catch (e) {
    if (e instanceof DecodeError) return;
    throw new Error(`${codec.name}: threw ${String(e)} instead of DecodeError`);
  }
  assert.deepEqual(again, b, `${codec.name}: accepted a non-canonical encoding`);
}

/** Random bytes, usually behind a valid version byte (and often a valid tag) so decoding gets past the first check. */
const noiseArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.constantFrom("raw", "versioned", "tagged"),
  fc.integer({ min: 1, max: 15 }),
  fc.uint8Array({ maxLength: 80 }),
).map(([mode, tag, rest]) =>
  mode === "raw" ? rest : new Uint8Array([CODEC_VERSION, ...(mode === "tagged" ? [tag] : []), ...rest])
);

type Mutation =
  | { readonly op: "flip"; readonly at: number; readonly bit: number }
  | { readonly op: "set" | "insert"; readonly at: number; readonly value: number }
  | { readonly op: "delete" | "truncate"; readonly at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constantFrom("set" as const, "insert" as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constantFrom("delete" as const, "truncate" as const), at: fc.nat() }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  const b = Array.from(input);
  for (const m of mutations) {
    if (m.op === "insert") {
      b.splice(m.at % (b.length + 1), 0, m.value);
      continue;
    }
    if (b.length === 0) continue;
    const at = m.at % b.length;
    if (m.op === "flip") b[at] ^= 1 << m.bit;
    else if (m.op === "set") b[at] = m.value;
    else if (m.op === "delete") b.splice(at, 1);
    else b.length = at;
  }
  return new Uint8Array(b);
}

describe("decoders on hostile input throw only DecodeError", () => {
  for (const codec of codecs) {
    test(`${codec.name}: random bytes`, () => {
      fc.assert(fc.property(noiseArb, (b) => decodesOrRejects(codec, b)), { numRuns: 3000 });
    });

    test(`${codec.name}: mutated valid encodings`, () => {
      fc.assert(
        fc.property(codec.valid, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (valid, ms) => {
          decodesOrRejects(codec, mutate(valid, ms));
        }),
        { numRuns: 3000 },
      );
    });

    test(`${codec.name}: every strict prefix of a valid encoding is rejected`, () => {
      fc.assert(
        fc.property(codec.valid, (valid) => {
          for (let n = 0; n < valid.length; n++) {
            assert.throws(() => codec.reencode(valid.subarray(0, n)), DecodeError);
          }
        }),
        { numRuns: 200 },
      );
    });
  }
});

function rejects(decode: () => unknown, reason: RegExp): void {
  assert.throws(decode, (e: unknown) => e instanceof DecodeError && reason.test(e.reason));
}

/** An encoding built by hand, to forge fields no encoder would write. */
function forge(f: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  w.u8(CODEC_VERSION);
  f(w);
  return w.finish();
}

function header(w: Writer, tag: number): void {
  w.u8(tag);
  w.uvarint(0);
  w.string("a");
  w.string("b");
  w.uvarint(1);
}

describe("specific malformed inputs", () => {
  test("huge declared lengths and counts fail fast, before allocating", () => {
    // An InstallSnapshot chunk claiming 4 GiB and one claiming 2^53 - 1 bytes.
    for (const len of [2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const b = forge((w) => {
        header(w, MESSAGE_TAGS.InstallSnapshot);
        w.uvarint(1); // meta.index
        w.uvarint(1); // meta.term
        w.raw(new Uint8Array([0, 0, 0])); // membership: not joint, no voters, no learners
        w.uvarint(0); // offset
        w.u8(0); // flags
        w.uvarint(len);
        w.raw(new Uint8Array(8));
      });
      rejects(() => decodeMessage(b), /byte field length \d+ exceeds the 8 remaining/);
    }
    // An AppendEntries claiming 2^40 entries.
    const many = forge((w) => {
      header(w, MESSAGE_TAGS.AppendEntries);
      for (let i = 0; i < 4; i++) w.uvarint(0); // prevIndex, prevTerm, commit, seq
      w.uvarint(2 ** 40);
    });
    rejects(() => decodeMessage(many), /count 1099511627776 exceeds/);
    rejects(() => decodeEntries(forge((w) => w.uvarint(2 ** 52))), /count \d+ exceeds/);
  });

  test("configurable limits reject fields that would fit the input", () => {
    const e = encodeEntry({ term: 1, index: 1, kind: "command", data: new Uint8Array(100), config: undefined });
    assert.equal(decodeEntry(e, { maxBytes: 100 }).data.length, 100);
    rejects(() => decodeEntry(e, { maxBytes: 99 }), /exceeds the limit 99/);
    const hs = encodeHardState({ term: 1, vote: "a-long-node-id", commit: 0 });
    rejects(() => decodeHardState(hs, { maxString: 4 }), /string length 14 exceeds the limit 4/);
    const es = encodeEntries([1, 2, 3].map((index) => ({
      term: 1,
      index,
      kind: "noop" as const,
      data: new Uint8Array(0),
      config: undefined,
    })));
    rejects(() => decodeEntries(es, { maxItems: 2 }), /count 3 exceeds the limit 2/);
  });

  test("entry kind and config must agree", () => {
    // header 0x01: config kind without the has-config bit.
    rejects(() => decodeEntry(forge((w) => w.raw(new Uint8Array([0x01, 1, 1, 0])))), /config entry without a config/);
    // header 0x04: a command with the has-config bit.
    rejects(
      () => decodeEntry(forge((w) => w.raw(new Uint8Array([0x04, 1, 1, 0, 0, 0, 0])))),
      /command entry with a config/,
    );
    rejects(() => decodeEntry(forge((w) => w.raw(new Uint8Array([0x03, 1, 1, 0])))), /unknown entry kind/);
    rejects(() => decodeEntry(forge((w) => w.raw(new Uint8Array([0x08, 1, 1, 0])))), /unknown flag bits/);
  });

  test("unknown version, unknown tag, trailing bytes", () => {
    const ok = encodeMessage({ type: "TimeoutNow", group: 0, from: "a", to: "b", term: 1, candidate: "b" });
    rejects(() => decodeMessage(new Uint8Array([CODEC_VERSION + 1, ...ok.subarray(1)])), /unsupported codec version/);
    for (const tag of [0, 16, 255]) {
      rejects(() => decodeMessage(forge((w) => header(w, tag))), new RegExp(`unknown message tag ${tag}`));
    }
    rejects(() => decodeMessage(new Uint8Array([...ok, 0])), /1 trailing byte/);
    rejects(() => decodeMessage(new Uint8Array(0)), /truncated/);
  });

  test("a boolean flag byte with unknown bits is rejected", () => {
    const b = forge((w) => {
      header(w, MESSAGE_TAGS.RequestVoteResponse);
      w.u8(0b111);
    });
    rejects(() => decodeMessage(b), /unknown flag bits 0x4/);
  });
});
