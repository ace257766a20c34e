/**
 * Membership, learners, snapshots and snapshot installs through the real
 * adapters (files in temporary directories, TCP on 127.0.0.1), on whichever
 * runtime runs the file: Deno's adapter under `deno test`, Bun's under
 * `bun test`.
 *
 * One node starts a cluster; a client writes all along; four nodes join one
 * by one (as learners, promoted once caught up); the leader removes itself;
 * snapshots compact the logs; a follower's data directory is wiped and it
 * comes back through InstallSnapshot. No acknowledged write may be lost and
 * every node must converge on the same state.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { freePort } from "../free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { NodeConfig, RaftNode, SnapshotReader } from "../../mod.ts";

type Command = { key: string; value: string };

/** A key-value machine that counts snapshot restores. */
class Kv {
  readonly data: Map<string, string> = new Map();
  restores = 0;
  apply(c: Command): string | undefined {
    const previous = this.data.get(c.key);
    this.data.set(c.key, c.value);
    return previous;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]));
  }
  async restore(snapshot: SnapshotReader): Promise<void> {
    const bytes = await snapshot.bytes();
    this.restores++;
    this.data.clear();

    for (const [k, v] of JSON.parse(new TextDecoder().decode(bytes)) as [string, string][]) this.data.set(k, v);
  }
}

type Node = RaftNode<Command, string | undefined, Kv>;
type StartNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: Kv;
  config: NodeConfig;
  join?: boolean;
  snapshotChunkBytes?: number;
  wal?: { segmentBytes?: number };
}) => Promise<Node>;

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? "deno" : "bun";

async function loadStartNode(): Promise<StartNode> {
  // A computed specifier: each runtime loads (and type-checks) only its own adapter.
  const path = `../../adapters/${runtime}/mod.ts`;
  const mod = (await import(path)) as { startNode: StartNode };
  return mod.startNode;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(probe: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const config: NodeConfig = {
  electionTimeoutMs: 300,
  heartbeatMs: 30,
  snapshotEvery: 40,
  keepAfterSnapshot: 10,
};

test(`${runtime}: grow 1 → 5 nodes while writing, remove the leader, compact, restore a wiped node by snapshot`, {
  timeout: 60_000,
}, async () => {
  const startNode = await loadStartNode();
  const ids = ["a", "b", "c", "d", "e"];
  const root = await mkdtemp(join(tmpdir(), "plank-membership-"));
  const peers: Record<string, string> = {};
  for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
  const nodes = new Map<string, Node>();
  const machines = new Map<string, Kv>();
  const boot = async (id: string, joining: boolean) => {
    const machine = new Kv();
    machines.set(id, machine);
    const node = await startNode({
      id,
      // The first node founds a one-voter cluster; the others know every address and wait to be added.
      peers: joining ? peers : { [id]: peers[id]! },
      dataDir: join(root, id),
      stateMachine: machine,
      config,
      join: joining,
      snapshotChunkBytes: 512, // several chunks per install
      wal: { segmentBytes: 4096 }, // several segments, so compaction can delete some
    });
    nodes.set(id, node);
  };
  const leader = (): Node | undefined => {
    const leaders = [...nodes.values()].filter((n) => n.status().role === "leader");
    return leaders.length === 1 ? leaders[0] : undefined;
  };
  const voters = (n: Node) => [...n.status().membership.voters].sort();

  const acknowledged = new Map<string, string>();
  let writing = true;
  let attempts = 0;
  const client = async (worker: number) => {
    for (let i = 0; writing; i++) {
      const target = leader() ?? [...nodes.values()][0];
      if (!target) {
        await sleep(5);
        continue;
      }
      const key = `w${worker}-${i}`;
      attempts++;
      try {
        await target.propose({ key, value: String(i) });
        acknowledged.set(key, String(i));
      } catch {
        await sleep(10); // not leader, dropped, stopped, unknown outcome: a later write goes on
      }
    }
  };
  let clients: Promise<void>[] = [];
  try {
    await boot("a", false);
    await waitFor(() => leader(), 10_000, "a to lead its one-node cluster");
    clients = [0, 1, 2].map(client);

    // Grow: each node joins as a learner and the leader promotes it once it has caught up.
    for (const id of ids.slice(1)) {
      await boot(id, true);
      const l = await waitFor(() => leader(), 10_000, "a leader");
      await l.addVoter(id, peers[id]!);
      await waitFor(
        () => leader() && voters(leader()!).includes(id),
        10_000,
        `${id} to be promoted to voter`,
      );
    }
    const full = leader()!;
    assert.deepEqual(voters(full), ids);
    const before = acknowledged.size;
    await waitFor(() => acknowledged.size > before + 50, 10_000, "writes in a five-voter cluster");

    // Remove the leader: it keeps leading until the change commits, then steps down (§4.2.2).
    const old = full;
    await old.removeNode(old.id);
    const next = await waitFor(
      () => {
        const l = leader();
        return l && l !== old && !voters(l).includes(old.id) ? l : undefined;
      },
      10_000,
      "a new leader without the removed node",
    );
    await old.stop();
    nodes.delete(old.id);
    assert.equal(voters(next).length, 4);

    // Wipe a follower and bring it back empty: compaction has removed the entries it needs.
    const wiped = [...nodes.values()].find((n) => n !== next)!;
    await wiped.stop();
    nodes.delete(wiped.id);
    await rm(join(root, wiped.id), { recursive: true, force: true });
    const count = acknowledged.size;
    await waitFor(() => acknowledged.size > count + 2 * config.snapshotEvery!, 10_000, "writes past a snapshot");
    const leaderDir = join(root, leader()!.id);
    const segments = (await readdir(join(leaderDir, "wal"))).filter((f) => f.endsWith(".seg")).sort();
    assert.ok(!segments.includes("00000000000000000001.seg"), `segments behind the snapshot deleted: ${segments}`);
    assert.ok((await readdir(join(leaderDir, "snapshots"))).some((f) => f.endsWith(".snap")), "a snapshot file");
    await boot(wiped.id, true);
    await waitFor(() => machines.get(wiped.id)!.restores > 0, 10_000, "the wiped node to install a snapshot");

    writing = false;
    await Promise.all(clients);
    clients = [];
    assert.ok(acknowledged.size > 200, `only ${acknowledged.size} of ${attempts} writes acknowledged`);

    // Converge: a linearizable read on each node waits until it has applied every acknowledged write.
    for (const n of nodes.values()) await n.read(() => undefined);
    const reference = [...machines.get(leader()!.id)!.data].sort();
    for (const [key, value] of acknowledged) {
      for (const id of nodes.keys()) {
        assert.equal(machines.get(id)!.data.get(key), value, `acknowledged write ${key} lost on ${id}`);
      }
    }
    for (const id of nodes.keys()) {
      assert.deepEqual([...machines.get(id)!.data].sort(), reference, `${id} diverged`);
    }
  } finally {
    writing = false;
    await Promise.allSettled(clients);
    await Promise.allSettled([...nodes.values()].map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
});
