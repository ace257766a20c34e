/**
 * A capture of a removed group's earlier incarnation that finishes after the
 * group is hosted again is dropped, not reported to the new incarnation's
 * driver (it once was: the report looked the group up by id, and the new
 * driver took the old snapshot, beyond its own log, as its latest).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { membershipOf } from "../../core/membership.ts";
import type { Entry, GroupId } from "../../core/types.ts";
import { MemoryHub } from "../../adapters/memory/hub.ts";
import { MemorySnapshotStore } from "../../adapters/memory/snapshots.ts";
import type { SnapshotStorePort } from "../../effects/ports/mod.ts";
import { type GroupSnapshotsPort, HostLoop, type MultiGroupLogPort } from "../../effects/host/host_loop.ts";

const memLog = (): MultiGroupLogPort => ({
  load: () => new Map(),
  write: () => Promise.resolve(),
  sync: () => Promise.resolve(),
  pinning: () => [],
  close: () => Promise.resolve(),
});

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A host of one node "a" whose groups' snapshots go to `port`. */
function oneNodeHost(port: GroupSnapshotsPort): Promise<HostLoop> {
  return HostLoop.start(memLog(), new MemoryHub().transport("a"), {
    id: "a",
    peers: new Map([["a", "a"]]),
    config: { electionTimeoutMs: 150, heartbeatMs: 15 },
    snapshots: port,
  });
}

function machine() {
  const cmds: string[] = [];
  return {
    apply: (e: Entry) => (cmds.push(new TextDecoder().decode(e.data)), e.index),
    snapshot: () => new TextEncoder().encode(JSON.stringify(cmds)),
    restore: () => {},
  };
}

test("an earlier incarnation's capture is not reported to the group hosted again", async () => {
  let gate: Promise<void> | undefined;
  let writing = false;
  const stores = new Map<GroupId, SnapshotStorePort>();
  const port: GroupSnapshotsPort = {
    open: (g) => {
      let s = stores.get(g);
      if (!s) {
        const mem = new MemorySnapshotStore();
        s = {
          latest: () => mem.latest(),
          receive: (m) => mem.receive(m),
          write: async (meta, chunks) => {
            const held = gate;
            if (held) writing = true;
            await held;
            return mem.write(meta, chunks);
          },
        };
        stores.set(g, s);
      }
      return Promise.resolve(s);
    },
    remove: (g) => (stores.delete(g), Promise.resolve()),
  };
  const host = await oneNodeHost(port);
  let open = () => {};
  try {
    const g1 = await host.addGroup(1, membershipOf(["a"]), machine());
    await until("a leads", () => g1.status().role === "leader");
    for (let i = 0; i < 5; i++) await g1.propose(new TextEncoder().encode(`old-${i}`));
    const oldApplied = g1.status().applied;
    gate = new Promise<void>((r) => (open = r));
    const oldSnap = g1.snapshot().catch((e) => e); // held in the store's write
    await until("the old capture's write started", () => writing);
    await host.removeGroup(1);
    assert.ok((await oldSnap) instanceof Error, "the removed incarnation's snapshot() fails");
    gate = undefined;
    // Hosted again: a fresh incarnation with a fresh log and store.
    const g2 = await host.addGroup(1, membershipOf(["a"]), machine());
    await until("a leads again", () => g2.status().role === "leader");
    await g2.propose(new TextEncoder().encode("new-0"));
    assert.equal(g2.status().snapshotIndex, 0);
    // The old incarnation's store write finishes now.
    open();
    await new Promise((r) => setTimeout(r, 100));
    const s = g2.status();
    assert.equal(
      s.snapshotIndex,
      0,
      `the new incarnation (applied ${s.applied}, last ${s.lastIndex}) took the old one's snapshot (old applied ${oldApplied}) as its own`,
    );
  } finally {
    open();
    await host.stop();
  }
});

test("stop waits for an earlier incarnation's capture still storing, after the group is hosted again", async () => {
  let gate: Promise<void> | undefined;
  let writing = 0;
  const port: GroupSnapshotsPort = {
    open: () => {
      const mem = new MemorySnapshotStore();
      return Promise.resolve({
        latest: () => mem.latest(),
        receive: (m) => mem.receive(m),
        write: async (meta, chunks) => {
          const held = gate;
          if (held) writing++;
          await held;
          return mem.write(meta, chunks);
        },
      });
    },
    remove: () => Promise.resolve(),
  };
  const host = await oneNodeHost(port);
  let open = () => {};
  try {
    const g1 = await host.addGroup(1, membershipOf(["a"]), machine());
    await until("a leads", () => g1.status().role === "leader");
    await g1.propose(new TextEncoder().encode("old-0"));
    gate = new Promise<void>((r) => (open = r));
    const oldSnap = g1.snapshot().catch((e) => e); // held in the store's write
    await until("the old capture's write started", () => writing === 1);
    await host.removeGroup(1);
    await oldSnap;
    gate = undefined;
    // Hosted again, and the new incarnation's own capture comes and goes.
    const g2 = await host.addGroup(1, membershipOf(["a"]), machine());
    await until("a leads again", () => g2.status().role === "leader");
    await g2.propose(new TextEncoder().encode("new-0"));
    await g2.snapshot();
    let stopped = false;
    const stopping = host.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stopped, false, "stop resolved with the old incarnation's write still running");
    open();
    await stopping;
  } finally {
    open();
    await host.stop();
  }
});
