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
 *
 * Entries use the layout of `entry.ts`; membership that of `membership.ts`.
 * Decoded byte fields (entry data, snapshot chunks, proposals) view the
 * input buffer instead of copying it.
 *
 * @module
 */

import type { InstallSnapshot, Message, Proposal } from "../types.ts";
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
} as const satisfies Record<Message["type"], number>;

/** The tag of an AppendEntries with `quiesce` set (a tag of its own, so other appends keep their bytes). */
export const QUIESCE_TAG = 12;

const B0 = 1;
const B1 = 2;
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
  }
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
