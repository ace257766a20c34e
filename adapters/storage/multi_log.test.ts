/**
 * The log of many groups on the runtime's own files: each group's state comes
 * back as written, per-group compaction, checkpoints letting the shared log
 * drop old segments, removed groups, and damage refused.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../../core/types.ts";
import { CorruptLogError, type DurableFs } from "./fs.ts";
import { MultiGroupLog } from "./multi_log.ts";

const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../deno/fs.ts")).DenoFs()
  : new (await import("../bun/fs.ts")).BunFs();

function entries(from: number, to: number, term: number, group: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ index: i, term, kind: "command", data: new TextEncoder().encode(`g${group}e${i}`), config: undefined });
  }
  return out;
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-multi-log-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

test("each group's hard state, entries, truncation and compaction survive a reopen", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir);
    assert.equal(log.load().size, 0);
    await log.write([
      { group: 1, batch: { hardState: { term: 1, vote: "a", commit: 0 }, entries: entries(1, 3, 1, 1) } },
      { group: 2, batch: { hardState: { term: 4, vote: "b", commit: 0 }, entries: entries(1, 2, 4, 2) } },
    ]);
    await log.write([
      { group: 1, batch: { truncateFrom: 3, entries: entries(3, 4, 2, 1) } },
      { group: 2, compactTo: 1 },
    ]);
    await log.sync();
    await log.close();
    const again = await MultiGroupLog.open(fs, dir);
    const r = again.load();
    assert.deepEqual(r.get(1)!.hardState, { term: 1, vote: "a", commit: 0 });
    assert.deepEqual(r.get(1)!.entries.map((e) => `${e.index}@${e.term}`), ["1@1", "2@1", "3@2", "4@2"]);
    assert.deepEqual(r.get(2)!.entries.map((e) => e.index), [2]);
    assert.equal(r.get(2)!.firstIndex, 2);
    assert.deepEqual(new TextDecoder().decode(r.get(2)!.entries[0]!.data), "g2e2");
    await again.close();
  }));

test("checkpoints move the groups' pins forward, and the shared log drops the segments behind them", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir, { segmentBytes: 1024 });
    log.load();
    let last = 0;
    for (let i = 1; i <= 200; i++) {
      await log.write([{ group: 1, batch: { entries: entries(i, i, 1, 1) } }, {
        group: 2,
        batch: { entries: entries(i, i, 1, 2) },
      }]);
      await log.sync();
      last = i;
    }
    assert.deepEqual(log.pinning(10, 8).sort(), [1, 2]);
    const segmentsBefore = (await fsp.readdir(join(dir, "wal"))).filter((n) => n.endsWith(".seg")).length;
    assert.ok(segmentsBefore > 3);
    // Group 1 compacted behind a snapshot at 195; both checkpoint what they hold.
    await log.write([
      { group: 1, compactTo: 195 },
      {
        group: 1,
        checkpoint: { hardState: { term: 1, vote: "a", commit: last }, offset: 195, entries: entries(196, last, 1, 1) },
      },
      {
        group: 2,
        checkpoint: { hardState: { term: 1, vote: "a", commit: last }, offset: 0, entries: entries(1, last, 1, 2) },
      },
    ]);
    await log.write([{ group: 1, batch: { entries: entries(last + 1, last + 1, 1, 1) } }]);
    await log.sync();
    assert.deepEqual(log.pinning(2, 8), [], "both pinned at the checkpoint, two records back");
    const segmentsAfter = (await fsp.readdir(join(dir, "wal"))).filter((n) => n.endsWith(".seg")).length;
    assert.ok(segmentsAfter < segmentsBefore, `${segmentsAfter} segments, ${segmentsBefore} before`);
    await log.close();
    const reopened = await MultiGroupLog.open(fs, dir);
    const r = reopened.load();
    await reopened.close();
    assert.deepEqual(r.get(1)!.entries.map((e) => e.index), [196, 197, 198, 199, 200, 201]);
    assert.equal(r.get(2)!.entries.length, 200);
    assert.equal(r.get(1)!.hardState.commit, 200);
  }));

test("a removed group is gone after a reopen, and may be added again from nothing", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir);
    log.load();
    await log.write([{ group: 7, batch: { entries: entries(1, 5, 1, 7) } }, {
      group: 8,
      batch: { entries: entries(1, 1, 1, 8) },
    }]);
    await log.write([{ group: 7, remove: true }]);
    await log.sync();
    await log.close();
    const again = await MultiGroupLog.open(fs, dir);
    assert.deepEqual([...again.load().keys()], [8]);
    await again.write([{ group: 7, batch: { entries: entries(1, 1, 3, 7) } }]);
    await again.sync();
    await again.close();
    const reopened = await MultiGroupLog.open(fs, dir);
    const r = reopened.load();
    await reopened.close();
    assert.deepEqual(r.get(7)!.entries.map((e) => `${e.index}@${e.term}`), ["1@3"]);
  }));

test("a flipped byte in a synced record is refused, naming the file", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir);
    log.load();
    await log.write([{ group: 1, batch: { entries: entries(1, 20, 1, 1) } }]);
    await log.write([{ group: 1, batch: { entries: entries(21, 21, 1, 1) } }]);
    await log.sync();
    await log.close();
    const seg = (await fsp.readdir(join(dir, "wal"))).find((n) => n.endsWith(".seg"))!;
    const path = join(dir, "wal", seg);
    const bytes = await fsp.readFile(path);
    bytes[80] ^= 0x01;
    await fsp.writeFile(path, bytes);
    await assert.rejects(MultiGroupLog.open(fs, dir), (e: unknown) =>
      e instanceof CorruptLogError && e.message.includes(seg));
  }));

test("a group entry that does not continue its log is damage", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir);
    log.load();
    await log.write([{ group: 1, batch: { entries: entries(1, 2, 1, 1) } }]);
    await log.write([{ group: 1, batch: { entries: entries(5, 5, 1, 1) } }]);
    await log.sync();
    await log.close();
    await assert.rejects(MultiGroupLog.open(fs, dir), (e: unknown) =>
      e instanceof CorruptLogError && /does not continue/.test(e.message));
  }));

test("a group's writes before its checkpoint are moot: the shared log may drop them half, replay still recovers", () =>
  withDir(async (dir) => {
    const log = await MultiGroupLog.open(fs, dir);
    log.load();
    const hard = { term: 1, vote: "a", commit: 0 };
    await log.write([{ group: 1, batch: { hardState: hard, entries: entries(1, 2, 1, 1) } }]);
    await log.write([
      { group: 2, batch: { hardState: hard, entries: entries(1, 1, 1, 2) } },
      { group: 1, batch: { entries: entries(3, 3, 1, 1) } },
    ]);
    // Group 2 checkpoints first, then group 1 (after its write in the same record, as the host does).
    await log.write([{ group: 2, checkpoint: { hardState: hard, offset: 0, entries: entries(1, 1, 1, 2) } }]);
    await log.write([
      { group: 1, batch: { entries: entries(4, 4, 1, 1) } },
      { group: 1, compactTo: 2 },
      { group: 1, checkpoint: { hardState: hard, offset: 2, entries: entries(3, 4, 1, 1) } },
    ]);
    await log.sync();
    // Oldest checkpoint: group 2's, record 3. Records 1 and 2 are gone, record 2's group 1 write with them.
    assert.deepEqual([...log.pins].sort(), [[1, 4], [2, 3]]);
    await log.close();
    const again = await MultiGroupLog.open(fs, dir);
    const r = again.load();
    assert.deepEqual(r.get(1)!.entries.map((e) => e.index), [3, 4]);
    assert.equal(r.get(1)!.firstIndex, 3);
    assert.deepEqual(r.get(2)!.entries.map((e) => e.index), [1]);
    await again.close();
  }));
