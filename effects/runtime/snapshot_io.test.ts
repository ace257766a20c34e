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
import { crc32c } from "../../core/crc32c.ts";
import type { SnapshotReader } from "../ports/mod.ts";
import type { ChunkSend } from "../driver/driver.ts";
import { ChunkStreams, type IntakeReports, SnapshotIntake } from "./snapshot_io.ts";

const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

const reports: IntakeReports = { refused: () => {}, installed: () => {} };

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

/** A state machine whose streamed restores are recorded. */
function streaming(snapDir: string, options: { failWrite?: boolean } = {}) {
  const log: string[] = [];
  const fed: Uint8Array[] = [];
  let restored: Uint8Array | undefined;
  const sm = {
    restore: async (r: SnapshotReader) => {
      restored = await r.bytes();
      log.push("restore");
    },
    beginRestore: (meta: SnapshotMeta) => {
      log.push(`begin ${meta.index}`);
      return {
        write: (chunk: Uint8Array) => {
          if (options.failWrite) throw new Error("cannot decode");
          fed.push(chunk);
        },
        commit: async () => {
          const names = await fsp.readdir(snapDir);
          log.push(`commit (stored: ${names.filter((n) => n.endsWith(".snap")).join(",")})`);
        },
        discard: () => void log.push("discard"),
      };
    },
  };
  return { sm, log, fed, restored: () => restored };
}

test("a streamed restore takes each accepted chunk, commits once the snapshot is durable, and is discarded otherwise", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-intake-"));
  try {
    const store = snapshotStoreFromPort(await FileSnapshotStore.open(fs, dir));
    const snapDir = join(dir, "snapshots");
    const meta = { index: 9, term: 2, membership: membershipOf(["a", "b"]) };
    const a = new Uint8Array(100).fill(1);
    const b = new Uint8Array(50).fill(2);
    const checksum = crc32c(b, crc32c(a));
    const events: string[] = [];
    const reports: IntakeReports = {
      refused: (_from, _meta, reason) => void events.push(`refused: ${reason}`),
      installed: (info) => void events.push(`installed ${info.meta.index}`),
    };
    const { sm, log, fed } = streaming(snapDir);
    const intake = new SnapshotIntake(store, sm);
    const run = (op: Parameters<SnapshotIntake["run"]>[0]) => Effect.runPromise(intake.run(op, reports));
    // A refused checksum: the streamed restore is dropped, nothing is installed.
    await run({ op: "begin", meta });
    await run({ op: "write", offset: 0, data: a });
    await run({ op: "write", offset: 0, data: a }); // a duplicate the store does not accept: not fed again
    await run({ op: "write", offset: 100, data: b });
    assert.deepEqual(fed, [a, b]);
    assert.notEqual(fed[0]!.buffer, a.buffer, "the restore is given copies");
    await run({ op: "finish", from: "b", meta, checksum: checksum ^ 1 });
    assert.deepEqual(log, ["begin 9", "discard"]);
    assert.match(events[0]!, /^refused/);
    // The leader's bytes: committed after the store made them current (the file is there), then reported.
    fed.length = 0;
    await run({ op: "begin", meta });
    await run({ op: "write", offset: 0, data: a });
    await run({ op: "write", offset: 100, data: b });
    await run({ op: "finish", from: "b", meta, checksum });
    assert.deepEqual(log.slice(2), ["begin 9", "commit (stored: snap-9-2.snap)"]);
    assert.deepEqual(events.slice(1), ["installed 9"]);
    // A new leader's transfer (abort) and a node going away (close) discard a restore under way.
    await run({ op: "begin", meta: { ...meta, index: 12 } });
    await run({ op: "abort" });
    await run({ op: "begin", meta: { ...meta, index: 13 } });
    await Effect.runPromise(intake.close());
    assert.deepEqual(log.slice(4), ["begin 12", "discard", "begin 13", "discard"]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a streamed restore that refuses a chunk is dropped; the verified snapshot is restored whole", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-intake-"));
  try {
    const store = snapshotStoreFromPort(await FileSnapshotStore.open(fs, dir));
    const meta = { index: 9, term: 2, membership: membershipOf(["a", "b"]) };
    const data = new Uint8Array(300).map((_, i) => i % 7);
    const { sm, log, restored } = streaming(join(dir, "snapshots"), { failWrite: true });
    const intake = new SnapshotIntake(store, sm);
    const installed: number[] = [];
    const run = (op: Parameters<SnapshotIntake["run"]>[0]) =>
      Effect.runPromise(intake.run(op, { ...reports, installed: (i) => void installed.push(i.meta.index) }));
    await run({ op: "begin", meta });
    await run({ op: "write", offset: 0, data: data.subarray(0, 200) });
    await run({ op: "write", offset: 200, data: data.subarray(200) });
    await run({ op: "finish", from: "b", meta, checksum: crc32c(data) });
    assert.deepEqual(log, ["begin 9", "discard", "restore"]);
    assert.deepEqual(restored(), data);
    assert.deepEqual(installed, [9]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a chunk queued while a stream's round is finishing is sent by that round, not left until the next", async () => {
  const membership = membershipOf(["a", "b"]);
  const meta: SnapshotMeta = { index: 9, term: 2, membership };
  const data = new Uint8Array(2000).map((_, i) => i % 13);
  // Closing the reader (at the end of each round) waits on a gate the test holds.
  let openGate: () => void = () => {};
  let closing = Promise.resolve();
  const stored = {
    meta,
    size: data.length,
    checksum: crc32c(data),
    read: (offset = 0, chunkBytes = 1000) => ({
      async *[Symbol.asyncIterator]() {
        try {
          for (let at = offset; at < data.length; at += chunkBytes) yield data.slice(at, at + chunkBytes);
        } finally {
          await closing;
        }
      },
    }),
  };
  const store = { latest: Effect.succeed(stored) } as unknown as Parameters<typeof snapshotStoreFromPort>[0];
  const sent: number[] = [];
  const streams = new ChunkStreams(
    store as never,
    {
      send: (m: Message) => sent.push((m as InstallSnapshot).offset) > 0,
      listen: () => {},
      setPeers: () => {},
    },
    1000,
    { unreachable: () => assert.fail("unreachable"), fatal: (e) => assert.fail(`${e}`), streaming: () => meta },
  );
  const chunk = (i: number): ChunkSend => ({
    header: { group: 0, from: "a", to: "b", term: 2 },
    meta,
    chunk: { offset: i * 1000, length: 1000, done: i === 1 },
    checksum: stored.checksum,
  });
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  closing = new Promise<void>((resolve) => openGate = resolve);
  await Effect.runPromise(Effect.gen(function* () {
    yield* streams.send([chunk(0)]);
    yield* Effect.promise(() => until(() => sent.length === 1));
    // The round has sent chunk 0 and is closing its reader (held): chunk 1 arrives now.
    yield* streams.send([chunk(1)]);
    openGate();
    yield* Effect.promise(() => until(() => sent.length === 2));
  }));
  assert.deepEqual(sent, [0, 1000]);
});

test("a stopped node's streams let go of the snapshots they hold", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-streams-"));
  try {
    const port = await FileSnapshotStore.open(fs, dir);
    const membership = membershipOf(["a", "b"]);
    const old: SnapshotMeta = { index: 9, term: 2, membership };
    const stored = await port.write(old, [new Uint8Array(3000).fill(5)]);
    let sent = 0;
    const streams = new ChunkStreams(
      snapshotStoreFromPort(port),
      {
        send: () => ++sent > 0,
        listen: () => {},
        setPeers: () => {},
      },
      1000,
      { unreachable: () => {}, fatal: (e) => assert.fail(`${e}`), streaming: () => old },
    );
    await Effect.runPromise(Effect.andThen(
      streams.send([{
        header: { group: 0, from: "a", to: "b", term: 2 },
        meta: old,
        chunk: { offset: 0, length: 1000, done: false },
        checksum: stored.checksum,
      }]),
      Effect.promise(async () => {
        for (let i = 0; i < 200 && sent === 0; i++) await new Promise((r) => setTimeout(r, 5));
      }),
    ));
    await port.write({ index: 40, term: 2, membership }, [new Uint8Array(10)]);
    const snaps = async () => (await fsp.readdir(join(dir, "snapshots"))).sort();
    assert.deepEqual(await snaps(), ["snap-40-2.snap", "snap-9-2.snap"], "held while the stream lives");
    streams.stop();
    for (let i = 0; i < 200 && (await snaps()).length > 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await snaps(), ["snap-40-2.snap"]);
    assert.equal(streams.active, false);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a sweep leaves a stream that is reading alone; the round lets go itself once the driver has ended the stream", async () => {
  const meta: SnapshotMeta = { index: 9, term: 2, membership: membershipOf(["a", "b"]) };
  const data = new Uint8Array(1000).fill(3);
  let openGate: () => void = () => {};
  const closing = new Promise<void>((resolve) => openGate = resolve);
  const log: string[] = [];
  const stored = {
    meta,
    size: data.length,
    checksum: crc32c(data),
    retain: () => {
      log.push("hold");
      return Promise.resolve(() => Promise.resolve(void log.push("release")));
    },
    read: () => ({
      async *[Symbol.asyncIterator]() {
        try {
          yield data;
        } finally {
          await closing;
        }
      },
    }),
  };
  let streaming: SnapshotMeta | undefined = meta;
  let sent = 0;
  const streams = new ChunkStreams(
    { latest: Effect.succeed(stored) } as never,
    {
      send: () => ++sent > 0,
      listen: () => {},
      setPeers: () => {},
    },
    1000,
    { unreachable: () => {}, fatal: (e) => assert.fail(`${e}`), streaming: () => streaming },
  );
  const wait = async (ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  await Effect.runPromise(Effect.gen(function* () {
    yield* streams.send([{
      header: { group: 0, from: "a", to: "b", term: 2 },
      meta,
      chunk: { offset: 0, length: 1000, done: true },
      checksum: stored.checksum,
    }]);
    yield* Effect.promise(() => wait(() => sent === 1));
    // The driver ends the stream while the round is still closing its reader: a sweep must not let go under it.
    streaming = undefined;
    streams.sweep();
    assert.deepEqual(log, ["hold"]);
    openGate();
    yield* Effect.promise(() => wait(() => log.length === 2));
  }));
  assert.deepEqual(log, ["hold", "release"]);
  assert.equal(streams.active, false);
});

test("an older snapshot offered after a newer one does not replace it: the newer stays held", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-streams-"));
  try {
    const port = await FileSnapshotStore.open(fs, dir);
    const membership = membershipOf(["a", "b"]);
    const newer = await port.write({ index: 40, term: 2, membership }, [new Uint8Array(10).fill(4)]);
    const streams = new ChunkStreams(
      snapshotStoreFromPort(port),
      { send: () => true, listen: () => {}, setPeers: () => {} },
      1000,
      { unreachable: () => {}, fatal: (e) => assert.fail(`${e}`), streaming: () => undefined },
    );
    streams.offer(newer);
    // An own capture stored after the newer one was installed.
    const older = await port.write({ index: 9, term: 2, membership }, [new Uint8Array(10).fill(1)]);
    streams.offer(older);
    await port.write({ index: 50, term: 2, membership }, [new Uint8Array(10).fill(5)]);
    await new Promise((r) => setTimeout(r, 20));
    const snaps = (await fsp.readdir(join(dir, "snapshots"))).filter((f) => f.endsWith(".snap")).sort();
    assert.ok(snaps.includes("snap-40-2.snap"), `the driver's latest (40) is still held: ${snaps}`);
    streams.stop();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

/** A stored snapshot's `read`. */
type Read = (offset?: number, chunkBytes?: number, check?: boolean) => AsyncIterable<Uint8Array>;

/**
 * A 3,000-byte snapshot on real files streamed to "b" in chunks of 1,000,
 * one burst per `send` (each opens a reader where the last ended); `read`
 * may wrap the stored snapshot's reads (to count them).
 */
async function threeChunks(
  dir: string,
  content: Uint8Array,
  read?: (inner: Read) => Read,
) {
  const port = await FileSnapshotStore.open(fs, dir);
  const meta: SnapshotMeta = { index: 9, term: 2, membership: membershipOf(["a", "b"]) };
  const stored = await port.write(meta, [content]);
  const base = snapshotStoreFromPort(port);
  const store = read === undefined ? base : {
    ...base,
    latest: Effect.map(base.latest, (s) => s && { ...s, read: read((o, n, c) => s.read(o, n, c)) }),
  };
  const sent: InstallSnapshot[] = [];
  const fatal: unknown[] = [];
  const streams = new ChunkStreams(
    store,
    { send: (m: Message) => sent.push(m as InstallSnapshot) > 0, listen: () => {}, setPeers: () => {} },
    1000,
    { unreachable: () => assert.fail("unreachable"), fatal: (e) => void fatal.push(e), streaming: () => meta },
  );
  const chunk = (i: number): ChunkSend => ({
    header: { group: 0, from: "a", to: "b", term: 2 },
    meta,
    chunk: { offset: i * 1000, length: 1000, done: i === 2 },
    checksum: stored.checksum,
  });
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  /** Sends chunks `order` one burst each, waiting for each to leave (or for a fatal report). */
  const send = (order: readonly number[]) =>
    Effect.gen(function* () {
      const before = sent.length;
      for (const [k, i] of order.entries()) {
        yield* streams.send([chunk(i)]);
        yield* Effect.promise(() => until(() => sent.length > before + k || fatal.length > 0));
      }
    });
  /** Flips one byte of the second chunk in place, as rot would. */
  const rot = async () => {
    const name = (await fsp.readdir(join(dir, "snapshots"))).find((f) => f.endsWith(".snap"))!;
    const f = await fsp.open(join(dir, "snapshots", name), "r+");
    const { size } = await f.stat();
    const byte = new Uint8Array(1);
    await f.read(byte, 0, 1, size - 1500);
    await f.write(Uint8Array.of(byte[0]! ^ 0x04), 0, 1, size - 1500);
    await f.close();
  };
  return { streams, sent, fatal, send, rot };
}

async function inDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-streams-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

for (const first of [0, 1]) {
  const how = first === 0 ? "in bursts" : "from a resumed offset";
  test(`a damaged snapshot sent ${how} stops the leader before its last chunk leaves`, () =>
    inDir(async (dir) => {
      const t = await threeChunks(dir, new Uint8Array(3000).fill(7));
      await t.rot();
      // No reader reads from 0 to the end: the store's own check never runs.
      await Effect.runPromise(t.send([0, 1, 2].slice(first)));
      assert.deepEqual(t.sent.map((m) => m.offset), [0, 1000].slice(first), "the last chunk did not leave");
      assert.equal(t.fatal.length, 1);
      assert.match(String(t.fatal[0]), /checksum mismatch/);
      t.streams.stop();
    }));
}

test("a snapshot that rots between two passes of a stream is caught on the second", () =>
  inDir(async (dir) => {
    const t = await threeChunks(dir, new Uint8Array(3000).fill(7));
    await Effect.runPromise(t.send([0, 1, 2]));
    assert.deepEqual(t.sent.map((m) => m.offset), [0, 1000, 2000], "the good snapshot is sent whole");
    // The follower refused what it got (say) and asks for it all again; meanwhile a byte rots in place.
    await t.rot();
    await Effect.runPromise(t.send([0, 1, 2]));
    assert.deepEqual(t.sent.map((m) => m.offset), [0, 1000, 2000, 0, 1000], "the second pass's last chunk stayed");
    assert.equal(t.fatal.length, 1);
    t.streams.stop();
  }));

test("a good snapshot resumed mid-way and rewound is sent whole, read from the start once", () =>
  inDir(async (dir) => {
    let fromStart = 0;
    const t = await threeChunks(dir, new Uint8Array(3000).map((_, i) => i * 31), (inner) => (offset = 0, n, c) => {
      if (offset === 0) fromStart++;
      return inner(offset, n, c);
    });
    // Resumed at 1000, then rewound and the last chunk re-sent (idle rewinds, gap reports).
    const order = [1, 2, 1, 2, 2, 2];
    await Effect.runPromise(t.send(order));
    assert.deepEqual(t.fatal, []);
    assert.equal(t.sent.length, order.length);
    assert.equal(fromStart, 1, "the whole snapshot is read once to vouch for it");
    t.streams.stop();
  }));
