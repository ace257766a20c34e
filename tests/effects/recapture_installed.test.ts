/**
 * A follower whose user asked for snapshots twice while its first capture
 * was still being stored, and which installed the leader's snapshot S
 * meanwhile, once captured again at exactly S when the first capture landed:
 * the store renamed the new capture over S's own file, while the driver and
 * the streams still held S's size and checksum. With a state machine whose
 * encoding differs from the leader's for the same state (legal: here JSON
 * with indentation) the node, once leader, fail-stopped streaming an intact
 * file ("checksum mismatch"). Now the installed snapshot answers the waiting
 * request, and no capture is made that the latest snapshot already covers.
 * (Found by review.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryLogStore } from "../../adapters/memory/mod.ts";
import { FileSnapshotStore } from "../../adapters/storage/snapshots.ts";
import { crc32c } from "../../core/crc32c.ts";
import type { AppendEntries, InstallSnapshot, Message } from "../../core/types.ts";
import type { SnapshotStorePort } from "../../effects/ports/mod.ts";
import { createNode } from "../../mod.ts";
import { handTransport, kvEntry, KvMachine, testConfig, waitFor, wholeSnapshot } from "./testkit.ts";

/** Same state, other bytes than the leader's encoding. */
class Indented extends KvMachine {
  override snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data], null, 2));
  }
}

const real = "Deno" in globalThis
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

test("no capture at an installed snapshot's index: the file the driver streams stays the one installed", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-recapture-"));
  const { transport, sent, deliver } = handTransport();
  const log = new MemoryLogStore();
  const files = await FileSnapshotStore.open(real, dir);
  let gate: Promise<void> | undefined;
  let writing = 0;
  const snapshots: SnapshotStorePort = {
    latest: () => files.latest(),
    receive: (meta) => files.receive(meta),
    write: async (meta, chunks) => {
      writing++;
      await gate;
      return files.write(meta, chunks);
    },
  };
  const node = await createNode({
    id: "f",
    peers: { f: "f", l: "l", x: "x" },
    stateMachine: new Indented(),
    logStore: log,
    snapshotStore: snapshots,
    transport,
    config: { ...testConfig, electionTimeoutMs: 60_000 },
  });
  const header = { group: 0, from: "l", to: "f", term: 1 } as const;
  let open = () => {};
  try {
    const append = (prevIndex: number, entries: number[], commit: number, seq: number): AppendEntries => ({
      ...header,
      type: "AppendEntries",
      prevIndex,
      prevTerm: prevIndex === 0 ? 0 : 1,
      entries: entries.map(kvEntry),
      commit,
      seq,
    });
    deliver(append(0, [1, 2], 2, 1));
    await waitFor(() => node.status().applied === 2, 5000, "2 applied");
    gate = new Promise<void>((r) => (open = r));
    const first = node.snapshot(); // capture at 2, its store held
    await waitFor(() => writing === 1, 5000, "the first capture's store to start");
    deliver(append(2, [3, 4], 4, 2));
    await waitFor(() => node.status().applied === 4, 5000, "4 applied");
    const second = node.snapshot(); // waits for a snapshot covering 4
    // The leader's snapshot at 10 (its own, compact encoding).
    const state = new TextEncoder().encode(JSON.stringify([1, 2, 3, 4, 10].map((i) => [`k${i}`, "v"])));
    deliver(wholeSnapshot(10, state));
    await waitFor(() => node.status().applied === 10, 5000, "snapshot 10 installed");
    const installed = (await files.latest())!;
    assert.equal(installed.checksum, crc32c(state));
    gate = undefined;
    open();
    await first;
    assert.equal((await second).index, 10, "the installed snapshot covers the second request");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(writing, 1, "no capture at the installed index");
    assert.equal((await files.latest())!.checksum, installed.checksum, "the installed snapshot's file is as installed");

    // Make f the leader (term 2) and have x need a snapshot: what does f stream?
    deliver({ ...header, type: "TimeoutNow", candidate: "f" } as Message);
    await waitFor(() => sent.find((m) => m.type === "RequestVote" && m.term === 2), 5000, "f to campaign");
    deliver(
      { group: 0, from: "l", to: "f", term: 2, type: "RequestVoteResponse", preVote: false, granted: true } as Message,
    );
    await waitFor(() => node.status().role === "leader", 5000, "f to lead");
    const ae = await waitFor(
      () => sent.find((m) => m.type === "AppendEntries" && m.to === "x" && m.term === 2) as AppendEntries | undefined,
      5000,
      "an append to x",
    );
    deliver({
      group: 0,
      from: "x",
      to: "f",
      term: 2,
      type: "AppendEntriesResponse",
      success: false,
      index: ae.prevIndex,
      conflictTerm: 0,
      conflictIndex: 1,
      seq: ae.seq,
    } as Message);
    let failure: unknown;
    node.done.catch((e) => (failure = e));
    const chunks = await waitFor(
      () => {
        if (failure !== undefined) return [];
        const c = sent.filter((m): m is InstallSnapshot => m.type === "InstallSnapshot" && m.to === "x");
        return c.some((m) => m.done) ? c : undefined;
      },
      5000,
      "f's snapshot stream to x to reach its last chunk",
    );
    assert.equal(failure, undefined, "f, whose snapshot file is intact, fail-stopped streaming it");
    const bytes = new Uint8Array(chunks.reduce((n, m) => Math.max(n, m.offset + m.data.length), 0));
    for (const m of chunks) bytes.set(m.data, m.offset);
    assert.equal(crc32c(bytes), chunks.find((m) => m.done)!.checksum, "streamed bytes do not match the checksum sent");
  } finally {
    open();
    await node.stop().catch(() => {});
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
