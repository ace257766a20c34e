/**
 * The write-ahead log: Raft's entries and hard state in segment files, written
 * once over the {@link DurableFs} port for every runtime.
 *
 * Layout under the data directory `DATA`:
 *
 * ```
 * DATA/LOCK                              exclusive use (DurableFs.lockDir)
 * DATA/wal/00000000000000000001.seg      segments, named by the first index
 * DATA/wal/00000000000000004097.seg      they were opened for, replayed in order
 * ```
 *
 * A segment is a sequence of records, little-endian:
 *
 * ```
 * [u32 length of type+payload][u32 crc32c of type+payload][u8 type][payload]
 * ```
 *
 * - `ENTRIES`: `[u32 count]` then per entry `[u32 length][encodeEntry bytes]`
 * - `HARDSTATE`: `encodeHardState` bytes
 * - `TRUNCATE`: `[u64 index]` — drop entries from `index` on
 * - `COMPACT`: `[u64 index]` — entries up to `index` are covered by a snapshot
 *
 * Replay applies records in order. Only the last record of the last segment
 * may be torn (a write the crash interrupted): it is cut off, on disk too.
 * Anything else that does not check out is a {@link CorruptLogError} naming
 * the file and byte offset, because silently dropping acknowledged entries
 * would break Raft's safety.
 *
 * @module
 */

import { decodeEntry, decodeHardState, encodeEntry, encodeHardState } from "../../core/codec/mod.ts";
import { crc32c } from "../../core/crc32c.ts";
import type { Entry, HardState, Index } from "../../core/types.ts";
import { type AppendFile, CorruptLogError, type DirLock, type DurableFs, joinPath, StorageError } from "./fs.ts";

const REC_ENTRIES = 1;
const REC_HARDSTATE = 2;
const REC_TRUNCATE = 3;
const REC_COMPACT = 4;
const HEADER = 8; // u32 length + u32 crc
const SEG_SUFFIX = ".seg";
const SEG_NAME_DIGITS = 20;

/** Default size at which the log moves on to a new segment file: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES: number = 64 * 1024 * 1024;

/** Options for {@link WriteAheadLog.open}. */
export interface WalOptions {
  /** Start a new segment once the current one would grow past this many bytes (default 64 MiB). */
  readonly segmentBytes?: number;
}

/** One batch of changes, as the core's `Persist` effect describes it: truncate, then append, with the hard state. */
export interface PersistBatch {
  /** The hard state to record, if it changed. */
  readonly hardState?: HardState | undefined;
  /** Entries to append; the first must follow the log's last index (after truncation). */
  readonly entries: readonly Entry[];
  /** Drop entries from this index on before appending. */
  readonly truncateFrom?: Index | undefined;
}

/** What {@link WriteAheadLog.open} found on disk. */
export interface RecoveredLog {
  /** The last hard state written (all zero for a new log). */
  readonly hardState: HardState;
  /** The log's entries after the compaction point, contiguous, starting at `firstIndex`. */
  readonly entries: Entry[];
  /** Index of the first entry the log holds or will hold (compaction point + 1). */
  readonly firstIndex: Index;
}

/** Result of {@link WriteAheadLog.open}. */
export interface OpenedWal {
  /** The open log, holding the directory lock. */
  readonly wal: WriteAheadLog;
  /** The state replayed from disk. */
  readonly recovered: RecoveredLog;
}

interface Segment {
  readonly name: string;
  readonly path: string;
  /** Highest entry index ever written to this segment (0 if none). */
  maxIndex: Index;
  size: number;
}

const ZERO_HARD_STATE: HardState = { term: 0, vote: undefined, commit: 0 };

function segmentName(first: Index): string {
  return String(first).padStart(SEG_NAME_DIGITS, "0") + SEG_SUFFIX;
}

function parseSegmentName(name: string): number | undefined {
  if (!name.endsWith(SEG_SUFFIX)) return undefined;
  const digits = name.slice(0, -SEG_SUFFIX.length);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

/** Builds one batch's records into a single buffer, so a batch costs one `write`. */
class RecordWriter {
  private readonly parts: { type: number; payload: Uint8Array[]; size: number }[] = [];
  private total = 0;

  add(type: number, payload: Uint8Array[]): void {
    let size = 0;
    for (const p of payload) size += p.length;
    this.parts.push({ type, payload, size });
    this.total += HEADER + 1 + size;
  }

  get byteLength(): number {
    return this.total;
  }

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

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function entriesPayload(entries: readonly Entry[]): Uint8Array[] {
  const parts: Uint8Array[] = [u32(entries.length)];
  for (const e of entries) {
    const bytes = encodeEntry(e);
    parts.push(u32(bytes.length), bytes);
  }
  return parts;
}

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

function corrupt(file: string, offset: number, reason: string): CorruptLogError {
  return new CorruptLogError(file, offset, reason);
}

/** Whether a record with a valid checksum starts at `o`. */
function validRecordAt(buf: Uint8Array, view: DataView, o: number): boolean {
  if (o + HEADER + 1 > buf.length) return false;
  const len = view.getUint32(o, true);
  if (len < 1 || o + HEADER + len > buf.length) return false;
  const type = buf[o + HEADER];
  if (type < REC_ENTRIES || type > REC_COMPACT) return false;
  return crc32c(buf.subarray(o + HEADER, o + HEADER + len)) === view.getUint32(o + 4, true);
}

/**
 * Replays one segment into `state`. Returns the byte length of its valid
 * prefix; shorter than the file only when `isLast` and the rest is a torn tail.
 */
function replaySegment(seg: Segment, buf: Uint8Array, state: Replay, isLast: boolean): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  while (o < buf.length) {
    if (!validRecordAt(buf, view, o)) {
      // A torn write leaves garbage only at the very end; if any valid
      // record follows, this is damage to data that was already durable.
      let later = -1;
      for (let p = o + 1; p + HEADER < buf.length; p++) {
        if (validRecordAt(buf, view, p)) {
          later = p;
          break;
        }
      }
      const reason = o + HEADER > buf.length
        ? "truncated record header"
        : o + HEADER + view.getUint32(o, true) > buf.length
        ? `record length ${view.getUint32(o, true)} runs past end of file`
        : "record checksum mismatch or bad record type";
      if (!isLast) throw corrupt(seg.path, o, `${reason} (not in the last segment)`);
      if (later >= 0) throw corrupt(seg.path, o, `${reason}, followed by a valid record at byte offset ${later}`);
      return o;
    }
    const len = view.getUint32(o, true);
    const type = buf[o + HEADER];
    const p = o + HEADER + 1;
    const end = o + HEADER + len;
    try {
      applyRecord(seg, buf, view, type, p, end, state);
    } catch (e) {
      if (e instanceof CorruptLogError) throw e;
      const why = e instanceof Error ? e.message : String(e);
      throw corrupt(seg.path, o, `undecodable record: ${why}`);
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
  }
}

/**
 * The durable Raft log. One writer at a time: calls are queued and run in
 * order. `append` writes without fsync; `sync` makes all earlier appends
 * durable with one fsync (the interpreter calls it once per group-commit
 * batch, DESIGN.md "Ordering rules" 4).
 *
 * After an I/O failure the log refuses further work: whether a failed write or
 * fsync reached the disk is unknown, so the only safe continuation is to
 * reopen and replay.
 */
export class WriteAheadLog {
  private queue: Promise<unknown> = Promise.resolve();
  private failed: unknown = undefined;
  private closed = false;

  private constructor(
    private readonly fs: DurableFs,
    private readonly walDir: string,
    private readonly lock: DirLock,
    private readonly segmentBytes: number,
    private readonly segments: Segment[],
    private active: AppendFile,
    private last: Index,
    private compacted: Index,
    private hardState: HardState,
  ) {}

  /**
   * Locks `dir`, replays its log and opens it for appending.
   *
   * @throws DataDirLockedError if another process holds `dir`
   * @throws CorruptLogError if a record other than a torn tail is damaged
   * @throws StorageError on I/O failure
   */
  static async open(fs: DurableFs, dir: string, opts: WalOptions = {}): Promise<OpenedWal> {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    await fs.mkdirp(dir);
    const lock = await fs.lockDir(dir);
    try {
      const walDir = joinPath(dir, "wal");
      await fs.mkdirp(walDir);
      const segments: Segment[] = (await fs.readDir(walDir))
        .map((name) => ({ name, first: parseSegmentName(name) }))
        .filter((s): s is { name: string; first: number } => s.first !== undefined)
        .sort((a, b) => a.first - b.first)
        .map(({ name }) => ({ name, path: joinPath(walDir, name), maxIndex: 0, size: 0 }));

      const state = new Replay();
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i];
        const buf = await fs.readFile(seg.path);
        const isLast = i === segments.length - 1;
        const valid = replaySegment(seg, buf, state, isLast);
        if (valid < buf.length) await fs.truncate(seg.path, valid);
        seg.size = valid;
      }

      const last = state.last ?? state.compacted;
      let createdFirst = false;
      if (segments.length === 0) {
        const name = segmentName(last + 1);
        segments.push({ name, path: joinPath(walDir, name), maxIndex: 0, size: 0 });
        createdFirst = true;
      }
      const active = await fs.openAppend(segments[segments.length - 1].path);
      if (createdFirst) await fs.syncDir(walDir);
      const wal = new WriteAheadLog(
        fs,
        walDir,
        lock,
        segmentBytes,
        segments,
        active,
        last,
        state.compacted,
        state.hardState,
      );
      return {
        wal,
        recovered: { hardState: state.hardState, entries: state.entries, firstIndex: state.firstIndex },
      };
    } catch (e) {
      await lock.release().catch(() => {});
      throw e;
    }
  }

  /** Index of the last entry (the compaction point if the log is empty, 0 for a new log). */
  get lastIndex(): Index {
    return this.last;
  }

  /** Highest index covered by a snapshot and compacted away (0 if none). */
  get compactedIndex(): Index {
    return this.compacted;
  }

  /** Number of segment files, the active one included. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * Writes `batch` (hard state, truncation, entries) with one `write` call.
   * Not durable until {@link WriteAheadLog.sync}.
   *
   * @throws RangeError if the entries do not continue the log or the
   *   truncation reaches into the compacted part (a caller bug; nothing is written)
   */
  append(batch: PersistBatch): Promise<void> {
    return this.run(async () => {
      let last = this.last;
      const w = new RecordWriter();
      if (batch.hardState !== undefined) w.add(REC_HARDSTATE, [encodeHardState(batch.hardState)]);
      if (batch.truncateFrom !== undefined) {
        if (batch.truncateFrom <= this.compacted) {
          throw new RangeError(
            `cannot truncate from ${batch.truncateFrom}: entries up to ${this.compacted} are compacted`,
          );
        }
        last = Math.min(last, batch.truncateFrom - 1);
        w.add(REC_TRUNCATE, [u64(batch.truncateFrom)]);
      }
      let expected = last + 1;
      for (const e of batch.entries) {
        if (e.index !== expected) {
          throw new RangeError(`entry index ${e.index} does not continue the log (expected ${expected})`);
        }
        expected++;
      }
      if (batch.entries.length > 0) w.add(REC_ENTRIES, entriesPayload(batch.entries));
      if (w.byteLength === 0) return;

      let seg = this.segments[this.segments.length - 1];
      if (seg.size > 0 && seg.size + w.byteLength > this.segmentBytes) seg = await this.roll(last + 1);
      await this.guard(() => this.active.write(w.finish()));
      seg.size += w.byteLength;
      if (batch.entries.length > 0) {
        last = batch.entries[batch.entries.length - 1].index;
        if (last > seg.maxIndex) seg.maxIndex = last;
      }
      this.last = last;
      if (batch.hardState !== undefined) this.hardState = batch.hardState;
    });
  }

  /** Makes every earlier `append` durable: one fsync of the active segment. */
  sync(): Promise<void> {
    return this.run(() => this.guard(() => this.active.sync()));
  }

  /**
   * Records that entries up to `upToIndex` are covered by a snapshot, then
   * deletes the oldest segments all of whose entries are at or below it
   * (never the active segment). Replay afterwards starts after `upToIndex`.
   */
  compact(upToIndex: Index): Promise<void> {
    return this.run(async () => {
      if (upToIndex <= this.compacted) return;
      // The hard state goes along: the segment holding the latest one may be
      // among those deleted.
      const w = new RecordWriter();
      w.add(REC_HARDSTATE, [encodeHardState(this.hardState)]);
      w.add(REC_COMPACT, [u64(upToIndex)]);
      const active = this.segments[this.segments.length - 1];
      await this.guard(async () => {
        await this.active.write(w.finish());
        await this.active.sync();
      });
      active.size += w.byteLength;
      this.compacted = upToIndex;
      if (this.last < upToIndex) this.last = upToIndex;
      // Oldest first, each removal made durable before the next: a crash
      // must never leave a hole in the middle of the segment sequence.
      while (this.segments.length > 1 && this.segments[0].maxIndex <= upToIndex) {
        const seg = this.segments[0];
        await this.guard(async () => {
          await this.fs.remove(seg.path);
          await this.fs.syncDir(this.walDir);
        });
        this.segments.shift();
      }
    });
  }

  /** Closes the active segment (without fsync) and releases the directory lock. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return this.queue.then(() => {});
    this.closed = true;
    const done = this.queue.catch(() => {}).then(async () => {
      try {
        await this.active.close();
      } finally {
        await this.lock.release();
      }
    });
    this.queue = done.catch(() => {});
    return done;
  }

  /** Syncs and closes the current segment, then starts a new one named after `next`. */
  private async roll(next: Index): Promise<Segment> {
    const prev = this.segments[this.segments.length - 1];
    // Sync before moving on: only the last segment may have a torn tail.
    await this.guard(async () => {
      await this.active.sync();
      await this.active.close();
    });
    const prevFirst = parseSegmentName(prev.name) ?? 0;
    const name = segmentName(Math.max(next, prevFirst + 1));
    const seg: Segment = { name, path: joinPath(this.walDir, name), maxIndex: 0, size: 0 };
    await this.guard(async () => {
      this.active = await this.fs.openAppend(seg.path);
      await this.fs.syncDir(this.walDir);
    });
    this.segments.push(seg);
    return seg;
  }

  /** Runs `f` after every earlier call, refusing work once closed or failed. */
  private run<A>(f: () => Promise<A>): Promise<A> {
    if (this.closed) {
      return Promise.reject(new StorageError("use", this.walDir, new Error("write-ahead log is closed")));
    }
    const result = this.queue.then(() => {
      if (this.failed !== undefined) {
        throw new StorageError("use", this.walDir, new Error("write-ahead log failed earlier", { cause: this.failed }));
      }
      return f();
    });
    this.queue = result.catch(() => {});
    return result;
  }

  /** Runs an I/O step; if it fails, the log is poisoned (see the class doc). */
  private async guard<A>(f: () => Promise<A>): Promise<A> {
    try {
      return await f();
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }
}
