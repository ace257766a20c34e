/**
 * Recovery of the write-ahead log: reads every segment, checks that nothing
 * is missing, replays the records and repairs a torn write at the very end.
 *
 * What is refused, as a {@link CorruptLogError} naming the file and offset:
 * - a record that does not check out anywhere but in the unsynced end of the
 *   last segment, or there when it is not a torn write (see `damageInTail`):
 *   a complete record with a bad checksum is a flipped bit, not a crash;
 * - a last segment that ends, or is damaged, below what `wal/TAIL` says was
 *   synced (records cut off, a zeroed final record), or that is gone;
 * - a segment whose header does not name the segment before it with its
 *   size (a deleted or truncated segment in the middle), or whose predecessor
 *   is missing though the log was never compacted past it;
 * - a gap in the entries' indexes, an undecodable record.
 *
 * Only a torn write past the synced mark is repaired (cut off, on disk too):
 * it was never acknowledged, because acknowledgements wait for the fsync.
 *
 * @module
 */

import { decodeEntry, decodeHardState } from "../../core/codec/mod.ts";
import type { Entry, HardState, Index } from "../../core/types.ts";
import { CorruptLogError, type DurableFs, joinPath } from "./fs.ts";
import {
  damageInTail,
  describeBadRecord,
  HEADER,
  readSegmentHeader,
  REC_COMPACT,
  REC_ENTRIES,
  REC_HARDSTATE,
  REC_SEGMENT,
  REC_TRUNCATE,
  SEGMENT_HEADER_BYTES,
  type SegmentLink,
  validRecordAt,
} from "./wal_format.ts";
import { readTail, TAIL_FILE, type TailMark } from "./wal_tail.ts";

const SEG_SUFFIX = ".seg";
const SEG_NAME_DIGITS = 20;

/** One segment file as recovery found it; the log keeps these up to date while it writes. */
export interface Segment {
  /** File name. */
  readonly name: string;
  /** First index the segment was opened for (its name as a number). */
  readonly first: number;
  /** Full path. */
  readonly path: string;
  /** Highest entry index ever written to this segment (0 if none). */
  maxIndex: Index;
  /** Size in bytes (after any repair). */
  size: number;
}

/** The file name of the segment opened for entry `first`. */
export function segmentName(first: Index): string {
  return String(first).padStart(SEG_NAME_DIGITS, "0") + SEG_SUFFIX;
}

/** The first index a segment file name stands for, if it is one. */
export function parseSegmentName(name: string): number | undefined {
  if (!name.endsWith(SEG_SUFFIX)) return undefined;
  const digits = name.slice(0, -SEG_SUFFIX.length);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

const ZERO_HARD_STATE: HardState = { term: 0, vote: undefined, commit: 0 };

/** Replay state: the log as records rebuild it. */
class Replay {
  entries: Entry[] = [];
  /** Index of the last entry; undefined until the first segment tells us where the log starts. */
  last: Index | undefined = undefined;
  compacted: Index = 0;
  hardState: HardState = ZERO_HARD_STATE;

  truncate(from: Index): void {
    const keep = this.entries.length === 0
      ? 0
      : Math.max(0, Math.min(this.entries.length, from - this.entries[0].index));
    this.entries.length = keep;
    this.last = this.last === undefined ? from - 1 : Math.min(this.last, from - 1);
  }

  compact(upTo: Index): void {
    if (upTo <= this.compacted) return;
    this.compacted = upTo;
    const drop = this.entries.length === 0
      ? 0
      : Math.max(0, Math.min(this.entries.length, upTo - this.entries[0].index + 1));
    if (drop > 0) this.entries.splice(0, drop);
    this.last = this.last === undefined ? upTo : Math.max(this.last, upTo);
  }

  get firstIndex(): Index {
    if (this.entries.length > 0) return this.entries[0].index;
    return (this.last ?? this.compacted) + 1;
  }
}

/** What {@link recover} found. */
export interface Recovered {
  /** The segments, oldest first, sizes after repair. */
  readonly segments: Segment[];
  /** The latest hard state. */
  readonly hardState: HardState;
  /** Entries after the compaction point. */
  readonly entries: Entry[];
  /** Index of the first entry the log holds or will hold. */
  readonly firstIndex: Index;
  /** Index of the last entry (the compaction point if none). */
  readonly lastIndex: Index;
  /** The compaction point. */
  readonly compacted: Index;
  /** The witness as read, and its sequence number. */
  readonly tail: { readonly mark: TailMark; readonly seq: number };
}

/**
 * Reads, checks and replays the log in `walDir`, cutting off a torn write
 * at the end of the last segment.
 *
 * @throws CorruptLogError if anything is missing or damaged (see the module doc)
 */
export async function recover(fs: DurableFs, walDir: string): Promise<Recovered> {
  const tailPath = joinPath(walDir, TAIL_FILE);
  const names = await fs.readDir(walDir);
  if (!names.includes(TAIL_FILE)) {
    throw new CorruptLogError(tailPath, 0, "the log's tail witness is missing (the log cannot vouch for its end)");
  }
  const tail = readTail(await fs.readFile(tailPath), tailPath);
  const segments: Segment[] = names
    .map((name) => ({ name, first: parseSegmentName(name) }))
    .filter((s): s is { name: string; first: number } => s.first !== undefined)
    .sort((a, b) => a.first - b.first)
    .map(({ name, first }) => ({ name, first, path: joinPath(walDir, name), maxIndex: 0, size: 0 }));
  const witnessed = segments.findIndex((s) => s.first === tail.mark.segment);
  if (witnessed < 0) {
    throw new CorruptLogError(
      joinPath(walDir, segmentName(tail.mark.segment)),
      0,
      `segment missing: ${TAIL_FILE} records ${tail.mark.synced} synced bytes in it`,
    );
  }

  const state = new Replay();
  let firstLink: SegmentLink | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const buf = await fs.readFile(seg.path);
    const link = readSegmentHeader(buf);
    if (typeof link === "string") throw new CorruptLogError(seg.path, 0, link);
    if (i === 0) firstLink = link;
    else checkLink(seg, link, segments[i - 1]);
    const isLast = i === segments.length - 1;
    // Bytes that must be valid: all of a segment that is not the last (it was
    // synced before the next was started), and the witnessed part of the last.
    let floor = isLast ? 0 : Infinity;
    if (i === witnessed) {
      if (buf.length < tail.mark.synced) {
        throw new CorruptLogError(
          seg.path,
          buf.length,
          `the segment ends at byte ${buf.length}, but ${TAIL_FILE} records ${tail.mark.synced} bytes of it as synced: ` +
            "the end of the log is missing",
        );
      }
      if (isLast) floor = tail.mark.synced;
    }
    const valid = replaySegment(seg, buf, state, floor);
    if (valid < buf.length) await fs.truncate(seg.path, valid);
    seg.size = valid;
  }
  if (firstLink !== undefined && firstLink.prev !== 0) {
    // Compaction deletes a segment only once its entries are compacted (after
    // writing the compaction point into the active segment).
    if (state.compacted === 0 || firstLink.prevMaxIndex > state.compacted) {
      throw new CorruptLogError(
        joinPath(walDir, segmentName(firstLink.prev)),
        0,
        `segment missing: it held entries up to ${firstLink.prevMaxIndex}, but the log is compacted only up to ` +
          `${state.compacted}`,
      );
    }
  }
  return {
    segments,
    hardState: state.hardState,
    entries: state.entries,
    firstIndex: state.firstIndex,
    lastIndex: state.last ?? state.compacted,
    compacted: state.compacted,
    tail,
  };
}

/** A segment must name the one found before it, with the size that one has. */
function checkLink(seg: Segment, link: SegmentLink, prev: Segment): void {
  if (link.prev !== prev.first) {
    throw new CorruptLogError(
      seg.path,
      0,
      `its header names ${segmentName(link.prev)} as the previous segment, but the one before it is ${prev.name}` +
        (link.prev > prev.first ? ` (${segmentName(link.prev)} is missing)` : ""),
    );
  }
  if (link.prevSize !== prev.size) {
    throw new CorruptLogError(
      prev.path,
      Math.min(prev.size, link.prevSize),
      `the segment is ${prev.size} bytes, but ${seg.name} records it as ${link.prevSize} bytes`,
    );
  }
}

/**
 * Replays one segment (after its header) into `state`. Returns the byte
 * length of its valid prefix, which is shorter than the file only when the
 * rest, all at or past `floor`, is a torn write.
 */
function replaySegment(seg: Segment, buf: Uint8Array, state: Replay, floor: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = SEGMENT_HEADER_BYTES;
  while (o < buf.length) {
    if (!validRecordAt(buf, view, o)) {
      const reason = describeBadRecord(buf, view, o);
      if (floor === Infinity) throw new CorruptLogError(seg.path, o, `${reason} (not in the last segment)`);
      if (o < floor) {
        throw new CorruptLogError(seg.path, o, `${reason}, within the ${floor} bytes recorded as synced`);
      }
      // A torn write leaves garbage only at the very end; if any valid
      // record follows, this is damage to data that was already durable.
      for (let p = o + 1; p + HEADER < buf.length; p++) {
        if (validRecordAt(buf, view, p)) {
          throw new CorruptLogError(seg.path, o, `${reason}, followed by a valid record at byte offset ${p}`);
        }
      }
      const damage = damageInTail(buf, view, o);
      if (damage !== undefined) throw new CorruptLogError(seg.path, o, `${damage} (not a torn write)`);
      return o;
    }
    const len = view.getUint32(o, true);
    const type = buf[o + HEADER];
    const end = o + HEADER + len;
    try {
      applyRecord(seg, buf, view, type, o + HEADER + 1, end, state);
    } catch (e) {
      if (e instanceof CorruptLogError) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw new CorruptLogError(seg.path, o, `undecodable record: ${why}`);
    }
    o = end;
  }
  return o;
}

function applyRecord(
  seg: Segment,
  buf: Uint8Array,
  view: DataView,
  type: number,
  p: number,
  end: number,
  state: Replay,
): void {
  switch (type) {
    case REC_ENTRIES: {
      if (end - p < 4) throw new Error("entries record too short");
      const count = view.getUint32(p, true);
      let q = p + 4;
      for (let i = 0; i < count; i++) {
        if (q + 4 > end) throw new Error(`entry ${i} of ${count} is missing`);
        const len = view.getUint32(q, true);
        q += 4;
        if (q + len > end) throw new Error(`entry ${i} runs past its record`);
        // A view into the segment's bytes: entry data is not copied.
        const entry = decodeEntry(buf.subarray(q, q + len));
        q += len;
        if (state.last !== undefined && entry.index !== state.last + 1) {
          throw new CorruptLogError(
            seg.path,
            p - HEADER - 1,
            `entry index ${entry.index} does not follow ${state.last} (gap in the log)`,
          );
        }
        state.entries.push(entry);
        state.last = entry.index;
        if (entry.index > seg.maxIndex) seg.maxIndex = entry.index;
      }
      if (q !== end) throw new Error(`${end - q} stray bytes after ${count} entries`);
      return;
    }
    case REC_HARDSTATE:
      state.hardState = decodeHardState(buf.subarray(p, end));
      return;
    case REC_TRUNCATE:
    case REC_COMPACT: {
      if (end - p !== 8) throw new Error(`index record of ${end - p} bytes`);
      const index = Number(view.getBigUint64(p, true));
      if (type === REC_TRUNCATE) state.truncate(index);
      else state.compact(index);
      return;
    }
    case REC_SEGMENT:
      throw new Error("a segment header inside a segment");
  }
}
