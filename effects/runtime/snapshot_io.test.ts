/**
 * Snapshot transfer I/O: what a node going away leaves of a snapshot half
 * received (the follower's intake), and a leader's stream outliving the
 * snapshot it sends (the leader's chunk streams).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { membershipOf } from "../../core/membership.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { FileSnapshotStore } from "../../adapters/storage/snapshots.ts";
import { snapshotStoreFromPort } from "../ports/mod.ts";
import type { InstallSnapshot, Message, SnapshotMeta } from "../../core/types.ts";
import type { ChunkSend } from "../driver/driver.ts";
import { ChunkStreams, type IntakeReports, SnapshotIntake } from "./snapshot_io.ts";

const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

const reports: IntakeReports = { transmit: () => {}, refused: () => {}, installed: () => {} };

test("close() abandons a snapshot half received: its temporary file is closed and removed", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-intake-"));
  try {
    const store = snapshotStoreFromPort(await FileSnapshotStore.open(fs, dir));
    let restored = 0;
    const intake = new SnapshotIntake(store, { restore: () => void restored++ });
    const meta = { index: 9, term: 2, membership: membershipOf(["a", "b"]) };
    const run = (op: Parameters<SnapshotIntake["run"]>[0]) => Effect.runPromise(intake.run(op, reports));
    await run({ op: "begin", meta });
    await run({ op: "write", offset: 0, data: new Uint8Array(100).fill(1) });
    const snaps = join(dir, "snapshots");
    const tmps = async () => (await fsp.readdir(snaps)).filter((n) => n.endsWith(".tmp"));
    assert.equal((await tmps()).length, 1, "receiving into a temporary file");
    await Effect.runPromise(intake.close());
    assert.deepEqual(await tmps(), [], "the half-received snapshot is gone");
    // Closing again, or with nothing being received, is a no-op; a finish after it finds no sink.
    await Effect.runPromise(intake.close());
    await run({ op: "finish", from: "b", meta, checksum: 0 });
    assert.equal(restored, 0);
    assert.equal((await fsp.readdir(snaps)).filter((n) => n.endsWith(".snap")).length, 0);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a stream keeps the snapshot it sends when a newer one is stored mid-stream, and lets go of it when it ends", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-streams-"));
  try {
    const port = await FileSnapshotStore.open(fs, dir);
    const store = snapshotStoreFromPort(port);
    const membership = membershipOf(["a", "b"]);
    const old: SnapshotMeta = { index: 9, term: 2, membership };
    const data = new Uint8Array(4000).map((_, i) => i % 251);
    const stored = await port.write(old, [data]);
    const sent: InstallSnapshot[] = [];
    const unreachable: string[] = [];
    let streaming: SnapshotMeta | undefined = old;
    const streams = new ChunkStreams(
      store,
      {
        send: (m: Message) => sent.push(m as InstallSnapshot) > 0,
        listen: () => {},
        setPeers: () => {},
      },
      1000,
      {
        unreachable: (peer) => void unreachable.push(peer),
        fatal: (e) => assert.fail(`fatal: ${e}`),
        streaming: () => streaming,
      },
    );
    const header = { group: 0, from: "a", to: "b", term: 2 };
    const chunk = (i: number): ChunkSend => ({
      header,
      meta: old,
      chunk: { offset: i * 1000, length: 1000, done: i === 3 },
      checksum: stored.checksum,
    });
    // A burst, sent from a fiber that lives until the stream has sent it (as the loop's does).
    const burst = (chunks: ChunkSend[], total: number) =>
      Effect.runPromise(Effect.andThen(
        streams.send(chunks),
        Effect.promise(async () => {
          for (let i = 0; i < 200 && sent.length < total && unreachable.length === 0; i++) {
            await new Promise((r) => setTimeout(r, 5));
          }
        }),
      ));
    const snaps = async () => (await fsp.readdir(join(dir, "snapshots"))).sort();
    await burst([chunk(0), chunk(1)], 2);
    assert.equal(sent.length, 2);
    // The leader stores a newer snapshot between two bursts (the window is waiting for answers).
    await port.write({ index: 40, term: 2, membership }, [new Uint8Array(10)]);
    assert.deepEqual(await snaps(), ["snap-40-2.snap", "snap-9-2.snap"], "the one being sent is kept");
    streams.sweep(); // The stream goes on: nothing to let go of.
    await burst([chunk(2), chunk(3)], 4);
    assert.deepEqual(unreachable, [], "the stream was not cut off");
    assert.equal(sent.length, 4);
    const received = new Uint8Array(4000);
    for (const m of sent) received.set(m.data, m.offset);
    assert.deepEqual(received, data, "every chunk is the old snapshot's");
    // The driver ends the stream (the follower installed it): the replaced snapshot goes.
    streaming = undefined;
    for (let i = 0; i < 50 && streams.active; i++) {
      streams.sweep();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(streams.active, false);
    assert.deepEqual(await snaps(), ["snap-40-2.snap"]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
