/**
 * Contract tests of the write-ahead log and the snapshot store over a
 * {@link DurableFs}. A runner calls {@link walContract} and
 * {@link snapshotContract} with its runtime's implementation.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Entry, HardState, SnapshotMeta } from "../../core/types.ts";
import { CorruptLogError, DataDirLockedError, type DurableFs, joinPath } from "../../adapters/storage/fs.ts";
import type { RecoveredLog } from "../../effects/ports/mod.ts";
import { WriteAheadLog } from "../../adapters/storage/wal.ts";
import { FileSnapshotStore } from "../../adapters/storage/snapshots.ts";
import { crc32c } from "../../core/crc32c.ts";
import { SnapshotChecksumMismatch } from "../../effects/errors.ts";
import { type ContractOptions, fsTest, withTmp } from "./durable_fs.ts";

/** A command entry whose data names its index and term. */
export function entry(index: number, term: number, size = 0): Entry {
  const data = new TextEncoder().encode(`e${index}t${term}` + "x".repeat(size));
  return { index, term, kind: "command", data, config: undefined };
}

/** Entries `from..to` of `term`. */
export function range(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

/** The log directory inside data directory `dir`. */
export const walDir = (dir: string): string => joinPath(dir, "wal");

/** The segment file names of the log in `dir`, in order. */
export async function segments(fs: DurableFs, dir: string): Promise<string[]> {
  return (await fs.readDir(walDir(dir))).filter((n) => n.endsWith(".seg")).sort();
}

/** Writes `batches` (one append each), syncs and closes. */
export async function writeLog(fs: DurableFs, dir: string, batches: Entry[][], hs?: HardState): Promise<void> {
  const { wal } = await WriteAheadLog.open(fs, dir);
  for (const entries of batches) await wal.append({ entries, hardState: hs });
  await wal.sync();
  await wal.close();
}

/** Opens and closes the log in `dir`, returning what it recovered. */
export async function reopen(fs: DurableFs, dir: string, segmentBytes?: number): Promise<RecoveredLog> {
  const opened = await WriteAheadLog.open(fs, dir, { segmentBytes });
  await opened.wal.close();
  return opened.recovered;
}

/** The error `p` rejects with (fails the test if it resolves). */
export async function rejects(p: Promise<unknown>): Promise<unknown> {
  return await p.then(() => assert.fail("expected a rejection"), (e: unknown) => e);
}

/** Registers the write-ahead log contract suite. */
export function walContract(
  name: string,
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
  options: ContractOptions = {},
): void {
  const t = fsTest(makeFs, tmpDir);

  describe(`WriteAheadLog contract: ${name}`, { skip: options.skip }, () => {
    t("a new log is empty, starts at index 1 with a zero hard state", async (fs, dir) => {
      const r = await reopen(fs, dir);
      assert.deepEqual(r, { hardState: { term: 0, vote: undefined, commit: 0 }, entries: [], firstIndex: 1 });
    });

    t("append, sync, reopen returns the same entries and the latest hard state", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ hardState: { term: 1, vote: "a", commit: 0 }, entries: range(1, 3, 1) });
      await wal.append({ entries: [entry(4, 1, 300)] });
      await wal.append({ hardState: { term: 2, vote: undefined, commit: 3 }, entries: range(5, 6, 2) });
      await wal.sync();
      assert.equal(wal.lastIndex, 6);
      await wal.close();
      const r = await reopen(fs, dir);
      assert.deepEqual(r.entries, [...range(1, 3, 1), entry(4, 1, 300), ...range(5, 6, 2)]);
      assert.deepEqual(r.hardState, { term: 2, vote: undefined, commit: 3 });
      assert.equal(r.firstIndex, 1);
      assert.equal((await segments(fs, dir)).length, 1);
    });

    t("one append is one write call and one sync is one fsync, whatever the batch size", async (fs, dir) => {
      const calls = { write: 0, sync: 0 };
      const counting: DurableFs = Object.assign(Object.create(fs) as DurableFs, {
        openAppend: async (path: string) => {
          const f = await fs.openAppend(path);
          return {
            write: (b: Uint8Array) => (calls.write++, f.write(b)),
            sync: () => (calls.sync++, f.sync()),
            close: () => f.close(),
          };
        },
      });
      const { wal } = await WriteAheadLog.open(counting, dir);
      try {
        await wal.append({ hardState: { term: 1, vote: "a", commit: 0 }, truncateFrom: 1, entries: range(1, 64, 1) });
        await wal.sync();
        assert.deepEqual(calls, { write: 1, sync: 1 });
      } finally {
        await wal.close();
      }
      assert.equal((await reopen(fs, dir)).entries.length, 64);
    });

    t("an entry that does not continue the log is refused and nothing is written", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      try {
        await wal.append({ entries: range(1, 2, 1) });
        assert.ok((await rejects(wal.append({ entries: [entry(4, 1)] }))) instanceof RangeError);
        assert.ok((await rejects(wal.append({ entries: [entry(2, 1)] }))) instanceof RangeError);
        await wal.append({ entries: [entry(3, 1)] });
        await wal.sync();
      } finally {
        await wal.close();
      }
      assert.deepEqual((await reopen(fs, dir)).entries, range(1, 3, 1));
    });

    t("truncation then append replaces the tail, also across reopen", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ entries: range(1, 5, 1) });
      await wal.append({ truncateFrom: 3, entries: range(3, 4, 2), hardState: { term: 2, vote: "b", commit: 2 } });
      await wal.sync();
      await wal.close();
      let r = await reopen(fs, dir);
      assert.deepEqual(r.entries, [...range(1, 2, 1), ...range(3, 4, 2)]);
      assert.deepEqual(r.hardState, { term: 2, vote: "b", commit: 2 });

      const again = await WriteAheadLog.open(fs, dir);
      assert.equal(again.wal.lastIndex, 4);
      await again.wal.append({ truncateFrom: 2, entries: [entry(2, 3)] });
      await again.wal.append({ entries: [entry(3, 3)] });
      await again.wal.sync();
      await again.wal.close();
      r = await reopen(fs, dir);
      assert.deepEqual(r.entries, [entry(1, 1), entry(2, 3), entry(3, 3)]);
    });

    t("segments roll at segmentBytes and replay in order", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir, { segmentBytes: 256 });
      for (let i = 1; i <= 100; i += 4) await wal.append({ entries: range(i, i + 3, 1) });
      await wal.append({ truncateFrom: 90, entries: range(90, 95, 2) });
      await wal.sync();
      assert.ok(wal.segmentCount > 3, `expected several segments, got ${wal.segmentCount}`);
      await wal.close();
      const names = await segments(fs, dir);
      assert.equal(names[0], "00000000000000000001.seg");
      const r = await reopen(fs, dir, 256);
      assert.deepEqual(r.entries, [...range(1, 89, 1), ...range(90, 95, 2)]);
    });

    t("compaction deletes old segments and reopen starts after the compaction point", async (fs, dir) => {
      const hs = { term: 1, vote: "a", commit: 60 };
      const { wal } = await WriteAheadLog.open(fs, dir, { segmentBytes: 1024 });
      await wal.append({ hardState: hs, entries: [] });
      for (let i = 1; i <= 100; i += 4) await wal.append({ entries: range(i, i + 3, 1) });
      await wal.sync();
      const before = await segments(fs, dir);
      await wal.compact(60);
      const after = await segments(fs, dir);
      assert.ok(after.length < before.length, `${before.length} segments before, ${after.length} after`);
      assert.equal(after[after.length - 1], before[before.length - 1], "the active segment stays");
      assert.equal(wal.compactedIndex, 60);
      await wal.append({ entries: [entry(101, 1)] });
      await wal.sync();
      await wal.close();
      const r = await reopen(fs, dir, 1024);
      assert.equal(r.firstIndex, 61);
      assert.deepEqual(r.entries, range(61, 101, 1));
      // The hard state was in the first (deleted) segment and must survive.
      assert.deepEqual(r.hardState, hs);
    });

    t("compaction beyond the last entry leaves an empty log that continues after it", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      await wal.append({ entries: range(1, 5, 1) });
      await wal.compact(10);
      assert.ok((await rejects(wal.append({ truncateFrom: 10, entries: [] }))) instanceof RangeError);
      await wal.close();
      const r = await reopen(fs, dir);
      assert.deepEqual(r.entries, []);
      assert.equal(r.firstIndex, 11);
      const again = await WriteAheadLog.open(fs, dir);
      await again.wal.append({ entries: [entry(11, 2)] });
      await again.wal.sync();
      await again.wal.close();
      assert.deepEqual((await reopen(fs, dir)).entries, [entry(11, 2)]);
    });

    t("a second open of the same directory is refused while the first is open", async (fs, dir) => {
      const { wal } = await WriteAheadLog.open(fs, dir);
      try {
        assert.ok((await rejects(WriteAheadLog.open(makeFs(), dir))) instanceof DataDirLockedError);
      } finally {
        await wal.close();
      }
      await (await WriteAheadLog.open(fs, dir)).wal.close();
    });

    const spawn = options.spawnLockHolder;
    test("open is refused with DataDirLockedError while another process holds the directory", {
      skip: spawn === undefined,
    }, () =>
      withTmp(makeFs, tmpDir, async (fs, dir) => {
        const holder = await spawn!(dir);
        try {
          const err = await rejects(WriteAheadLog.open(fs, dir));
          assert.ok(err instanceof DataDirLockedError, `expected DataDirLockedError, got ${err}`);
          assert.equal(err.pid, holder.pid);
          assert.match(err.message, new RegExp(`\\(pid ${holder.pid}\\)`));
        } finally {
          await holder.kill();
        }
        await (await WriteAheadLog.open(fs, dir)).wal.close();
      }));
  });
}

const META: SnapshotMeta = {
  index: 10,
  term: 2,
  membership: { voters: ["a", "b", "c"], learners: [], outgoing: undefined },
};

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/** Registers the snapshot store contract suite. */
export function snapshotContract(
  name: string,
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
  options: ContractOptions = {},
): void {
  const t = fsTest(makeFs, tmpDir);
  const snapDir = (dir: string): string => joinPath(dir, "snapshots");

  describe(`FileSnapshotStore contract: ${name}`, { skip: options.skip }, () => {
    t("an empty store has no latest snapshot", async (fs, dir) => {
      assert.equal(await (await FileSnapshotStore.open(fs, dir)).latest(), undefined);
    });

    t("write computes the data's checksum; a reopened store reads it back", async (fs, dir) => {
      const data = pattern(5000);
      const written = await (await FileSnapshotStore.open(fs, dir)).write(META, [
        data.subarray(0, 1234),
        data.subarray(1234),
      ]);
      assert.equal(written.checksum, crc32c(data));
      assert.equal((await (await FileSnapshotStore.open(fs, dir)).latest())?.checksum, crc32c(data));
    });

    t("write streams chunks; latest and read return them, also from an offset", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      const data = pattern(10_000);
      async function* chunks() {
        for (let o = 0; o < data.length; o += 3000) yield data.subarray(o, o + 3000);
      }
      await store.write(META, chunks());
      const again = await FileSnapshotStore.open(fs, dir);
      const s = await again.latest();
      assert.ok(s);
      assert.deepEqual(s.meta, META);
      assert.equal(s.size, data.length);
      assert.deepEqual(await collect(s.read()), data);
      assert.deepEqual(await collect(s.read(4321, 1000)), data.subarray(4321));
      const sizes: number[] = [];
      for await (const c of s.read(0, 4096)) sizes.push(c.length);
      assert.deepEqual(sizes, [4096, 4096, 1808]);
    });

    t("a newer snapshot replaces older ones on disk", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      await store.write(META, [pattern(10)]);
      const newer = { ...META, index: 20, term: 3 };
      await store.write(newer, [pattern(5)]);
      const s = await store.latest();
      assert.deepEqual(s?.meta, newer);
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-20-3.snap"]);
    });

    t("a retained snapshot outlives its replacement until its last holder lets go", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      const data = pattern(9000);
      const old = await store.write(META, [data]);
      const first = (await old.retain!())!;
      const second = (await (await store.latest())!.retain!())!;
      const newer = { ...META, index: 20, term: 3 };
      await store.write(newer, [pattern(5)]);
      assert.deepEqual((await store.latest())?.meta, newer, "the newer one is current");
      assert.deepEqual((await fs.readDir(snapDir(dir))).sort(), ["snap-10-2.snap", "snap-20-3.snap"]);
      // Still whole and checked: a read from the start verifies it against its checksum.
      assert.deepEqual(await collect(old.read(0, 1000)), data);
      await first();
      await first(); // A second call of the same release is no second let-go.
      assert.deepEqual((await fs.readDir(snapDir(dir))).sort(), ["snap-10-2.snap", "snap-20-3.snap"]);
      await second();
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-20-3.snap"], "removed at the last release");
      // Releasing the current snapshot removes nothing.
      await (await (await store.latest())!.retain!())!();
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-20-3.snap"]);
      // A snapshot replaced before the hold was taken cannot be held.
      const gone = (await store.latest())!;
      await store.write({ ...META, index: 30, term: 3 }, [pattern(5)]);
      assert.equal(await gone.retain!(), undefined);
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-30-3.snap"]);
    });

    t(
      "latest: a newer snapshot landing between the listing and the open is a replacement, not damage",
      async (fs, dir) => {
        const store = await FileSnapshotStore.open(fs, dir);
        await store.write(META, [pattern(10)]);
        const newer = { ...META, index: 20, term: 3 };
        // The store lists snap-10-2, then (before it opens that file) a newer snapshot is written and
        // the old one removed, as when the state machine's snapshot finishes during a stream's start.
        let raced = false;
        const openRead = async (path: string) => {
          if (!raced && path.endsWith("snap-10-2.snap")) {
            raced = true;
            await (await FileSnapshotStore.open(fs, dir)).write(newer, [pattern(5)]);
          }
          return await fs.openRead(path);
        };
        const racing = new Proxy(fs, {
          get(target, key) {
            if (key === "openRead") return openRead;
            const v = Reflect.get(target, key);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
        const s = await (await FileSnapshotStore.open(racing, dir)).latest();
        assert.ok(raced, "the race was staged");
        assert.deepEqual(s?.meta, newer);
        assert.deepEqual(await collect(s!.read()), pattern(5));
        // A listed file that is still there but unreadable stays an error (damage is never skipped).
        await fs.writeFileSynced(joinPath(snapDir(dir), "snap-30-3.snap"), new Uint8Array(3));
        assert.ok(await rejects(store.latest()) instanceof CorruptLogError);
      },
    );

    t("receive: chunks at the wrong offset are refused with the expected offset; finish installs", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      const data = pattern(300);
      const rx = await store.receive(META);
      assert.deepEqual(await rx.writeChunk(0, data.subarray(0, 100)), { accepted: true, expected: 100 });
      assert.deepEqual(await rx.writeChunk(200, data.subarray(200)), { accepted: false, expected: 100 });
      assert.deepEqual(await rx.writeChunk(0, data.subarray(0, 100)), { accepted: false, expected: 100 });
      assert.deepEqual(await rx.writeChunk(100, data.subarray(100)), { accepted: true, expected: 300 });
      assert.equal(await store.latest(), undefined, "not visible before finish");
      const s = await rx.finish(crc32c(data));
      assert.equal(s.size, 300);
      assert.equal(s.checksum, crc32c(data));
      const latest = (await store.latest())!;
      assert.equal(latest.checksum, crc32c(data), "the checksum is stored with it");
      assert.deepEqual(await collect(latest.read()), data);
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-10-2.snap"]);
    });

    t(
      "finish refuses bytes that do not match the sender's checksum, or none: nothing current, nothing left",
      async (fs, dir) => {
        const store = await FileSnapshotStore.open(fs, dir);
        await store.write(META, [pattern(10)]);
        const data = pattern(300);
        for (const wrong of [crc32c(data) ^ 0x100, undefined]) {
          const rx = await store.receive({ ...META, index: 20 });
          await rx.writeChunk(0, data);
          const err = await rejects(rx.finish(wrong));
          assert.ok(err instanceof SnapshotChecksumMismatch, `expected SnapshotChecksumMismatch, got ${err}`);
          assert.equal(err.actual, crc32c(data));
          assert.deepEqual((await store.latest())?.meta, META, "the older snapshot is still current");
          assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-10-2.snap"]);
        }
      },
    );

    t("abort leaves nothing behind", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      const rx = await store.receive(META);
      await rx.writeChunk(0, pattern(50));
      await rx.abort();
      assert.deepEqual(await fs.readDir(snapDir(dir)), []);
      assert.equal(await store.latest(), undefined);
    });

    t("temporary files left by a crash are removed on open", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      await store.write(META, [pattern(10)]);
      const rx = await store.receive({ ...META, index: 30 });
      await rx.writeChunk(0, pattern(10));
      // "Crash": reopen without finishing.
      const reopened = await FileSnapshotStore.open(fs, dir);
      assert.deepEqual(await fs.readDir(snapDir(dir)), ["snap-10-2.snap"]);
      assert.deepEqual((await reopened.latest())?.meta, META);
      await rx.abort();
    });

    t(
      "a flipped or zeroed data byte fails the read from the start before its last chunk, naming the file",
      async (fs, dir) => {
        const store = await FileSnapshotStore.open(fs, dir);
        const data = pattern(10_000);
        await store.write(META, [data]);
        const p = joinPath(snapDir(dir), "snap-10-2.snap");
        const good = await fs.readFile(p);
        const dataStart = good.length - data.length - 24;
        for (
          const damage of [
            (b: Uint8Array) => (b[dataStart + 7000] ^= 0x04),
            (b: Uint8Array) => b.fill(0, dataStart + 100, dataStart + 600),
          ]
        ) {
          const buf = good.slice();
          damage(buf);
          await fs.writeFileSynced(p, buf);
          const s = (await store.latest())!; // the header and trailer are fine
          const got: Uint8Array[] = [];
          const err = await rejects((async () => {
            for await (const c of s.read(0, 4096)) got.push(c);
          })());
          assert.ok(err instanceof CorruptLogError, `expected CorruptLogError, got ${err}`);
          assert.equal(err.file, p);
          assert.equal(err.offset, dataStart);
          assert.match(err.reason, /checksum mismatch/);
          assert.equal(got.length, 2, "the last chunk is never handed out");
          // Unchecked when the caller checksums what it reads itself (a leader's stream): every byte, as stored.
          const unchecked: Uint8Array[] = [];
          for await (const c of s.read(0, 4096, false)) unchecked.push(c);
          const all = new Uint8Array(unchecked.reduce((n, c) => n + c.length, 0));
          unchecked.reduce((at, c) => (all.set(c, at), at + c.length), 0);
          assert.deepEqual(all, new Uint8Array(buf.subarray(dataStart, dataStart + data.length)));
        }
      },
    );

    t("a snapshot file cut short, or with a damaged trailer, is refused", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      await store.write(META, [pattern(1000)]);
      const p = joinPath(snapDir(dir), "snap-10-2.snap");
      const good = await fs.readFile(p);
      for (
        const [bytes, why] of [
          [good.subarray(0, good.length - 10), /trailer/],
          [good.subarray(0, good.length - 500), /trailer/],
          [
            (() => {
              const b = good.slice();
              b[b.length - 10] ^= 1; // the recorded checksum
              return b;
            })(),
            /trailer/,
          ],
        ] as const
      ) {
        await fs.writeFileSynced(p, bytes);
        const err = await rejects(store.latest());
        assert.ok(err instanceof CorruptLogError, `expected CorruptLogError, got ${err}`);
        assert.equal(err.file, p);
        assert.match(err.reason, why);
      }
    });

    t("a damaged header is a CorruptLogError", async (fs, dir) => {
      const store = await FileSnapshotStore.open(fs, dir);
      await store.write(META, [pattern(100)]);
      const p = joinPath(snapDir(dir), "snap-10-2.snap");
      const buf = (await fs.readFile(p)).slice();
      buf[18] ^= 0x10; // inside the encoded meta
      await fs.writeFileSynced(p, buf);
      const err = await rejects(store.latest());
      assert.ok(err instanceof CorruptLogError, `expected CorruptLogError, got ${err}`);
      assert.equal(err.file, p);
      buf[18] ^= 0x10;
      buf[0] = 0;
      await fs.writeFileSynced(p, buf);
      assert.match(((await rejects(store.latest())) as Error).message, /magic/);
    });
  });
}
