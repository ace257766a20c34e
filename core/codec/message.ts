/**
 * Binary encoding of the wire protocol's {@link Message}s.
 *
 * Every message: `version` u8 (= {@link CODEC_VERSION}), `tag` u8, then the
 * header `group` uv, `from` str, `to` str, `term` uv, then the body below.
 * `uv` is an unsigned LEB128 varint, `sv` a zigzag varint (for request ids
 * and sequence numbers, which the interpreter chooses), `str` a uvarint
 * length and UTF-8, `bytes` a uvarint length and raw bytes, `flags` a byte
 * whose unnamed bits must be zero. Tag 0 is reserved.
 *
 * | tag | type                    | body                                                               |
 * |-----|-------------------------|--------------------------------------------------------------------|
 * | 1   | RequestVote             | flags (0 preVote, 1 transfer), lastIndex uv, lastTerm uv           |
 * | 2   | RequestVoteResponse     | flags (0 preVote, 1 granted)                                       |
 * | 3   | AppendEntries           | prevIndex uv, prevTerm uv, commit uv, seq sv, count uv, entry…     |
 * | 4   | AppendEntriesResponse   | flags (0 success), index uv, conflictTerm uv, conflictIndex uv, seq sv |
 * | 5   | InstallSnapshot         | meta (index uv, term uv, membership), offset uv, flags (0 done, 1 checksum), [checksum uv], data bytes |
 * | 6   | InstallSnapshotResponse | index uv, offset uv, flags (0 done, 1 success)                     |
 * | 7   | TimeoutNow              | candidate str                                                      |
 * | 8   | Propose                 | count uv, (requestId sv, data bytes)…                              |
 * | 9   | ProposeResponse         | count uv, (requestId sv, index uv)…                                |
 * | 10  | ReadIndex               | requestId sv                                                       |
 * | 11  | ReadIndexResponse       | requestId sv, index uv                                             |
 * | 12  | AppendEntries, quiesce  | as tag 3 (an AppendEntries with `quiesce` set)                     |
 * | 13  | HostHeartbeat           | (empty)                                                            |
 * | 14  | Heartbeats              | count uv, (group uv, term uv, prevIndex uv, flags (0 quiesce, 1 prevTerm = term, 2 commit = prevIndex), [prevTerm uv], [commit uv], seq sv)… |
 * | 15  | HeartbeatResponses      | count uv, (group uv, term uv, index uv, seq sv)…                   |
 *
 * Tags 14 and 15 coalesce many groups' heartbeats between two hosts
 * (`effects/host/`): a list of 1 to {@link MAX_COALESCED_ITEMS} items, each
 * carrying what the group's own message would. A heartbeat's `prevTerm` is
 * usually the term and its `commit` usually `prevIndex`: a flag says so and
 * the field is left out — and must be (a field equal to what its flag would
 * imply is refused as non-canonical, so every accepted input re-encodes to
 * itself). Each item passes the checks its own AppendEntries would
 * (`prevTerm` not above `term`; bounded terms and indices).
 *
 * Entries use the layout of `entry.ts`; membership that of `membership.ts`.
 * Decoded byte fields (entry data, snapshot chunks, proposals) view the
 * input buffer instead of copying it.
 *
 * @module
 */

import type {
  HeartbeatItem,
  HeartbeatResponseItem,
  HeartbeatResponses,
  Heartbeats,
  InstallSnapshot,
  Message,
  Proposal,
} from "../types.ts";
import { checkEntryRun, entryListSize, readEntryList, writeEntryList } from "./entry.ts";
import { type DecodeLimits, Reader, WIRE_LIMITS } from "./reader.ts";
import { readSnapshotMeta, snapshotMetaSize, writeSnapshotMeta } from "./state.ts";
import { CODEC_VERSION, readVersion } from "./version.ts";
import { bytesFieldSize, stringFieldSize, svarintSize, uvarintSize, Writer } from "./writer.ts";

/** The one-byte tag of each message type on the wire. Never renumber: add new tags instead. */
export const MESSAGE_TAGS = {
  RequestVote: 1,
  RequestVoteResponse: 2,
  AppendEntries: 3,
  AppendEntriesResponse: 4,
  InstallSnapshot: 5,
  InstallSnapshotResponse: 6,
  TimeoutNow: 7,
  Propose: 8,
  ProposeResponse: 9,
  ReadIndex: 10,
  ReadIndexResponse: 11,
  HostHeartbeat: 13,
  Heartbeats: 14,
  HeartbeatResponses: 15,
} as const satisfies Record<Message["type"], number>;

/** The tag of an AppendEntries with `quiesce` set (a tag of its own, so other appends keep their bytes). */
export const QUIESCE_TAG = 12;

/**
 * Most items one coalesced message ({@link Heartbeats}, {@link HeartbeatResponses})
 * may hold: a host splits longer lists, a decoder refuses them, so one frame
 * never makes a receiver build more than this many messages.
 */
export const MAX_COALESCED_ITEMS = 4096;

const B0 = 1;
const B1 = 2;
const B2 = 4;
const bit = (set: boolean, mask: number): number => (set ? mask : 0);

function bodySize(m: Message): number {
  switch (m.type) {
    case "RequestVote":
      return 1 + uvarintSize(m.lastIndex) + uvarintSize(m.lastTerm);
    case "RequestVoteResponse":
      return 1;
    case "AppendEntries":
      return uvarintSize(m.prevIndex) + uvarintSize(m.prevTerm) +
        uvarintSize(m.commit) +
        svarintSize(m.seq) + entryListSize(m.entries);
    case "AppendEntriesResponse":
      return 1 + uvarintSize(m.index) + uvarintSize(m.conflictTerm) +
        uvarintSize(m.conflictIndex) + svarintSize(m.seq);
    case "InstallSnapshot":
      return snapshotMetaSize(m.meta) + uvarintSize(m.offset) + 1 +
        (m.checksum === undefined ? 0 : uvarintSize(m.checksum)) + bytesFieldSize(m.data.length);
    case "InstallSnapshotResponse":
      return uvarintSize(m.index) + uvarintSize(m.offset) + 1;
    case "TimeoutNow":
      return stringFieldSize(m.candidate);
    case "Propose": {
      let size = uvarintSize(m.proposals.length);
      for (const p of m.proposals) {
        size += svarintSize(p.requestId) + bytesFieldSize(p.data.length);
      }
      return size;
    }
    case "ProposeResponse": {
      let size = uvarintSize(m.results.length);
      for (const x of m.results) {
        size += svarintSize(x.requestId) + uvarintSize(x.index);
      }
      return size;
    }
    case "ReadIndex":
      return svarintSize(m.requestId);
    case "ReadIndexResponse":
      return svarintSize(m.requestId) + uvarintSize(m.index);
    case "HostHeartbeat":
      return 0;
    case "Heartbeats": {
      let size = uvarintSize(m.items.length);
      for (const x of m.items) {
        size += uvarintSize(x.group) + uvarintSize(x.term) + uvarintSize(x.prevIndex) + 1 + svarintSize(x.seq);
        if (x.prevTerm !== x.term) size += uvarintSize(x.prevTerm);
        if (x.commit !== x.prevIndex) size += uvarintSize(x.commit);
      }
      return size;
    }
    case "HeartbeatResponses": {
      let size = uvarintSize(m.items.length);
      for (const x of m.items) {
        size += uvarintSize(x.group) + uvarintSize(x.term) + uvarintSize(x.index) + svarintSize(x.seq);
      }
      return size;
    }
    default:
      return unknownType(m);
  }
}

function unknownType(m: never): never {
  throw new RangeError(
    `cannot encode message type ${String((m as { type: unknown }).type)}`,
  );
}

/**
 * Bytes {@link writeMessage} writes for `m` (tag, header and body; no
 * version byte).
 */
export function messageBodySize(m: Message): number {
  return 1 + uvarintSize(m.group) + stringFieldSize(m.from) +
    stringFieldSize(m.to) +
    uvarintSize(m.term) + bodySize(m);
}

/** Exact length of `encodeMessage(m)`, for transport byte limits and buffer sizing. */
export function encodedMessageSize(m: Message): number {
  return 1 + messageBodySize(m);
}

/** Appends `m` (tag, header, body; no version byte) to `w`. Throws `RangeError` on values outside the format. */
export function writeMessage(w: Writer, m: Message): void {
  const tag: number | undefined = MESSAGE_TAGS[m.type];
  if (tag === undefined) unknownType(m as never);
  w.u8(m.type === "AppendEntries" && m.quiesce === true ? QUIESCE_TAG : tag);
  w.uvarint(m.group);
  w.string(m.from);
  w.string(m.to);
  w.uvarint(m.term);
  switch (m.type) {
    case "RequestVote":
      w.u8(bit(m.preVote, B0) | bit(m.transfer, B1));
      w.uvarint(m.lastIndex);
      w.uvarint(m.lastTerm);
      return;
    case "RequestVoteResponse":
      w.u8(bit(m.preVote, B0) | bit(m.granted, B1));
      return;
    case "AppendEntries":
      w.uvarint(m.prevIndex);
      w.uvarint(m.prevTerm);
      w.uvarint(m.commit);
      w.svarint(m.seq);
      writeEntryList(w, m.entries);
      return;
    case "AppendEntriesResponse":
      w.u8(bit(m.success, B0));
      w.uvarint(m.index);
      w.uvarint(m.conflictTerm);
      w.uvarint(m.conflictIndex);
      w.svarint(m.seq);
      return;
    case "InstallSnapshot":
      writeSnapshotMeta(w, m.meta);
      w.uvarint(m.offset);
      w.u8(bit(m.done, B0) | bit(m.checksum !== undefined, B1));
      if (m.checksum !== undefined) {
        if (!Number.isInteger(m.checksum) || m.checksum < 0 || m.checksum > 0xffffffff) {
          throw new RangeError(`snapshot checksum ${m.checksum} is not a 32-bit unsigned integer`);
        }
        w.uvarint(m.checksum);
      }
      w.bytes(m.data);
      return;
    case "InstallSnapshotResponse":
      w.uvarint(m.index);
      w.uvarint(m.offset);
      w.u8(bit(m.done, B0) | bit(m.success, B1));
      return;
    case "TimeoutNow":
      w.string(m.candidate);
      return;
    case "Propose":
      w.uvarint(m.proposals.length);
      for (const p of m.proposals) {
        w.svarint(p.requestId);
        w.bytes(p.data);
      }
      return;
    case "ProposeResponse":
      w.uvarint(m.results.length);
      for (const x of m.results) {
        w.svarint(x.requestId);
        w.uvarint(x.index);
      }
      return;
    case "ReadIndex":
      w.svarint(m.requestId);
      return;
    case "ReadIndexResponse":
      w.svarint(m.requestId);
      w.uvarint(m.index);
      return;
    case "HostHeartbeat":
      return;
    case "Heartbeats":
      checkItemCount(m);
      w.uvarint(m.items.length);
      for (const x of m.items) {
        w.uvarint(x.group);
        w.uvarint(x.term);
        w.uvarint(x.prevIndex);
        const sameTerm = x.prevTerm === x.term;
        const atPrev = x.commit === x.prevIndex;
        w.u8(bit(x.quiesce === true, B0) | bit(sameTerm, B1) | bit(atPrev, B2));
        if (!sameTerm) w.uvarint(x.prevTerm);
        if (!atPrev) w.uvarint(x.commit);
        w.svarint(x.seq);
      }
      return;
    case "HeartbeatResponses":
      checkItemCount(m);
      w.uvarint(m.items.length);
      for (const x of m.items) {
        w.uvarint(x.group);
        w.uvarint(x.term);
        w.uvarint(x.index);
        w.svarint(x.seq);
      }
      return;
  }
}

/** A coalesced message holds 1 to {@link MAX_COALESCED_ITEMS} items (the host splits longer lists). */
function checkItemCount(m: Heartbeats | HeartbeatResponses): void {
  if (m.items.length === 0 || m.items.length > MAX_COALESCED_ITEMS) {
    throw new RangeError(`${m.type} with ${m.items.length} items (1 to ${MAX_COALESCED_ITEMS})`);
  }
}

/** Reads the item count of a coalesced message: 1 to {@link MAX_COALESCED_ITEMS}, each at least `minItemBytes`. */
function readItemCount(r: Reader, minItemBytes: number): number {
  const at = r.offset;
  const n = r.count(minItemBytes);
  if (n === 0 || n > MAX_COALESCED_ITEMS) r.fail(`coalesced message with ${n} items (1 to ${MAX_COALESCED_ITEMS})`, at);
  return n;
}

function readHeartbeatItems(r: Reader): HeartbeatItem[] {
  // group, term, prevIndex, flags and seq take a byte each at least.
  const n = readItemCount(r, 5);
  const items: HeartbeatItem[] = [];
  for (let i = 0; i < n; i++) {
    const at = r.offset;
    const group = r.uvarint();
    const term = r.term();
    const prevIndex = r.index();
    const f = r.flags(B0 | B1 | B2);
    const fieldAt = r.offset;
    const prevTerm = (f & B1) !== 0 ? term : r.term();
    if ((f & B1) === 0 && prevTerm === term) r.fail("non-canonical heartbeat: prevTerm equal to term sent", fieldAt);
    const commitAt = r.offset;
    const commit = (f & B2) !== 0 ? prevIndex : r.index();
    if ((f & B2) === 0 && commit === prevIndex) {
      r.fail("non-canonical heartbeat: commit equal to prevIndex sent", commitAt);
    }
    const seq = r.svarint();
    // The checks its own AppendEntries would pass (no entries: only prevTerm against term).
    checkEntryRun(r, at, [], prevIndex, prevTerm, term);
    const item: HeartbeatItem = { group, term, prevIndex, prevTerm, commit, seq };
    items.push((f & B0) !== 0 ? { ...item, quiesce: true } : item);
  }
  return items;
}

function readHeartbeatResponseItems(r: Reader): HeartbeatResponseItem[] {
  const n = readItemCount(r, 4);
  const items: HeartbeatResponseItem[] = [];
  for (let i = 0; i < n; i++) {
    const group = r.uvarint();
    const term = r.term();
    const index = r.index();
    items.push({ group, term, index, seq: r.svarint() });
  }
  return items;
}

/** Reads a message written by {@link writeMessage}. Throws `DecodeError`. */
export function readMessage(r: Reader): Message {
  const at = r.offset;
  const tag = r.u8();
  const group = r.uvarint();
  const from = r.string();
  const to = r.string();
  const term = r.term();
  switch (tag) {
    case 1: {
      const f = r.flags(B0 | B1);
      const lastIndex = r.index();
      const lastTerm = r.term();
      return {
        type: "RequestVote",
        group,
        from,
        to,
        term,
        preVote: (f & B0) !== 0,
        lastIndex,
        lastTerm,
        transfer: (f & B1) !== 0,
      };
    }
    case 2: {
      const f = r.flags(B0 | B1);
      return {
        type: "RequestVoteResponse",
        group,
        from,
        to,
        term,
        preVote: (f & B0) !== 0,
        granted: (f & B1) !== 0,
      };
    }
    case 3:
    case QUIESCE_TAG: {
      const prevIndex = r.index();
      const prevTerm = r.term();
      const commit = r.index();
      const seq = r.svarint();
      const entries = readEntryList(r);
      checkEntryRun(r, at, entries, prevIndex, prevTerm, term);
      const m: Message = {
        type: "AppendEntries",
        group,
        from,
        to,
        term,
        prevIndex,
        prevTerm,
        entries,
        commit,
        seq,
      };
      return tag === QUIESCE_TAG ? { ...m, quiesce: true } : m;
    }
    case 4: {
      const f = r.flags(B0);
      const index = r.index();
      const conflictTerm = r.term();
      const conflictIndex = r.index();
      const seq = r.svarint();
      return {
        type: "AppendEntriesResponse",
        group,
        from,
        to,
        term,
        success: (f & B0) !== 0,
        index,
        conflictTerm,
        conflictIndex,
        seq,
      };
    }
    case 5: {
      const meta = readSnapshotMeta(r);
      const offset = r.index();
      const f = r.flags(B0 | B1);
      const at = r.offset;
      const checksum = (f & B1) !== 0 ? r.uvarint() : undefined;
      if (checksum !== undefined && checksum > 0xffffffff) r.fail(`checksum ${checksum} exceeds 32 bits`, at);
      const data = r.bytes();
      const m: InstallSnapshot = {
        type: "InstallSnapshot",
        group,
        from,
        to,
        term,
        meta,
        offset,
        data,
        done: (f & B0) !== 0,
      };
      return checksum === undefined ? m : { ...m, checksum };
    }
    case 6: {
      const index = r.index();
      const offset = r.index();
      const f = r.flags(B0 | B1);
      return {
        type: "InstallSnapshotResponse",
        group,
        from,
        to,
        term,
        index,
        offset,
        done: (f & B0) !== 0,
        success: (f & B1) !== 0,
      };
    }
    case 7:
      return { type: "TimeoutNow", group, from, to, term, candidate: r.string() };
    case 8: {
      // Each proposal takes at least a request-id byte and a length byte.
      const n = r.count(2);
      const proposals: Proposal[] = [];
      for (let i = 0; i < n; i++) {
        const requestId = r.svarint();
        proposals.push({ requestId, data: r.bytes() });
      }
      return { type: "Propose", group, from, to, term, proposals };
    }
    case 9: {
      const n = r.count(2);
      const results: { requestId: number; index: number }[] = [];
      for (let i = 0; i < n; i++) {
        const requestId = r.svarint();
        results.push({ requestId, index: r.index() });
      }
      return { type: "ProposeResponse", group, from, to, term, results };
    }
    case 10:
      return {
        type: "ReadIndex",
        group,
        from,
        to,
        term,
        requestId: r.svarint(),
      };
    case 11: {
      const requestId = r.svarint();
      return {
        type: "ReadIndexResponse",
        group,
        from,
        to,
        term,
        requestId,
        index: r.index(),
      };
    }
    case 13:
      return { type: "HostHeartbeat", group, from, to, term };
    case 14: {
      const m: Heartbeats = { type: "Heartbeats", group, from, to, term, items: readHeartbeatItems(r) };
      return m;
    }
    case 15: {
      const m: HeartbeatResponses = {
        type: "HeartbeatResponses",
        group,
        from,
        to,
        term,
        items: readHeartbeatResponseItems(r),
      };
      return m;
    }
    default:
      return r.fail(`unknown message tag ${tag}`, at);
  }
}

/** Encodes `m` for the wire: version byte, tag, header, body. One exact-size allocation. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(encodedMessageSize(m));
  w.u8(CODEC_VERSION);
  writeMessage(w, m);
  return w.finish();
}

/**
 * Decodes the output of {@link encodeMessage}. Byte fields view `b`, so `b`
 * must not be reused while the message is alive. Throws only `DecodeError`.
 * Terms and indices are bounded by {@link WIRE_LIMITS} unless `limits` sets
 * its own `maxTerm`/`maxIndex`; an AppendEntries' entries must continue its
 * `prevIndex`/`prevTerm` (see `checkEntryRun`).
 */
export function decodeMessage(b: Uint8Array, limits?: DecodeLimits): Message {
  const r = new Reader(b, { ...WIRE_LIMITS, ...limits });
  readVersion(r);
  const m = readMessage(r);
  r.done();
  return m;
}
