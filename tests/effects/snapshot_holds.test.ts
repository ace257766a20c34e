/**
 * The streams' holds on stored snapshots when the disk fails around them: a
 * replaced snapshot whose removal fails once let go stays behind (the next
 * snapshot stored removes it) and is no reason to stop — it once escaped as
 * an unhandled rejection, which ends a Deno process; and a hold whose file
 * check fails is not left counted, which kept the file for good.
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { FileSnapshotStore } from "../../adapters/storage/snapshots.ts";
import { membershipOf } from "../../core/membership.ts";
import { snapshotStoreFromPort } from "../../effects/ports/mod.ts";
import { ChunkStreams } from "../../effects/runtime/snapshot_io.ts";

const real: DurableFs = "Deno" in globalThis
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

const membership = membershipOf(["a", "b"]);
const settle = () => new Promise((r) => setTimeout(r, 30));

/** Streams over a FileSnapshotStore on `fs` in a new directory; `fatal` collects what they report. */
async function streamsOn(fs: DurableFs) {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-holds-"));
  const store = await FileSnapshotStore.open(fs, dir);
  const fatal: unknown[] = [];
  const streams = new ChunkStreams(
    snapshotStoreFromPort(store),
    { send: () => true, listen: () => {}, setPeers: () => {} },
    1000,
    { unreachable: () => {}, fatal: (e) => void fatal.push(e), streaming: () => undefined },
  );
  const write = (index: number) => store.write({ index, term: 2, membership }, [new Uint8Array(10)]);
  const files = async () => (await fsp.readdir(join(dir, "snapshots"))).filter((f) => f.endsWith(".snap")).sort();
  return { dir, streams, write, files, fatal };
}

test("a replaced snapshot whose removal fails when let go stays behind until the next one, and nothing stops", async () => {
  let failRemove = false;
  const fs: DurableFs = Object.create(real);
  fs.remove = (path: string) =>
    failRemove && path.endsWith("snap-9-2.snap") ? Promise.reject(new Error("EIO: injected")) : real.remove(path);
  const s = await streamsOn(fs);
  try {
    s.streams.offer(await s.write(9)); // the driver's latest, held
    const b = await s.write(40); // 9 replaced: its removal waits for the hold
    failRemove = true;
    s.streams.offer(b); // lets go of 9: the removal fails
    await settle();
    assert.deepEqual(await s.files(), ["snap-40-2.snap", "snap-9-2.snap"]);
    failRemove = false;
    s.streams.offer(await s.write(50));
    await settle();
    assert.deepEqual(await s.files(), ["snap-50-2.snap"], "the next snapshot stored removes what was left");
    assert.deepEqual(s.fatal, []);
  } finally {
    s.streams.stop();
    await fsp.rm(s.dir, { recursive: true, force: true });
  }
});

test("a hold whose file check fails is not left counted", async () => {
  let failExists = 0;
  const fs: DurableFs = Object.create(real);
  fs.exists = (path: string) =>
    failExists-- > 0 && path.endsWith(".snap") ? Promise.reject(new Error("EIO: injected")) : real.exists(path);
  const s = await streamsOn(fs);
  try {
    const a = await s.write(9);
    failExists = 1;
    s.streams.offer(a); // its hold's file check fails
    await settle();
    s.streams.offer(await s.write(40));
    s.streams.stop();
    await settle();
    await s.write(50);
    await settle();
    assert.deepEqual(await s.files(), ["snap-50-2.snap"], "snapshot 9 was pinned by a hold nobody held");
  } finally {
    await fsp.rm(s.dir, { recursive: true, force: true });
  }
});
