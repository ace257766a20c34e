// Decode-time bounds: terms, indices and entry runs a wire message may carry,
// so that nothing decode accepts can make the core or the encoder throw.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CODEC_VERSION,
  DecodeError,
  decodeHardState,
  decodeMessage,
  decodeSnapshotMeta,
  encodeHardState,
  encodeMessage,
  encodeSnapshotMeta,
  MAX_WIRE_INDEX,
  MAX_WIRE_TERM,
  writeMessage,
  Writer,
} from "../../core/codec/mod.ts";
import { emptyLog, firstIndexOfTerm, lastIndexOfTerm, logFromEntries } from "../../core/log.ts";
import type { Message, RaftEffect } from "../../core/types.ts";
import { step } from "../../core/step.ts";
import { messageArb } from "../arbitraries.ts";
import { appendEntries, entry, node, persistedAll, receive, run, sent, timeout } from "../core_helpers.ts";

/** Encode without the wire checks (the encoder takes any safe integer): what a forger sends. */
function forge(m: Message): Uint8Array {
  const w = new Writer();
  w.u8(CODEC_VERSION);
  writeMessage(w, m);
  return w.finish();
}

function refused(m: Message, reason: RegExp): void {
  assert.throws(() => decodeMessage(forge(m)), (e: unknown) => e instanceof DecodeError && reason.test(e.reason));
}

const h = { group: 0, from: "a", to: "b" } as const;
const meta = { index: 5, term: 2, membership: { voters: ["a", "b"], learners: [], outgoing: undefined } };

/** Coalesced heartbeats whose second item has the given fields (the first is a plain one). */
function heartbeats(x: { term: number; prevIndex: number; prevTerm: number; commit: number }): Message {
  const first = { group: 1, term: 2, prevIndex: 4, prevTerm: 2, commit: 4, seq: 1 };
  return { ...h, term: 0, type: "Heartbeats", items: [first, { group: 2, seq: 1, ...x }] };
}

/** Coalesced answers whose second item has the given fields. */
function heartbeatResponses(x: { term: number; index: number }): Message {
  return {
    ...h,
    term: 0,
    type: "HeartbeatResponses",
    items: [{ group: 1, term: 2, index: 4, seq: 1 }, { group: 2, seq: 1, ...x }],
  };
}

/** One message per bounded field, built with `v` in that field. */
const fields: readonly [string, (v: number) => Message][] = [
  ["header term", (v) => ({ ...h, term: v, type: "TimeoutNow", candidate: "b" })],
  ["RequestVote lastIndex", (v) => ({
    ...h,
    term: 3,
    type: "RequestVote",
    preVote: false,
    lastIndex: v,
    lastTerm: 1,
    transfer: false,
  })],
  ["RequestVote lastTerm", (v) => ({
    ...h,
    term: MAX_WIRE_TERM,
    type: "RequestVote",
    preVote: false,
    lastIndex: 1,
    lastTerm: v,
    transfer: false,
  })],
  ["AppendEntries prevIndex", (v) => appendEntries({ from: "a", to: "b", term: 3, prevIndex: v, prevTerm: 1 })],
  [
    "AppendEntries prevTerm",
    (v) => appendEntries({ from: "a", to: "b", term: MAX_WIRE_TERM, prevIndex: 1, prevTerm: v }),
  ],
  ["AppendEntries commit", (v) => appendEntries({ from: "a", to: "b", term: 3, prevIndex: 1, prevTerm: 1, commit: v })],
  ["AppendEntriesResponse index", (v) => ({
    ...h,
    term: 3,
    type: "AppendEntriesResponse",
    success: true,
    index: v,
    conflictTerm: 0,
    conflictIndex: 0,
    seq: 0,
  })],
  ["AppendEntriesResponse conflictTerm", (v) => ({
    ...h,
    term: 3,
    type: "AppendEntriesResponse",
    success: false,
    index: 1,
    conflictTerm: v,
    conflictIndex: 0,
    seq: 0,
  })],
  ["AppendEntriesResponse conflictIndex", (v) => ({
    ...h,
    term: 3,
    type: "AppendEntriesResponse",
    success: false,
    index: 1,
    conflictTerm: 0,
    conflictIndex: v,
    seq: 0,
  })],
  ["InstallSnapshot meta index", (v) => ({
    ...h,
    term: 3,
    type: "InstallSnapshot",
    meta: { ...meta, index: v },
    offset: 0,
    data: new Uint8Array(0),
    done: true,
  })],
  ["InstallSnapshot meta term", (v) => ({
    ...h,
    term: 3,
    type: "InstallSnapshot",
    meta: { ...meta, term: v },
    offset: 0,
    data: new Uint8Array(0),
    done: true,
  })],
  ["InstallSnapshot offset", (v) => ({
    ...h,
    term: 3,
    type: "InstallSnapshot",
    meta,
    offset: v,
    data: new Uint8Array(0),
    done: true,
  })],
  ["InstallSnapshotResponse index", (v) => ({
    ...h,
    term: 3,
    type: "InstallSnapshotResponse",
    index: v,
    offset: 0,
    done: true,
    success: true,
  })],
  ["InstallSnapshotResponse offset", (v) => ({
    ...h,
    term: 3,
    type: "InstallSnapshotResponse",
    index: 1,
    offset: v,
    done: true,
    success: true,
  })],
  ["Heartbeats item term", (v) => heartbeats({ term: v, prevIndex: 1, prevTerm: 1, commit: 0 })],
  ["Heartbeats item prevIndex", (v) => heartbeats({ term: 3, prevIndex: v, prevTerm: 1, commit: 0 })],
  ["Heartbeats item prevTerm", (v) => heartbeats({ term: MAX_WIRE_TERM, prevIndex: 1, prevTerm: v, commit: 1 })],
  ["Heartbeats item commit", (v) => heartbeats({ term: 3, prevIndex: 1, prevTerm: 1, commit: v })],
  ["HeartbeatResponses item term", (v) => heartbeatResponses({ term: v, index: 1 })],
  ["HeartbeatResponses item index", (v) => heartbeatResponses({ term: 3, index: v })],
  ["ProposeResponse index", (v) => ({ ...h, term: 3, type: "ProposeResponse", results: [{ requestId: 1, index: v }] })],
  ["ReadIndexResponse index", (v) => ({ ...h, term: 3, type: "ReadIndexResponse", requestId: 1, index: v })],
  ["entry index", (v) =>
    appendEntries({
      from: "a",
      to: "b",
      term: 3,
      prevIndex: Math.max(0, v - 1),
      prevTerm: 1,
      entries: [entry(v, 2)],
    })],
  [
    "entry term",
    (v) =>
      appendEntries({ from: "a", to: "b", term: MAX_WIRE_TERM, prevIndex: 0, prevTerm: 0, entries: [entry(1, v)] }),
  ],
];

describe("decode-time bounds on terms and indices", () => {
  test("the issue's RequestVote with term 2^53 − 1 and transfer: true is refused with a DecodeError", () => {
    refused({
      ...h,
      term: Number.MAX_SAFE_INTEGER,
      type: "RequestVote",
      preVote: false,
      lastIndex: 0,
      lastTerm: 0,
      transfer: true,
    }, /^term \d+ exceeds the limit/);
  });

  test("the wire bounds leave the core room to count: 2^50 − 1, an eighth of 2^53", () => {
    assert.equal(MAX_WIRE_TERM, 2 ** 50 - 1);
    assert.equal(MAX_WIRE_INDEX, 2 ** 50 - 1);
    assert.ok(MAX_WIRE_TERM * 8 < Number.MAX_SAFE_INTEGER + 8);
  });

  for (const [name, build] of fields) {
    test(`${name}: accepted at the bound, refused one above it`, () => {
      const bound = /term/i.test(name.split(" ").pop()!) ? MAX_WIRE_TERM : MAX_WIRE_INDEX;
      const ok = build(bound);
      assert.deepEqual(decodeMessage(encodeMessage(ok)), ok);
      refused(build(bound + 1), /exceeds the limit/);
      refused(build(Number.MAX_SAFE_INTEGER), /exceeds the limit/);
    });
  }

  test("a caller may tighten the bounds with DecodeLimits", () => {
    const m = build("header term", 1000);
    assert.throws(() => decodeMessage(encodeMessage(m), { maxTerm: 999 }), DecodeError);
    assert.deepEqual(decodeMessage(encodeMessage(m), { maxTerm: 1000 }), m);
  });

  test("the disk decoders still read what a node past the bound wrote (hard state, snapshot meta)", () => {
    const hs = { term: MAX_WIRE_TERM + 7, vote: "a", commit: MAX_WIRE_INDEX + 9 };
    assert.deepEqual(decodeHardState(encodeHardState(hs)), hs);
    const m = { ...meta, index: Number.MAX_SAFE_INTEGER, term: MAX_WIRE_TERM + 1 };
    assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(m)), m);
  });
});

function build(name: string, v: number): Message {
  return fields.find(([n]) => n === name)![1](v);
}

describe("AppendEntries must carry a run that continues prevIndex/prevTerm", () => {
  const base = { from: "a", to: "b", term: 5, prevIndex: 10, prevTerm: 3 };
  test("a contiguous run with non-decreasing terms within [prevTerm, term] decodes", () => {
    const m = appendEntries({ ...base, entries: [entry(11, 3), entry(12, 4), entry(13, 5)] });
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  });
  test("a gap, a repeat or a wrong first index is refused", () => {
    refused(appendEntries({ ...base, entries: [entry(11, 3), entry(13, 3)] }), /expected 12/);
    refused(appendEntries({ ...base, entries: [entry(11, 3), entry(11, 3)] }), /expected 12/);
    refused(appendEntries({ ...base, entries: [entry(12, 3)] }), /expected 11/);
  });
  test("terms that fall, start below prevTerm or pass the message term are refused", () => {
    refused(appendEntries({ ...base, entries: [entry(11, 4), entry(12, 3)] }), /outside/);
    refused(appendEntries({ ...base, entries: [entry(11, 2)] }), /outside/);
    refused(appendEntries({ ...base, entries: [entry(11, 6)] }), /outside/);
    refused(appendEntries({ ...base, prevTerm: 6 }), /prevTerm 6 above the message term 5/);
  });
  test("before this check, such a message threw inside the core's log (it would have stopped the node)", () => {
    const follower = node("b", { log: [1, 1, 1] });
    const bad = appendEntries({ from: "a", to: "b", term: 2, prevIndex: 3, prevTerm: 1, entries: [entry(9, 2)] });
    assert.throws(() => step(follower, receive(bad)), RangeError);
  });
});

/** Every message in `effects` encodes, and decodes under the wire bounds unless the core counted past them. */
function assertEncodable(effects: readonly RaftEffect[]): void {
  for (const e of effects) {
    if (e.type === "Send") encodeMessage(e.message);
    if (e.type === "Persist" && e.hardState !== undefined) encodeHardState(e.hardState);
  }
}

describe("what the core makes of accepted input always encodes", () => {
  test("a vote request at the term bound with transfer: then the node campaigns and leads at term bound + 1", () => {
    const follower = node("b", { log: [1] });
    const vote = {
      ...h,
      from: "c",
      term: MAX_WIRE_TERM,
      type: "RequestVote",
      preVote: false,
      lastIndex: 1,
      lastTerm: 1,
      transfer: true,
    } as const;
    const r = run(follower, receive(decodeMessage(encodeMessage(vote))), timeout("election"));
    assertEncodable(r.effects);
    const campaign = sent(r.effects, "RequestVote");
    assert.ok(campaign.length > 0, "it campaigns");
    assert.ok(campaign.every((m) => m.term === MAX_WIRE_TERM + 1));
    // Past the bound: its own messages encode, and peers refuse them with a DecodeError (no exception escapes).
    assert.throws(() => decodeMessage(encodeMessage(campaign[0]!)), DecodeError);
  });

  test("property: no wire message that decodes makes step throw, and everything step emits encodes", () => {
    const states = [
      node("b", { log: [1, 1, 2], term: 2, commit: 1 }),
      run(node("a", { log: [1] }), timeout("election")).state,
    ];
    // A leader: a single voter elects itself.
    const solo = node("a", { voters: ["a"], learners: ["b"], log: [1] });
    const leading = run(solo, timeout("election"));
    states.push(run(leading.state, persistedAll(leading.state)).state);
    fc.assert(
      fc.property(messageArb, fc.constantFrom(...states.keys()), (raw, which) => {
        let m: Message;
        try {
          m = decodeMessage(encodeMessage(raw));
        } catch (e) {
          if (e instanceof DecodeError) return; // refused at the door: fine
          throw e;
        }
        const s = states[which]!;
        const to = s.config.id;
        const msg = { ...m, to, from: to === "a" ? "b" : "a" } as Message;
        assertEncodable(step(s, receive(msg)).effects);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("log searches past 32 bits", () => {
  test("firstIndexOfTerm and lastIndexOfTerm find terms at indices above 2^32", () => {
    const offset = 2 ** 40;
    const log = logFromEntries(offset, 1, [entry(offset + 1, 2), entry(offset + 2, 2), entry(offset + 3, 3)]);
    assert.equal(firstIndexOfTerm(log, 2), offset + 1);
    assert.equal(lastIndexOfTerm(log, 2), offset + 2);
    assert.equal(firstIndexOfTerm(log, 3), offset + 3);
    assert.equal(firstIndexOfTerm(emptyLog(offset), 3), undefined);
  });
});
