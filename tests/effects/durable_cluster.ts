/**
 * The end-to-end scenario both runtimes run: three nodes over real TCP on
 * 127.0.0.1 with real files in temporary directories elect a leader,
 * replicate commands, stop, restart from disk and come back with identical
 * state.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MemoryHub } from "../../adapters/memory/mod.ts";
import type { RaftNode, TransportPort } from "../../mod.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

type Kv = RaftNode<{ key: string; value: string }, string | undefined, KvMachine>;

/** What the scenario needs from a runtime adapter. */
export type StartNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: KvMachine;
  config: typeof testConfig;
  transport?: TransportPort;
}) => Promise<Kv>;

async function leaderOf(nodes: Kv[]): Promise<Kv> {
  return await waitFor(
    () => {
      const leaders = nodes.filter((n) => n.status().role === "leader");
      if (leaders.length !== 1) return undefined;
      const id = leaders[0]!.id;
      return nodes.every((n) => n.status().leader === id) ? leaders[0] : undefined;
    },
    10_000,
    "a leader",
  );
}

/** Registers the scenario as a test named after the runtime. */
export function durableClusterTest(runtime: string, startNode: StartNode, commands = 1000): void {
  test(
    `${runtime}: 3 nodes over TCP with real files replicate ${commands} commands, restart, and recover identical state`,
    {
      timeout: 60_000,
    },
    async () => {
      const ids = ["a", "b", "c"];
      const root = await mkdtemp(join(tmpdir(), "plank-e2e-"));
      const peers: Record<string, string> = {};
      for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
      const boot = (): Promise<{ nodes: Kv[]; machines: KvMachine[] }> => {
        const machines = ids.map(() => new KvMachine());
        return Promise.all(
          ids.map((id, i) =>
            startNode({ id, peers, dataDir: join(root, id), stateMachine: machines[i]!, config: testConfig })
          ),
        ).then((nodes) => ({ nodes, machines }));
      };
      let running: Kv[] = [];
      try {
        const first = await boot();
        running = first.nodes;
        const leader = await leaderOf(first.nodes);
        const batch = 100;
        for (let i = 0; i < commands; i += batch) {
          await Promise.all(
            Array.from(
              { length: Math.min(batch, commands - i) },
              (_, j) => leader.propose({ key: `k${(i + j) % 97}`, value: String(i + j) }),
            ),
          );
        }
        for (const n of first.nodes) await n.read(() => undefined);
        const expected = [...first.machines[0]!.data].sort();
        assert.ok(first.machines[0]!.appliedIndexes.length >= commands, "every command was applied");
        for (const m of first.machines) assert.deepEqual([...m.data].sort(), expected);
        await Promise.all(first.nodes.map((n) => n.stop()));
        running = [];

        const second = await boot();
        running = second.nodes;
        await leaderOf(second.nodes);
        for (const n of second.nodes) await n.read(() => undefined);
        for (const m of second.machines) assert.deepEqual([...m.data].sort(), expected);
      } finally {
        await Promise.allSettled(running.map((n) => n.stop()));
        await rm(root, { recursive: true, force: true });
      }
    },
  );
}

/** Registers a test that `startNode` runs over a transport it is given instead of building TCP. */
export function customTransportTest(runtime: string, startNode: StartNode): void {
  test(`${runtime}: startNode runs over a given transport (files on disk, no TCP) and closes it on stop`, {
    timeout: 30_000,
  }, async () => {
    const ids = ["a", "b", "c"];
    const root = await mkdtemp(join(tmpdir(), "plank-transport-"));
    const hub = new MemoryHub();
    // Not "host:port": had startNode built TCP, it could not listen on these.
    const peers = Object.fromEntries(ids.map((id) => [id, id]));
    const closed = new Set<string>();
    const nodes: Kv[] = [];
    try {
      for (const id of ids) {
        const inner = hub.transport(id);
        const transport: TransportPort = {
          ...inner,
          close: () => {
            closed.add(id);
            return inner.close();
          },
        };
        nodes.push(
          await startNode({
            id,
            peers,
            dataDir: join(root, id),
            stateMachine: new KvMachine(),
            config: testConfig,
            transport,
          }),
        );
      }
      const leader = await leaderOf(nodes);
      assert.equal(await leader.propose({ key: "k", value: "v" }), undefined);
      const follower = nodes.find((n) => n !== leader)!;
      assert.equal(await follower.read((sm) => sm.data.get("k")), "v");
      await Promise.all(nodes.map((n) => n.stop()));
      assert.deepEqual([...closed].sort(), ids, "every given transport was closed by stop()");
    } finally {
      await Promise.allSettled(nodes.map((n) => n.stop()));
      await rm(root, { recursive: true, force: true });
    }
  });
}
