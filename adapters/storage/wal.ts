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
 * DATA/wal/TAIL                          how far the last segment was synced
 * ```
 *
 * The record format is in `wal_format.ts`; every segment starts with a
 * header record naming the segment before it and its size, so a segment
 * deleted or cut short in the middle is noticed. `wal/TAIL` (`wal_tail.ts`)
 * is rewritten after every fsync, so a last segment that was deleted, cut
 * short or zeroed below what was synced is noticed too. The directory is
 * created whole (in `wal.tmp`, then renamed), so `wal/` without its witness
 * or its first segment is damage, not a new log.
 *
 * Replay (`wal_replay.ts`) cuts off a torn write past the synced mark and
 * refuses anything else that does not check out with a
 * {@link CorruptLogError} naming the file and byte offset, because silently
 * dropping acknowledged entries would break Raft's safety.
 *
 * @module
 */

import { encodeHardState } from "../../core/codec/mod.ts";
import type { HardState, Index } from "../../core/types.ts";
import type { LogStorePort, PersistBatch, RecoveredLog } from "../../effects/ports/mod.ts";
import {
  type AppendFile,
  CorruptLogError,
  type DirLock,
  type DurableFs,
  joinPath,
  removeTempFiles,
  StorageError,
} from "./fs.ts";
import { holdsSnapshots } from "./snapshots.ts";
import {
  entriesPayload,
  REC_COMPACT,
  REC_ENTRIES,
  REC_HARDSTATE,
  REC_TRUNCATE,
  RecordWriter,
  SEGMENT_HEADER_BYTES,
  segmentHeader,
  u64,
} from "./wal_format.ts";
import { recover, type Segment, segmentName } from "./wal_replay.ts";
import { initialTail, TAIL_FILE, TailWriter } from "./wal_tail.ts";

/** Default size at which the log moves on to a new segment file: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES: number = 64 * 1024 * 1024;

/** Options for {@link WriteAheadLog.open}. */
export interface WalOptions {
  /** Start a new segment once the current one would grow past this many bytes (default 64 MiB). */
  readonly segmentBytes?: number;
}

/** Result of {@link WriteAheadLog.open}. */
export interface OpenedWal {
  /** The open log, holding the directory lock. */
  readonly wal: WriteAheadLog;
  /** The state replayed from disk. */
  readonly recovered: RecoveredLog;
  /** Whether this open created the log (the data directory had none). */
  readonly created: boolean;
}

/** Creates `dir/wal` whole: first segment and witness in a fresh `wal.tmp`, synced, then renamed into place. */
async function createWal(fs: DurableFs, dir: string, walDir: string): Promise<void> {
  const tmp = joinPath(dir, "wal.tmp");
  await fs.mkdirp(tmp);
  const header = segmentHeader({ prev: 0, prevSize: 0, prevMaxIndex: 0 });
  await fs.writeFileSynced(joinPath(tmp, segmentName(1)), header);
  await fs.writeFileSynced(joinPath(tmp, TAIL_FILE), initialTail({ segment: 1, synced: header.length }));
  await fs.syncDir(tmp);
  await fs.rename(tmp, walDir);
  await fs.syncDir(dir);
}

/**
 * The durable Raft log. One writer at a time: calls are queued and run in
 * order. `append` writes without fsync; `sync` makes all earlier appends
 * durable with one fsync (the interpreter calls it once per group-commit
 * batch, docs/DESIGN.md "Ordering rules" 4).
 *
 * After an I/O failure the log refuses further work: whether a failed write or
 * fsync reached the disk is unknown, so the only safe continuation is to
 * reopen and replay.
 */
export class WriteAheadLog implements LogStorePort {
  private queue: Promise<unknown> = Promise.resolve();
  /** What {@link WriteAheadLog.open} replayed, handed out by {@link WriteAheadLog.load} (once: the node owns it then). */
  private recovered: RecoveredLog | undefined;
  /** The latest write of the witness (see {@link WriteAheadLog.sync}). */
  private tailWrite: Promise<void> = Promise.resolve();
  private failed: unknown = undefined;
  private closed = false;

  private constructor(
    private readonly fs: DurableFs,
    private readonly walDir: string,
    private readonly lock: DirLock,
    private readonly segmentBytes: number,
    private readonly segments: Segment[],
    private active: AppendFile,
    private readonly tail: TailWriter,
    private last: Index,
    private compacted: Index,
    private hardState: HardState,
  ) {}

  /**
   * Locks `dir`, replays its log (creating one if the directory has none,
   * unless it holds snapshots) and opens it for appending.
   *
   * @throws DataDirLockedError if another process holds `dir`
   * @throws CorruptLogError if the log is damaged or incomplete (anything but a torn write past the synced end)
   * @throws StorageError on I/O failure
   */
  static async open(fs: DurableFs, dir: string, opts: WalOptions = {}): Promise<OpenedWal> {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    await fs.mkdirp(dir);
    const lock = await fs.lockDir(dir);
    const opened: (AppendFile | TailWriter)[] = [];
    try {
      const walDir = joinPath(dir, "wal");
      // A crash while creating the log leaves wal.tmp behind: nothing in it was ever used.
      await fs.remove(joinPath(dir, "wal.tmp"));
      const created = !(await fs.exists(walDir));
      if (created) {
        // Snapshots without a log mean the log was lost: a new one would forget this
        // node's term and vote, and the entries it acknowledged past the snapshot.
        if (await holdsSnapshots(fs, dir)) {
          throw new CorruptLogError(walDir, 0, "the log is missing, but the data directory holds snapshots");
        }
        await createWal(fs, dir, walDir);
      }
      // Likewise a crash while rolling to a new segment, before its rename.
      await removeTempFiles(fs, walDir);

      const r = await recover(fs, walDir);
      const active = await fs.openAppend(r.segments[r.segments.length - 1].path);
      opened.push(active);
      const tail = new TailWriter(await fs.openOverwrite(joinPath(walDir, TAIL_FILE)), r.tail.seq, r.tail.mark);
      opened.push(tail);
      const wal = new WriteAheadLog(
        fs,
        walDir,
        lock,
        segmentBytes,
        r.segments,
        active,
        tail,
        r.lastIndex,
        r.compacted,
        r.hardState,
      );
      const recovered: RecoveredLog = { hardState: r.hardState, entries: r.entries, firstIndex: r.firstIndex };
      wal.recovered = recovered;
      return { wal, recovered, created };
    } catch (e) {
      for (const f of opened) await f.close().catch(() => {});
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
  /** What the log held when it was opened (the port's `load`); later calls get an error, not a stale view. */
  load(): Promise<RecoveredLog> {
    const r = this.recovered;
    this.recovered = undefined;
    return r ? Promise.resolve(r) : Promise.reject(new Error("load() is called once, on the log opened"));
  }

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
      if (seg.size > SEGMENT_HEADER_BYTES && seg.size + w.byteLength > this.segmentBytes) {
        seg = await this.roll(last + 1);
      }
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

  /**
   * Makes every earlier `append` durable: one fsync of the active segment.
   * Then the new synced size goes into `wal/TAIL` (written, not fsynced),
   * without holding up the caller: the next `sync` waits for that write and
   * fails if it failed (as does every call once the failure is seen).
   */
  sync(): Promise<void> {
    return this.run(() =>
      this.guard(async () => {
        await this.active.sync();
        await this.tailWrite;
        this.markSynced();
      })
    );
  }

  /** Starts writing the active segment's size as synced into the witness (only after its fsync returned). */
  private markSynced(): void {
    const seg = this.segments[this.segments.length - 1];
    const mark = { segment: seg.first, synced: seg.size };
    this.tailWrite = this.tailWrite.then(() => this.tail.write(mark));
    this.tailWrite.catch((e) => {
      this.failed ??= e;
    });
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
        active.size += w.byteLength;
        // Before any segment goes: the witness must name the active one.
        this.markSynced();
        await this.tailWrite;
      });
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
        await this.tailWrite.catch(() => {});
        await this.tail.close().catch(() => {});
        await this.lock.release();
      }
    });
    this.queue = done.catch(() => {});
    return done;
  }

  /**
   * Syncs and closes the current segment, then starts a new one named after
   * `next`, whose header names the current one and its final size. The new
   * file is written and synced under a temporary name first, so a segment
   * file always has its header.
   */
  private async roll(next: Index): Promise<Segment> {
    const prev = this.segments[this.segments.length - 1];
    // Sync before moving on: only the last segment may have a torn tail.
    await this.guard(async () => {
      await this.active.sync();
      await this.active.close();
    });
    const first = Math.max(next, prev.first + 1);
    const name = segmentName(first);
    const seg: Segment = { name, first, path: joinPath(this.walDir, name), maxIndex: 0, size: 0 };
    const header = segmentHeader({ prev: prev.first, prevSize: prev.size, prevMaxIndex: prev.maxIndex });
    await this.guard(async () => {
      await this.fs.writeFileSynced(`${seg.path}.tmp`, header);
      await this.fs.rename(`${seg.path}.tmp`, seg.path);
      await this.fs.syncDir(this.walDir);
      this.active = await this.fs.openAppend(seg.path);
    });
    seg.size = header.length;
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
