/**
 * Contract tests of the write-ahead log against a rotting disk and failing
 * writes: every way its files can be damaged or cut short is either
 * repaired (only a torn write past the synced end) or refused with a
 * `CorruptLogError` naming file and offset; a failed write or fsync poisons
 * the log. A runner calls {@link walDamageContract} with its runtime's
 * file system.
 *
 * @module
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { CorruptLogError, type DurableFs, joinPath, StorageError } from "../../adapters/storage/fs.ts";
import { FileSnapshotStore } from "../../adapters/storage/snapshots.ts";
import { WriteAheadLog } from "../../adapters/storage/wal.ts";
import { SEGMENT_HEADER_BYTES } from "../../adapters/storage/wal_format.ts";
import { type ContractOptions, fsTest } from "./durable_fs.ts";
import { FaultyFs } from "./faulty_fs.ts";
import { entry, range, rejects, reopen, segments, walDir, writeLog } from "./wal.ts";

/** Byte offsets of the records after a segment's header. */
function recordStarts(buf: Uint8Array): number[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: number[] = [];
  for (let o = SEGMENT_HEADER_BYTES; o + 8 <= buf.length; o += 8 + view.getUint32(o, true)) out.push(o);
  return out;
}

/** Asserts `err` is a CorruptLogError about `file` at `offset` whose reason matches `why`. */
function assertCorrupt(err: unknown, file: string, offset: number | undefined, why: RegExp): void {
  assert.ok(err instanceof CorruptLogError, `expected CorruptLogError, got ${err}`);
  assert.equal(err.file, file);
  if (offset !== undefined) assert.equal(err.offset, offset, err.message);
  assert.match(err.reason, why);
  assert.ok(err.message.includes(file) && err.message.includes(`byte offset ${err.offset}`), err.message);
}

/** Writes `synced` batches and syncs, then `unsynced` batches without a sync; closes. */
async function writeTail(fs: DurableFs, dir: string, synced: number[][], unsynced: number[][]): Promise<void> {
  const { wal } = await WriteAheadLog.open(fs, dir);
  for (const [from, to] of synced) await wal.append({ entries: range(from, to, 1) });
  await wal.sync();
  for (const [from, to] of unsynced) await wal.append({ entries: range(from, to, 1) });
  await wal.close();
}

/** Registers the damage contract suite of the write-ahead log. */
export function walDamageContract(
  name: string,
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
  options: ContractOptions = {},
): void {
  const t = fsTest(makeFs, tmpDir);
  const firstSegment = async (fs: DurableFs, dir: string) => joinPath(walDir(dir), (await segments(fs, dir))[0]);
  /** A log of several segments: 30 single-entry batches of 256-byte segments. */
  const segmented = async (fs: DurableFs, dir: string): Promise<string[]> => {
    const { wal } = await WriteAheadLog.open(fs, dir, { segmentBytes: 256 });
    for (let i = 1; i <= 30; i++) await wal.append({ entries: [entry(i, 1)] });
    await wal.sync();
    await wal.close();
    const names = await segments(fs, dir);
    assert.ok(names.length >= 3, `expected several segments, got ${names.length}`);
    return names.map((n) => joinPath(walDir(dir), n));
  };

  describe(`WriteAheadLog damage contract: ${name}`, { skip: options.skip }, () => {
    t("a bit flip in the complete final record is refused, naming file and offset", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1), range(3, 4, 1), range(5, 6, 1)]);
      const seg = await firstSegment(fs, dir);
      const buf = (await fs.readFile(seg)).slice();
      const last = recordStarts(buf).at(-1)!;
      buf[last + 20] ^= 0x08;
      await fs.writeFileSynced(seg, buf);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /checksum.*synced/);
      // Nothing was "repaired", and the lock was released.
      assert.deepEqual(await fs.readFile(seg), buf);
      await (await fs.lockDir(dir)).release();
    });

    t("a zeroed final record is refused", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1), range(3, 4, 1)]);
      const seg = await firstSegment(fs, dir);
      const buf = (await fs.readFile(seg)).slice();
      const last = recordStarts(buf).at(-1)!;
      buf.fill(0, last);
      await fs.writeFileSynced(seg, buf);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /synced/);
    });

    t("a complete final record with a bad checksum is refused even past the synced end", async (fs, dir) => {
      await writeTail(fs, dir, [[1, 2]], [[3, 4]]);
      const seg = await firstSegment(fs, dir);
      const good = await fs.readFile(seg);
      const last = recordStarts(good).at(-1)!;
      const flipped = good.slice();
      flipped[flipped.length - 3] ^= 0x01;
      await fs.writeFileSynced(seg, flipped);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /checksum.*not a torn write/);
      // Garbage that frames as a whole record (length 5, bad checksum) is no torn write either.
      const framed = new Uint8Array([...good.subarray(0, last), 5, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 0]);
      await fs.writeFileSynced(seg, framed);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /not a torn write/);
    });

    t("a final record whose length field was damaged is refused, not taken for a torn write", async (fs, dir) => {
      await writeTail(fs, dir, [[1, 2]], [[3, 4]]);
      const seg = await firstSegment(fs, dir);
      const buf = (await fs.readFile(seg)).slice();
      const last = recordStarts(buf).at(-1)!;
      const view = new DataView(buf.buffer);
      view.setUint32(last, view.getUint32(last, true) + 1000, true);
      await fs.writeFileSynced(seg, buf);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /length field damaged/);
    });

    t("a record cut short past the synced end is a torn write: cut off, file repaired", async (fs, dir) => {
      await writeTail(fs, dir, [[1, 3]], [[4, 6]]);
      const seg = await firstSegment(fs, dir);
      const full = await fs.readFile(seg);
      const last = recordStarts(full).at(-1)!;
      await fs.writeFileSynced(seg, full.subarray(0, last + Math.floor((full.length - last) / 2)));
      assert.deepEqual((await reopen(fs, dir)).entries, range(1, 3, 1));
      assert.equal((await fs.readFile(seg)).length, last, "torn tail cut off on disk");
      // The repaired log takes new appends where the valid part ended.
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ entries: range(4, 5, 2) });
      await wal.sync();
      await wal.close();
      assert.deepEqual((await reopen(fs, dir)).entries, [...range(1, 3, 1), ...range(4, 5, 2)]);
    });

    t("unwritten (zero-filled) and half-written tails past the synced end are cut off", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 4, 1)]);
      const seg = await firstSegment(fs, dir);
      const good = await fs.readFile(seg);
      const tails = [
        new Uint8Array(3), // a header cut short
        new Uint8Array(4096), // blocks the file system allocated but never wrote
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 1, 9]), // a record shorter than its header says
      ];
      for (const tail of tails) {
        await fs.writeFileSynced(seg, new Uint8Array([...good, ...tail]));
        assert.deepEqual((await reopen(fs, dir)).entries, range(1, 4, 1));
        assert.deepEqual(await fs.readFile(seg), good);
      }
    });

    t("an unsynced final record with an unwritten (zero) sector inside is a torn write", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ entries: range(1, 2, 1) });
      await wal.sync();
      await wal.append({ entries: [entry(3, 1, 3000)] });
      await wal.close();
      const seg = await firstSegment(fs, dir);
      const buf = (await fs.readFile(seg)).slice();
      const last = recordStarts(buf).at(-1)!;
      const sector = Math.ceil((last + 600) / 512) * 512;
      buf.fill(0, sector, sector + 512);
      await fs.writeFileSynced(seg, buf);
      assert.deepEqual((await reopen(fs, dir)).entries, range(1, 2, 1));
      assert.equal((await fs.readFile(seg)).length, last);
    });

    t("a last segment cut short below the synced end is refused", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1), range(3, 4, 1), range(5, 6, 1)]);
      const seg = await firstSegment(fs, dir);
      const full = await fs.readFile(seg);
      const last = recordStarts(full).at(-1)!;
      // Whole records removed from the end: looks like a clean end of log, but TAIL says more was synced.
      await fs.writeFileSynced(seg, full.subarray(0, last));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last, /end of the log is missing/);
      // Cut inside the last record: looks like a torn write, but it was synced.
      await fs.writeFileSynced(seg, full.subarray(0, last + 5));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, last + 5, /end of the log is missing/);
    });

    t("a deleted last segment is refused, naming it", async (fs, dir) => {
      const paths = await segmented(fs, dir);
      await fs.remove(paths.at(-1)!);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir, { segmentBytes: 256 })), paths.at(-1)!, 0, /missing/);
    });

    t("a log whose only segment was deleted is refused, not started afresh", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 3, 1)]);
      const seg = await firstSegment(fs, dir);
      await fs.remove(seg);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, 0, /missing/);
    });

    t("a deleted first segment is refused unless compaction covered it", async (fs, dir) => {
      const paths = await segmented(fs, dir);
      const first = await fs.readFile(paths[0]);
      await fs.remove(paths[0]);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir, { segmentBytes: 256 })), paths[0], 0, /missing/);
      // Put back, compacted past it: compaction deletes it, and the log opens.
      await fs.writeFileSynced(paths[0], first);
      const { wal } = await WriteAheadLog.open(fs, dir, { segmentBytes: 256 });
      await wal.compact(20);
      await wal.close();
      assert.equal(await fs.exists(paths[0]), false);
      assert.deepEqual((await reopen(fs, dir, 256)).entries, range(21, 30, 1));
    });

    t("a missing middle segment is refused, naming the segment after the hole", async (fs, dir) => {
      const paths = await segmented(fs, dir);
      await fs.remove(paths[1]);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir, { segmentBytes: 256 })), paths[2], 0, /missing/);
    });

    t("a middle segment cut short at a record boundary is refused", async (fs, dir) => {
      const paths = await segmented(fs, dir);
      const buf = await fs.readFile(paths[1]);
      const last = recordStarts(buf).at(-1)!;
      await fs.writeFileSynced(paths[1], buf.subarray(0, last));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir, { segmentBytes: 256 })), paths[1], last, /records it as/);
    });

    t("a flipped byte in the middle of the first segment is refused, naming file and offset", async (fs, dir) => {
      const paths = await segmented(fs, dir);
      const buf = await fs.readFile(paths[0]);
      const at = Math.floor(buf.length / 2);
      const damaged = buf.slice();
      damaged[at] ^= 0x40;
      await fs.writeFileSynced(paths[0], damaged);
      const err = await rejects(WriteAheadLog.open(fs, dir, { segmentBytes: 256 }));
      const record = recordStarts(buf).findLast((o) => o <= at)!;
      assertCorrupt(err, paths[0], record, /not in the last segment/);
      assert.deepEqual(await fs.readFile(paths[0]), damaged);
    });

    t("a damaged record followed by valid ones in the last segment is refused", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      for (const [from, to] of [[1, 2], [3, 4], [5, 6]]) await wal.append({ entries: range(from, to, 1) });
      await wal.sync();
      await wal.append({ entries: range(7, 8, 1) });
      await wal.close();
      // Damage a record past the synced end, in front of a valid one: not a torn write either.
      const seg = await firstSegment(fs, dir);
      const buf = (await fs.readFile(seg)).slice();
      const starts = recordStarts(buf);
      const damaged = starts.at(-1)!;
      // Make the last record (valid) follow a damaged copy of itself.
      const record = buf.subarray(damaged);
      const bad = record.slice();
      bad[bad.length - 1] ^= 1;
      await fs.writeFileSynced(seg, new Uint8Array([...buf.subarray(0, damaged), ...bad, ...record]));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), seg, damaged, /followed by a valid record/);
    });

    t("a missing or doubly damaged tail witness is refused; one damaged slot falls back", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1), range(3, 4, 1)]);
      const tail = joinPath(walDir(dir), "TAIL");
      const good = await fs.readFile(tail);
      // One slot damaged (as by a write torn by a power loss): the other, older mark still holds.
      for (const at of [4, 64 + 4]) {
        const one = good.slice();
        one[at] ^= 0xff;
        await fs.writeFileSynced(tail, one);
        assert.deepEqual((await reopen(fs, dir)).entries, range(1, 4, 1));
      }
      const both = good.slice();
      both[4] ^= 0xff;
      both[64 + 4] ^= 0xff;
      await fs.writeFileSynced(tail, both);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), tail, 0, /both slots/);
      await fs.writeFileSynced(tail, good.subarray(0, 50));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), tail, 0, /50 bytes/);
      await fs.remove(tail);
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), tail, 0, /missing/);
    });

    t("a stale tail witness (as after a power loss) still replays synced records past it", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1)]);
      const tail = joinPath(walDir(dir), "TAIL");
      const stale = await fs.readFile(tail);
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ entries: range(3, 4, 1) });
      await wal.sync();
      await wal.close();
      await fs.writeFileSynced(tail, stale);
      assert.deepEqual((await reopen(fs, dir)).entries, range(1, 4, 1));
    });

    t("an empty log directory is refused, not taken for a new log", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 2, 1)]);
      for (const n of await fs.readDir(walDir(dir))) await fs.remove(joinPath(walDir(dir), n));
      assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), joinPath(walDir(dir), "TAIL"), 0, /missing/);
    });

    t("a deleted log beside snapshots is refused, and no new log is created", async (fs, dir) => {
      await writeLog(fs, dir, [range(1, 5, 1)]);
      const { wal } = await WriteAheadLog.open(fs, dir);
      await (await FileSnapshotStore.open(fs, dir)).write(
        { index: 5, term: 1, membership: { voters: ["a"], learners: [], outgoing: undefined } },
        [new Uint8Array([1, 2, 3])],
      );
      await wal.close();
      await fs.remove(walDir(dir));
      for (let attempt = 0; attempt < 2; attempt++) {
        assertCorrupt(await rejects(WriteAheadLog.open(fs, dir)), walDir(dir), 0, /log is missing.*snapshots/);
        assert.equal(await fs.exists(walDir(dir)), false);
      }
    });

    t("what a crash leaves while creating the log or rolling a segment is removed", async (fs, dir) => {
      await fs.mkdirp(joinPath(dir, "wal.tmp"));
      await fs.writeFileSynced(joinPath(dir, "wal.tmp", "junk"), new Uint8Array([1, 2, 3]));
      const opened = await WriteAheadLog.open(fs, dir);
      assert.equal(opened.created, true);
      await opened.wal.close();
      assert.equal(await fs.exists(joinPath(dir, "wal.tmp")), false);
      const half = joinPath(walDir(dir), "00000000000000000009.seg.tmp");
      await fs.writeFileSynced(half, new Uint8Array(7));
      const again = await WriteAheadLog.open(fs, dir);
      assert.equal(again.created, false);
      await again.wal.close();
      assert.equal(await fs.exists(half), false);
    });

    for (const [what, code] of [["fsync", "EIO"], ["write", "ENOSPC"]] as const) {
      t(`a failed ${what} (${code}) poisons the log: no retry, every later call refused`, async (real, dir) => {
        const fs = new FaultyFs(real);
        const { wal } = await WriteAheadLog.open(fs, dir);
        try {
          await wal.append({ entries: range(1, 2, 1) });
          await wal.sync();
          fs.faults = what === "fsync" ? { sync: code } : { write: code };
          const failed = what === "fsync"
            ? (await wal.append({ entries: range(3, 4, 1) }), await rejects(wal.sync()))
            : await rejects(wal.append({ entries: range(3, 4, 1) }));
          assert.ok(failed instanceof StorageError, `expected StorageError, got ${failed}`);
          assert.equal((failed.cause as { code?: string }).code, code);
          fs.faults = {};
          const calls = { ...fs.calls };
          // Healthy again, but the log stays failed: a failed fsync's pages may be gone.
          for (const later of [wal.sync(), wal.append({ entries: [entry(5, 1)] }), wal.compact(1)]) {
            const err = await rejects(later);
            assert.ok(err instanceof StorageError && /failed earlier/.test(err.message), `${err}`);
          }
          assert.deepEqual(fs.calls, calls, "no write or fsync after the failure");
        } finally {
          await wal.close();
        }
        // Reopened, it holds what was synced.
        assert.deepEqual((await reopen(real, dir)).entries.slice(0, 2), range(1, 2, 1));
      });
    }
  });
}
