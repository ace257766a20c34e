/** The follower's snapshot intake: what a node going away leaves of a snapshot half received. */

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
import { type IntakeReports, SnapshotIntake } from "./snapshot_io.ts";

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
