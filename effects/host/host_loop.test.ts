/**
 * The production host on Effect: three hosts of many groups in one process,
 * over the in-memory hub and each host's log of every group on real files.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { membershipOf } from "../../core/membership.ts";
import type { GroupId, NodeId } from "../../core/types.ts";
import { MemoryHub } from "../../adapters/memory/hub.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { MultiGroupLog } from "../../adapters/storage/multi_log.ts";
import { type HostGroup, HostLoop } from "./host_loop.ts";

const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

const ids = ["a", "b", "c"];
const peers = new Map(ids.map((id) => [id, id]));
const config = { electionTimeoutMs: 150, heartbeatMs: 15 };
const decoder = new TextDecoder();

/** A state machine recording each group's commands, answering with the applied index. */
function machine(log: string[]) {
  return { apply: (e: { index: number; data: Uint8Array }) => (log.push(decoder.decode(e.data)), e.index) };
}

async function startHost(
  hub: MemoryHub,
  dir: string,
  id: NodeId,
  groups: readonly GroupId[],
  applied: Map<string, string[]>,
) {
  const log = await MultiGroupLog.open(fs, join(dir, id));
  const host = await HostLoop.start(log, hub.transport(id), { id, peers, config });
  const handles = new Map<GroupId, HostGroup>();
  for (const g of groups) {
    const seen = applied.get(`${id}/${g}`) ?? [];
    applied.set(`${id}/${g}`, seen);
    seen.length = 0;
    handles.set(g, await host.addGroup(g, membershipOf(ids), machine(seen)));
  }
  return { host, handles };
}

async function leaderOf(hosts: Map<NodeId, { host: HostLoop }>, g: GroupId): Promise<NodeId> {
  for (let i = 0; i < 400; i++) {
    for (const [id, h] of hosts) if (h.host.status(g)?.role === "leader") return id;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`group ${g} elected no leader`);
}

/** A host log whose n-th sync (counted from its open) can be held on a gate and/or fail. */
async function gatedLog(dir: string) {
  const inner = await MultiGroupLog.open(fs, dir);
  const ctl = { syncs: 0, holds: new Map<number, Promise<void>>(), fails: new Set<number>(), failed: 0 };
  const log = {
    load: () => inner.load(),
    write: (ops: Parameters<typeof inner.write>[0]) => inner.write(ops),
    pinning: (behind: number, max: number) => inner.pinning(behind, max),
    close: () => inner.close(),
    sync: async () => {
      const n = ++ctl.syncs;
      await ctl.holds.get(n);
      if (ctl.fails.has(n)) {
        ctl.failed++;
        throw new Error(`EIO (injected, sync ${n})`);
      }
      await inner.sync();
    },
  };
  return { log, ctl };
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const solo = new Map([["a", "a"]]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test("three hosts of eight groups: each group commits on its own log, survives a host restart, and quiesces", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const hub = new MemoryHub();
  const groups = [1, 2, 3, 4, 5, 6, 7, 8];
  const applied = new Map<string, string[]>();
  const hosts = new Map<NodeId, Awaited<ReturnType<typeof startHost>>>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, groups, applied));
    for (const g of groups) {
      const leader = await leaderOf(hosts, g);
      // Through a follower too: proposals are forwarded within the group.
      const follower = ids.find((id) => id !== leader)!;
      await hosts.get(leader)!.handles.get(g)!.propose(new TextEncoder().encode(`g${g}-1`));
      await hosts.get(follower)!.handles.get(g)!.propose(new TextEncoder().encode(`g${g}-2`));
      const index = await hosts.get(follower)!.handles.get(g)!.readIndex();
      assert.ok(index >= 3);
      assert.deepEqual(applied.get(`${follower}/${g}`), [`g${g}-1`, `g${g}-2`]);
    }
    // Restart host c from its files: every group's log comes back.
    await hosts.get("c")!.host.stop();
    hosts.set("c", await startHost(hub, dir, "c", groups, applied));
    for (const g of groups) {
      const leader = await leaderOf(hosts, g);
      await hosts.get(leader)!.handles.get(g)!.propose(new TextEncoder().encode(`g${g}-3`));
      for (let i = 0; i < 200 && applied.get(`c/${g}`)!.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(applied.get(`c/${g}`), [`g${g}-1`, `g${g}-2`, `g${g}-3`], `c replayed group ${g}`);
    }
    // Idle: every group on every host quiesces.
    let quiet = false;
    for (let i = 0; i < 300 && !quiet; i++) {
      await new Promise((r) => setTimeout(r, 10));
      quiet = ids.every((id) => groups.every((g) => hosts.get(id)!.host.status(g)!.quiescent === true));
    }
    assert.ok(quiet, "every group quiesced");
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("groups are added and removed at run time; a removed group refuses requests", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const hub = new MemoryHub();
  const applied = new Map<string, string[]>();
  const hosts = new Map<NodeId, Awaited<ReturnType<typeof startHost>>>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, [1], applied));
    // Group 2 on a and b only.
    const g2 = new Map<NodeId, HostGroup>();
    for (const id of ["a", "b"]) {
      g2.set(id, await hosts.get(id)!.host.addGroup(2, membershipOf(["a", "b"]), machine([])));
    }
    const leader = await leaderOf(hosts, 2);
    assert.ok(leader === "a" || leader === "b");
    assert.equal(await g2.get(leader)!.propose(new TextEncoder().encode("x")), 2);
    await hosts.get("a")!.host.removeGroup(2);
    assert.deepEqual(hosts.get("a")!.host.groups(), [1]);
    await assert.rejects(g2.get("a")!.propose(new TextEncoder().encode("y")));
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("both APIs: createHost starts a host; hostLayer provides RaftHost for its scope and stops it after", async () => {
  const { Effect } = await import("effect");
  const { createHost, hostLayer, RaftHost } = await import("./api.ts");
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const hub = new MemoryHub();
  const solo = new Map([["a", "a"]]);
  try {
    const host = await createHost({
      id: "a",
      peers: solo,
      config,
      log: await MultiGroupLog.open(fs, join(dir, "p")),
      transport: hub.transport("a"),
    });
    const g = await host.addGroup(3, membershipOf(["a"]), machine([]));
    for (let i = 0; i < 200 && g.status().role !== "leader"; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await g.propose(new TextEncoder().encode("p")), 2);
    await host.stop();
    await assert.rejects(g.propose(new TextEncoder().encode("late")));

    let kept: HostLoop | undefined;
    const index = await Effect.runPromise(
      Effect.scoped(Effect.gen(function* () {
        const h = yield* RaftHost;
        kept = h;
        const group = yield* Effect.promise(() => h.addGroup(4, membershipOf(["a"]), machine([])));
        for (let i = 0; i < 200 && group.status().role !== "leader"; i++) {
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)));
        }
        return yield* Effect.promise(() => group.propose(new TextEncoder().encode("e")));
      })).pipe(
        Effect.provide(
          hostLayer({
            id: "a",
            peers: solo,
            config,
            log: await MultiGroupLog.open(fs, join(dir, "e")),
            transport: hub.transport("a"),
          }),
        ),
      ),
    );
    assert.equal(index, 2);
    await assert.rejects(kept!.addGroup(5, membershipOf(["a"]), machine([])), /stopped/i);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("the loop serves while an fsync is in flight; a write is acknowledged only once synced; a failed sync stops the host", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const { log, ctl } = await gatedLog(join(dir, "a"));
  const held = gate();
  const host = await HostLoop.start(log, new MemoryHub().transport("a"), { id: "a", peers: solo, config });
  try {
    const g = await host.addGroup(1, membershipOf(["a"]), machine([]));
    await until("leader", () => g.status().role === "leader");
    assert.equal(await g.propose(new TextEncoder().encode("warm")), 2);

    const k = ctl.syncs;
    ctl.holds.set(k + 1, held.promise);
    let settled = false;
    const first = g.propose(new TextEncoder().encode("x")).finally(() => (settled = true));
    await until("the entry's sync started", () => ctl.syncs === k + 1);
    // The loop is not blocked on the disk: it adds a group and takes a second proposal meanwhile.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const blocked = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the loop is blocked on the disk")), 2000);
    });
    const other = await Promise.race([host.addGroup(2, membershipOf(["a"]), machine([])), blocked]);
    clearTimeout(timer);
    assert.equal(other.group, 2);
    const second = g.propose(new TextEncoder().encode("y"));
    await sleep(30);
    assert.equal(settled, false, "no acknowledgement before the fsync ends");
    held.open();
    assert.equal(await first, 3);
    assert.equal(await second, 4);

    // A sync that fails stops the host: what it carried is never acknowledged.
    ctl.fails.add(ctl.syncs + 1);
    const lost = assert.rejects(g.propose(new TextEncoder().encode("z")), /sync/);
    await assert.rejects(host.done, /sync failed: EIO/);
    await lost;
  } finally {
    held.open();
    await host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a request taken behind a failed write, in the same batch, is refused, not left waiting", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const { log, ctl } = await gatedLog(join(dir, "a"));
  const unblock = gate();
  let blocking = false;
  const sm = {
    apply: (e: { index: number; data: Uint8Array }) => {
      if (decoder.decode(e.data) !== "block") return e.index;
      blocking = true;
      return unblock.promise.then(() => e.index); // the loop waits for this apply
    },
  };
  const host = await HostLoop.start(log, new MemoryHub().transport("a"), { id: "a", peers: solo, config });
  try {
    const g = await host.addGroup(1, membershipOf(["a"]), sm);
    await until("leader", () => g.status().role === "leader");
    await g.propose(new TextEncoder().encode("warm"));
    const k = ctl.syncs, first = gate(), second = gate();
    ctl.holds.set(k + 1, first.promise);
    ctl.holds.set(k + 2, second.promise);
    ctl.fails.add(k + 2);
    const block = g.propose(new TextEncoder().encode("block")).catch(() => {});
    await until("block's sync started", () => ctl.syncs === k + 1);
    const y = assert.rejects(g.propose(new TextEncoder().encode("y")));
    await sleep(20);
    first.open();
    await until("block applying", () => blocking);
    second.open(); // y's sync fails while the loop waits on the apply: `fatal` queues
    await until("the sync failed", () => ctl.failed === 1);
    await sleep(5);
    // Queued behind the fatal item: the loop takes both in one batch.
    const z = g.propose(new TextEncoder().encode("z")).then(() => "answered", () => "refused");
    unblock.open();
    await assert.rejects(host.done, /EIO/);
    assert.equal(await Promise.race([z, sleep(2000).then(() => "never settled")]), "refused");
    await y;
    await block;
  } finally {
    unblock.open();
    await host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a stop during an fsync that fails: the host's end reports the storage failure", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const { log, ctl } = await gatedLog(join(dir, "a"));
  const host = await HostLoop.start(log, new MemoryHub().transport("a"), { id: "a", peers: solo, config });
  try {
    const g = await host.addGroup(1, membershipOf(["a"]), machine([]));
    await until("leader", () => g.status().role === "leader");
    await g.propose(new TextEncoder().encode("warm"));
    const k = ctl.syncs, held = gate();
    ctl.holds.set(k + 1, held.promise);
    ctl.fails.add(k + 1);
    const x = assert.rejects(g.propose(new TextEncoder().encode("x")), /EIO/);
    await until("x's sync started", () => ctl.syncs === k + 1);
    const stopped = host.stop();
    await sleep(20);
    held.open();
    await stopped;
    await assert.rejects(host.done, /EIO/);
    await x;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a group removed and hosted again while its old write is in flight: the old report does not reach the new group", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-"));
  const { log, ctl } = await gatedLog(join(dir, "a"));
  const host = await HostLoop.start(log, new MemoryHub().transport("a"), { id: "a", peers: solo, config });
  const older = gate(), newer = gate();
  try {
    const k = ctl.syncs;
    ctl.holds.set(k + 1, older.promise); // the first incarnation's first record
    ctl.holds.set(k + 2, newer.promise); // everything after: the removal, the second incarnation's records
    await host.addGroup(1, membershipOf(["a"]), machine([]));
    await until("the first incarnation's sync is held", () => ctl.syncs === k + 1);
    await host.removeGroup(1);
    const g = await host.addGroup(1, membershipOf(["a"]), machine([]));
    await sleep(500); // the second incarnation campaigns; its first unit waits behind the held sync
    older.open();
    await sleep(50);
    assert.equal(g.status().commit, 0, "committed on the strength of the other incarnation's fsync");
    const ended = await Promise.race([host.done.then(() => "ended", (e) => `failed: ${e}`), sleep(20)]);
    assert.equal(ended, undefined, "the host ended");
    newer.open();
    assert.equal(await g.propose(new TextEncoder().encode("p")), 2);
  } finally {
    older.open();
    newer.open();
    await host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
