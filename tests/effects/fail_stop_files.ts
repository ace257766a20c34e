/**
 * Fail-stop and damaged snapshots with real files: three nodes on an
 * in-memory network, each on its runtime's file system behind a
 * fault-injecting wrapper. Registered by `durable_deno.test.ts` and
 * `durable_bun.test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { startNodeOn } from "../../adapters/common.ts";
import { MemoryHub } from "../../adapters/memory/mod.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { type RaftNode, StorageFailure } from "../../mod.ts";
import { FaultyFs } from "../contract/faulty_fs.ts";
import { rejects } from "../contract/wal.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

/** Flips bits `mask` of the byte `fromEnd` bytes before the end of `file`, in place (one write of one byte). */
async function flipByte(file: string, fromEnd: number, mask: number): Promise<void> {
  const f = await open(file, "r+");
  try {
    const { size } = await f.stat();
    const byte = new Uint8Array(1);
    await f.read(byte, 0, 1, size - fromEnd);
    byte[0]! ^= mask;
    await f.write(byte, 0, 1, size - fromEnd);
  } finally {
    await f.close();
  }
}

type Kv = RaftNode<{ key: string; value: string }, string | undefined, KvMachine>;

/** A 3-node cluster over one hub, with real files in `root`; nodes can be stopped, failed and restarted. */
class FileCluster {
  readonly ids = ["a", "b", "c"];
  readonly hub = new MemoryHub();
  readonly nodes = new Map<string, Kv>();
  readonly machines = new Map<string, KvMachine>();
  readonly fss = new Map<string, FaultyFs>();

  constructor(
    readonly root: string,
    private readonly makeFs: () => DurableFs,
    private readonly config: typeof testConfig,
  ) {}

  /** Starts (or restarts, on a healthy file system) node `id`. */
  async start(id: string): Promise<Kv> {
    const fs = new FaultyFs(this.makeFs());
    this.fss.set(id, fs);
    const machine = new KvMachine();
    this.machines.set(id, machine);
    const node: Kv = await startNodeOn({
      fs: () => fs,
      tcp: () => {
        throw new Error("no TCP in this test");
      },
    }, {
      id,
      peers: Object.fromEntries(this.ids.map((i) => [i, i])),
      dataDir: join(this.root, id),
      stateMachine: machine,
      transport: this.hub.transport(id),
      config: this.config,
      snapshotChunkBytes: 256,
    });
    this.nodes.set(id, node);
    return node;
  }

  /** The node all running nodes agree leads. */
  leader(): Promise<Kv> {
    return waitFor(
      () => {
        const running = [...this.nodes.values()].filter((n) => !n.status().stopped);
        const leaders = running.filter((n) => n.status().role === "leader");
        return leaders.length === 1 && running.every((n) => n.status().leader === leaders[0]!.id)
          ? leaders[0]
          : undefined;
      },
      10_000,
      "an agreed leader",
    );
  }

  /** Resolves once `id` has applied everything `leader` has committed, with the same data. */
  async caughtUp(id: string, leader: Kv): Promise<void> {
    const target = leader.status().commit;
    await waitFor(() => this.nodes.get(id)!.status().applied >= target, 10_000, `${id} caught up`);
    assert.deepEqual([...this.machines.get(id)!.data].sort(), [...this.machines.get(leader.id)!.data].sort());
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.nodes.values()].map((n) => n.stop()));
  }
}

async function withCluster(
  makeFs: () => DurableFs,
  config: typeof testConfig,
  f: (c: FileCluster) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "plank-failstop-"));
  const c = new FileCluster(root, makeFs, config);
  try {
    await f(c);
  } finally {
    await c.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

/** Registers the scenarios for one runtime's file system. */
export function failStopFileTests(runtime: string, makeFs: () => DurableFs): void {
  describe(`${runtime}: fail-stop and damaged snapshots on real files`, () => {
    for (const [role, what, code] of [["follower", "fsync", "EIO"], ["leader", "write", "ENOSPC"]] as const) {
      test(`a failed ${what} (${code}) stops the ${role}; the others go on; restarted, it catches up`, {
        timeout: 60_000,
      }, () =>
        withCluster(makeFs, testConfig, async (c) => {
          await Promise.all(c.ids.map((id) => c.start(id)));
          const leader = await c.leader();
          for (let i = 0; i < 20; i++) await leader.propose({ key: `k${i}`, value: `v${i}` });
          const victim = role === "leader" ? leader : [...c.nodes.values()].find((n) => n !== leader)!;
          const fs = c.fss.get(victim.id)!;
          fs.faults = what === "fsync" ? { sync: code } : { write: code };
          const pending = rejects(victim.propose({ key: "lost?", value: "x" }));
          const fatal = await rejects(victim.done);
          assert.ok(fatal instanceof StorageFailure, `expected StorageFailure, got ${fatal}`);
          assert.equal(((fatal.cause as Error).cause as { code?: string }).code, code);
          assert.ok(await pending, "the pending proposal failed");
          const calls = { ...fs.calls };
          await new Promise((r) => setTimeout(r, 300));
          assert.deepEqual(fs.calls, calls, "nothing written or synced after the failure");
          // Without a stop() call, the stopped node gives its data directory up.
          c.nodes.delete(victim.id);
          await waitFor(
            async () => {
              const lock = await makeFs().lockDir(join(c.root, victim.id)).catch(() => undefined);
              await lock?.release();
              return lock !== undefined;
            },
            5000,
            "the data directory released",
          );
          // The others carry on.
          const survivor = await c.leader();
          for (let i = 20; i < 40; i++) await survivor.propose({ key: `k${i}`, value: `v${i}` });
          // A supervisor restarts it: it recovers from its files and catches up.
          await c.start(victim.id);
          await c.caughtUp(victim.id, await c.leader());
        }));
    }

    test("a leader whose stored snapshot was damaged stops instead of sending it; the lagging node catches up", {
      timeout: 60_000,
    }, () =>
      withCluster(makeFs, { ...testConfig, snapshotEvery: 20, keepAfterSnapshot: 0 }, async (c) => {
        await Promise.all(c.ids.map((id) => c.start(id)));
        const leader = await c.leader();
        const lagging = c.ids.find((id) => id !== leader.id)!;
        await c.nodes.get(lagging)!.stop();
        c.nodes.delete(lagging);
        for (let i = 0; i < 60; i++) await leader.propose({ key: `k${i}`, value: `v${i}` });
        const snapDir = join(c.root, leader.id, "snapshots");
        // The last snapshot these writes bring: none follows until 20 more entries are applied.
        const file = await waitFor(
          async () => {
            const names = (await readdir(snapDir)).filter((n) => n.endsWith(".snap"));
            const index = Number(/^snap-(\d+)-/.exec(names[0] ?? "")?.[1] ?? 0);
            return names.length === 1 && index + 20 > leader.status().applied ? join(snapDir, names[0]!) : undefined;
          },
          10_000,
          "the last snapshot",
        );
        // One byte flipped in place, inside the state machine's bytes (before the trailer), as rot would: not a
        // rewrite of the file, whose truncation a stream to the other follower could be reading through.
        await flipByte(file, 40, 0x01);
        const wait = rejects(leader.done);
        await c.start(lagging);
        const fatal = await wait;
        assert.ok(fatal instanceof StorageFailure, `expected StorageFailure, got ${fatal}`);
        assert.ok(fatal.message.includes(file) && /checksum mismatch/.test(fatal.message), fatal.message);
        // Another leader, with its own good snapshot, brings the lagging node up to date.
        c.nodes.delete(leader.id);
        await leader.stop().catch(() => {});
        await c.caughtUp(lagging, await c.leader());
      }));

    test(
      "a damaged local snapshot refuses to start, naming the file",
      { timeout: 60_000 },
      () =>
        withCluster(makeFs, { ...testConfig, snapshotEvery: 10, keepAfterSnapshot: 0 }, async (c) => {
          await Promise.all(c.ids.map((id) => c.start(id)));
          const leader = await c.leader();
          for (let i = 0; i < 15; i++) await leader.propose({ key: `k${i}`, value: `v${i}` });
          const snapDir = join(c.root, leader.id, "snapshots");
          const file = await waitFor(
            async () => {
              const names = (await readdir(snapDir)).filter((n) => n.endsWith(".snap"));
              return names.length === 1 ? join(snapDir, names[0]!) : undefined;
            },
            10_000,
            "a snapshot",
          );
          await c.stopAll();
          await flipByte(file, 30, 0x10);
          const refused = await rejects(c.start(leader.id));
          assert.ok(refused instanceof StorageFailure, `expected StorageFailure, got ${refused}`);
          assert.ok(refused.message.includes(file) && /checksum mismatch/.test(refused.message), refused.message);
        }),
    );
  });
}
