/**
 * The byte format of the write-ahead log's segment files, and the rule that
 * tells a torn write from damage.
 *
 * A segment is a sequence of records, little-endian:
 *
 * ```
 * [u32 length of type+payload][u32 crc32c of type+payload][u8 type][payload]
 * ```
 *
 * - `SEGMENT` (always the first record, and only there): `[u64 previous
 *   segment's first index (0: none)][u64 its size in bytes][u64 highest entry
 *   index it held]`, chaining each segment to the one before it;
 * - `ENTRIES`: `[u32 count]` then per entry `[u32 length][encodeEntry bytes]`;
 * - `HARDSTATE`: `encodeHardState` bytes;
 * - `TRUNCATE`: `[u64 index]`: drop entries from `index` on;
 * - `COMPACT`: `[u64 index]`: entries up to `index` are covered by a snapshot.
 *
 * @module
 */

import { encodeEntry } from "../../core/codec/mod.ts";
import { crc32c } from "../../core/crc32c.ts";
import type { Entry } from "../../core/types.ts";

/** Record type: a batch of entries. */
export const REC_ENTRIES = 1;
/** Record type: the hard state. */
export const REC_HARDSTATE = 2;
/** Record type: a truncation of the log's tail. */
export const REC_TRUNCATE = 3;
/** Record type: a compaction point. */
export const REC_COMPACT = 4;
/** Record type: a segment's header, naming its predecessor. */
export const REC_SEGMENT = 5;
/** Bytes before a record's type byte: u32 length + u32 crc. */
export const HEADER = 8;

/** What a segment's header record says about the segment before it. */
export interface SegmentLink {
  /** First index (file name) of the previous segment; 0 for the first segment the log ever had. */
  readonly prev: number;
  /** Size in bytes of the previous segment when this one was started (it is never written again). */
  readonly prevSize: number;
  /** Highest entry index the previous segment held (compaction may delete it once that is compacted). */
  readonly prevMaxIndex: number;
}

const LINK_PAYLOAD = 24;
/** Size of a segment's header record. */
export const SEGMENT_HEADER_BYTES: number = HEADER + 1 + LINK_PAYLOAD;

/** Builds one batch's records into a single buffer, so a batch costs one `write`. */
export class RecordWriter {
  private readonly parts: { type: number; payload: Uint8Array[]; size: number }[] = [];
  private total = 0;

  /** Adds a record of `type` whose payload is the concatenation of `payload`. */
  add(type: number, payload: Uint8Array[]): void {
    let size = 0;
    for (const p of payload) size += p.length;
    this.parts.push({ type, payload, size });
    this.total += HEADER + 1 + size;
  }

  /** Bytes {@link RecordWriter.finish} will return. */
  get byteLength(): number {
    return this.total;
  }

  /** The records, framed and checksummed. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.total);
    const view = new DataView(out.buffer);
    let o = 0;
    for (const { type, payload, size } of this.parts) {
      view.setUint32(o, 1 + size, true);
      out[o + HEADER] = type;
      let p = o + HEADER + 1;
      for (const chunk of payload) {
        out.set(chunk, p);
        p += chunk.length;
      }
      view.setUint32(o + 4, crc32c(out.subarray(o + HEADER, p)), true);
      o = p;
    }
    return out;
  }
}

/** `n` as 8 little-endian bytes. */
export function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** `n` as 4 little-endian bytes. */
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** An `ENTRIES` record's payload. */
export function entriesPayload(entries: readonly Entry[]): Uint8Array[] {
  const parts: Uint8Array[] = [u32(entries.length)];
  for (const e of entries) {
    const bytes = encodeEntry(e);
    parts.push(u32(bytes.length), bytes);
  }
  return parts;
}

/** The header record a new segment starts with. */
export function segmentHeader(link: SegmentLink): Uint8Array {
  const w = new RecordWriter();
  w.add(REC_SEGMENT, [u64(link.prev), u64(link.prevSize), u64(link.prevMaxIndex)]);
  return w.finish();
}

/** Reads a segment's header record; a string says why it is not one. */
export function readSegmentHeader(buf: Uint8Array): SegmentLink | string {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (!validRecordAt(buf, view, 0)) {
    return buf.length === 0 ? "empty segment file (no header record)" : "damaged segment header record";
  }
  if (buf[HEADER] !== REC_SEGMENT || view.getUint32(0, true) !== 1 + LINK_PAYLOAD) {
    return "the segment does not start with a segment header record (written by an older plank?)";
  }
  const at = (k: number) => Number(view.getBigUint64(HEADER + 1 + 8 * k, true));
  return { prev: at(0), prevSize: at(1), prevMaxIndex: at(2) };
}

/** Whether a record with a valid checksum and a known type starts at `o`. */
export function validRecordAt(buf: Uint8Array, view: DataView, o: number): boolean {
  if (o + HEADER + 1 > buf.length) return false;
  const len = view.getUint32(o, true);
  if (len < 1 || o + HEADER + len > buf.length) return false;
  const type = buf[o + HEADER];
  if (type < REC_ENTRIES || type > REC_SEGMENT) return false;
  return crc32c(buf.subarray(o + HEADER, o + HEADER + len)) === view.getUint32(o + 4, true);
}

/** What is wrong with the record at `o`, in words (it is not valid). */
export function describeBadRecord(buf: Uint8Array, view: DataView, o: number): string {
  if (o + HEADER + 1 > buf.length) return "truncated record header";
  const len = view.getUint32(o, true);
  if (o + HEADER + len > buf.length) return `record length ${len} runs past end of file`;
  if (len === 0) return "record of length 0";
  return "record checksum mismatch or bad record type";
}

function allZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Sector size a disk writes atomically: a power loss leaves whole unwritten sectors, read back as zeros. */
const SECTOR = 512;

/** Whether some whole 512-byte sector (aligned to the file) within `[from, to)` is all zeros. */
function hasZeroSector(buf: Uint8Array, from: number, to: number): boolean {
  for (let s = Math.ceil(from / SECTOR) * SECTOR; s + SECTOR <= to; s += SECTOR) {
    if (allZero(buf, s, s + SECTOR)) return true;
  }
  return false;
}

/**
 * Why the bytes from the invalid record at `o` to the end of the file are
 * damage rather than a torn write; `undefined` when they are a torn write.
 *
 * A torn write (a crash while appending, before the fsync returned) leaves a
 * prefix of what was written: a header shorter than 9 bytes, a record shorter
 * than its header says, or blocks the file system never wrote, read back as
 * zeros (an all-zero tail, or a zero sector inside the record). A complete
 * record whose checksum fails with none of those marks is a flipped bit.
 * Callers only ask about bytes past everything known to be synced, and only
 * once no valid record follows.
 */
export function damageInTail(buf: Uint8Array, view: DataView, o: number): string | undefined {
  if (allZero(buf, o, buf.length)) return undefined;
  if (o + HEADER + 1 > buf.length) return undefined;
  const len = view.getUint32(o, true);
  const end = o + HEADER + len;
  if (end > buf.length) {
    // A record cut short, unless the bytes present are a whole record whose length field flipped.
    if (crc32c(buf.subarray(o + HEADER)) === view.getUint32(o + 4, true)) {
      return `record length field damaged (${len}, but the ${buf.length - o - HEADER} bytes present check out)`;
    }
    return undefined;
  }
  if (hasZeroSector(buf, o, end)) return undefined;
  return describeBadRecord(buf, view, o);
}
