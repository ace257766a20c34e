/**
 * Per-group snapshots on the production host (thesis §5 log compaction, §7):
 * three hosts over the in-memory hub, each with its multi-group log and its
 * groups' snapshot stores on real files.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { membershipOf } from "../../core/membership.ts";
import type { Entry, GroupId, NodeId } from "../../core/types.ts";
import { MemoryHub } from "../../adapters/memory/hub.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { MultiGroupLog } from "../../adapters/storage/multi_log.ts";
import { FileGroupSnapshots } from "../../adapters/storage/snapshots.ts";
import type { SnapshotReader } from "../ports/mod.ts";
import {
  type HostGroup,
  type HostGroupOptions,
  type HostLogOp,
  HostLoop,
  type MultiGroupLogPort,
} from "./host_loop.ts";

const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();

const ids = ["a", "b", "c"];
const peers = new Map(ids.map((id) => [id, id]));
const config = { electionTimeoutMs: 150, heartbeatMs: 15 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A state machine keeping every command; it says which it applied and which snapshot it restored. */
class Machine {
  commands: string[] = [];
  /** Commands applied one by one (not through a restore). */
  readonly appliedCommands: string[] = [];
  /** The snapshot indexes restored. */
  readonly restored: number[] = [];
  apply(e: Entry): number {
    const c = decoder.decode(e.data);
    this.commands.push(c);
    this.appliedCommands.push(c);
    return e.index;
  }
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.commands));
  }
  async restore(r: SnapshotReader): Promise<void> {
    this.commands = JSON.parse(decoder.decode(await r.bytes())) as string[];
    this.restored.push(r.meta.index);
  }
}

interface Host {
  readonly host: HostLoop;
  readonly groups: Map<GroupId, { handle: HostGroup; sm: Machine }>;
}

interface StartOptions {
  readonly groups: ReadonlyMap<GroupId, HostGroupOptions>;
  /** Wraps the host's log (to fail a write, as a crash before it). */
  readonly wrap?: (log: MultiGroupLogPort) => MultiGroupLogPort;
  readonly peers?: ReadonlyMap<NodeId, string>;
  readonly members?: readonly NodeId[];
  /** The host's `checkpointBehind` (default 8: often). */
  readonly checkpointBehind?: number;
}

async function startHost(hub: MemoryHub, dir: string, id: NodeId, o: StartOptions): Promise<Host> {
  const log = await MultiGroupLog.open(fs, join(dir, id, "log"), { segmentBytes: 2048 });
  const snapshots = await FileGroupSnapshots.open(fs, join(dir, id, "snapshots"));
  const host = await HostLoop.start(o.wrap ? o.wrap(log) : log, hub.transport(id), {
    id,
    peers: o.peers ?? peers,
    config,
    snapshots,
    snapshotChunkBytes: 64,
    checkpointBehind: o.checkpointBehind ?? 8,
  });
  const groups = new Map<GroupId, { handle: HostGroup; sm: Machine }>();
  for (const [g, options] of o.groups) {
    const sm = new Machine();
    groups.set(g, { handle: await host.addGroup(g, membershipOf(o.members ?? ids), sm, options), sm });
  }
  return { host, groups };
}

/** Polls `ok` until it holds, or fails with `what` at the deadline. */
async function until(what: string, ok: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function leaderOf(hosts: Map<NodeId, Host>, g: GroupId): Promise<Host> {
  let found: Host | undefined;
  await until(`group ${g} has a leader`, () => {
    found = [...hosts.values()].find((h) => h.host.status(g)?.role === "leader");
    return found !== undefined;
  });
  return found!;
}

/** Every byte of every file under `dir`, as text (for "is it still on disk?"). */
async function diskText(dir: string): Promise<string> {
  let out = "";
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += decoder.decode(await fsp.readFile(join(e.parentPath ?? dir, e.name)));
  }
  return out;
}

const cmd = (g: GroupId, i: number) => `g${g}-cmd-${String(i).padStart(4, "0")}-${"x".repeat(100)}`;

test("a group compacts after N entries: its prefix leaves the disk; a restarted host recovers the same state", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  // Group 1 snapshots every 10 entries; group 2 never.
  const groups = new Map<GroupId, HostGroupOptions>([[1, { snapshotEvery: 10, keepAfterSnapshot: 0 }], [2, {}]]);
  const hosts = new Map<NodeId, Host>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, { groups }));
    const leader = await leaderOf(hosts, 1);
    for (let i = 0; i < 40; i++) await leader.groups.get(1)!.handle.propose(encoder.encode(cmd(1, i)));
    await (await leaderOf(hosts, 2)).groups.get(2)!.handle.propose(encoder.encode(cmd(2, 0)));
    // Every host snapshots and compacts group 1 on its own; group 2 keeps its log.
    await until("every host compacted group 1 past 30", () =>
      ids.every((id) => {
        const s = hosts.get(id)!.host.status(1)!;
        return s.compactedIndex >= 30 && s.snapshotIndex >= 30 && s.applied >= 41;
      }));
    await until("group 2 applied everywhere", () => ids.every((id) => hosts.get(id)!.host.status(2)!.applied >= 2));
    for (const id of ids) assert.equal(hosts.get(id)!.host.status(2)!.compactedIndex, 0, "group 2 is not compacted");
    const c = hosts.get("c")!;
    const before = [...c.groups.get(1)!.sm.commands];
    assert.equal(before.length, 40);
    await c.host.stop();

    // On disk: group 1's compacted prefix is gone from c's log files; its snapshot holds it.
    const text = await diskText(join(dir, "c", "log"));
    assert.ok(!text.includes(cmd(1, 0)), "group 1's first command is no longer in the log files");
    assert.ok(text.includes(cmd(2, 0)), "group 2's command still is");
    const reopened = await MultiGroupLog.open(fs, join(dir, "c", "log"), { segmentBytes: 2048 });
    const recovered = reopened.load();
    await reopened.close();
    const g1 = recovered.get(1)!;
    assert.ok(g1.firstIndex! > 30, `group 1's log starts after its snapshot (at ${g1.firstIndex})`);
    assert.ok(g1.entries.every((e) => e.index >= g1.firstIndex!));
    assert.equal(recovered.get(2)!.entries[0]?.index, 1, "group 2's log is whole");

    // Restart c: each group restores from its snapshot, then applies the log suffix only.
    const again = await startHost(hub, dir, "c", { groups });
    hosts.set("c", again);
    const sm1 = again.groups.get(1)!.sm;
    await until("c's group 1 is back to 40 commands", () => sm1.commands.length === 40);
    assert.deepEqual(sm1.commands, before);
    assert.equal(sm1.restored.length, 1);
    assert.ok(sm1.restored[0]! >= 30);
    assert.ok(
      sm1.appliedCommands.length <= 40 - 29,
      `replay starts after the snapshot (${sm1.appliedCommands.length})`,
    );
    assert.ok(!sm1.appliedCommands.includes(cmd(1, 0)));
    const sm2 = again.groups.get(2)!.sm;
    await until("c's group 2 is back", () => sm2.commands.length === 1);
    assert.deepEqual(sm2.restored, []);
    // And the group goes on.
    await (await leaderOf(hosts, 1)).groups.get(1)!.handle.propose(encoder.encode(cmd(1, 40)));
    await until("c applies the next command", () => sm1.commands.length === 41);
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a lagging follower of one group catches up from the snapshot in checksummed chunks; the other group replicates its log", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  const groups = new Map<GroupId, HostGroupOptions>([[1, { snapshotEvery: 10, keepAfterSnapshot: 0 }], [2, {}]]);
  const hosts = new Map<NodeId, Host>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, { groups }));
    await leaderOf(hosts, 1);
    await leaderOf(hosts, 2);
    // c goes away while both groups go on. (Not wiped: a voter that forgets its log breaks Raft's
    // assumptions — its leader never lowers its match — and must rejoin as a new member.)
    await hosts.get("c")!.host.stop();
    hosts.delete("c");
    const l1 = await leaderOf(hosts, 1);
    for (let i = 0; i < 35; i++) await l1.groups.get(1)!.handle.propose(encoder.encode(cmd(1, i)));
    const l2 = await leaderOf(hosts, 2);
    for (let i = 0; i < 5; i++) await l2.groups.get(2)!.handle.propose(encoder.encode(cmd(2, i)));
    await until("group 1's leader compacted", () => l1.host.status(1)!.compactedIndex >= 30);

    // c comes back: group 1's leader has compacted what c lacks, so it sends the snapshot. One chunk
    // is damaged on the wire (an 'x' of a command turned 'y': still a valid state machine snapshot).
    let chunks = 0;
    let damaged = 0;
    hub.tamper = (m) => {
      if (m.type !== "InstallSnapshot") return m;
      chunks++;
      const at = m.data.indexOf(0x78);
      if (damaged > 0 || at < 0) return m;
      damaged++;
      const data = m.data.slice();
      data[at] = 0x79;
      return { ...m, data };
    };
    const c = await startHost(hub, dir, "c", { groups });
    hosts.set("c", c);
    const sm1 = c.groups.get(1)!.sm;
    const sm2 = c.groups.get(2)!.sm;
    await until("c's group 1 caught up", () => sm1.commands.length === 35);
    assert.deepEqual(sm1.commands, l1.groups.get(1)!.sm.commands);
    assert.equal(damaged, 1);
    assert.ok(chunks > 2 * 10, `the snapshot came in chunks, resent after the damage (${chunks})`);
    assert.equal(sm1.restored.length, 1, "group 1 was installed from a snapshot, once: the damaged one was refused");
    assert.ok(c.host.status(1)!.snapshotIndex >= 30);
    assert.ok(!sm1.appliedCommands.includes(cmd(1, 0)), "the compacted prefix never came as entries");
    // Group 2 was never compacted: c gets it entry by entry, no snapshot.
    await until("c's group 2 caught up", () => sm2.commands.length === 5);
    assert.deepEqual(sm2.restored, []);
    assert.deepEqual(sm2.appliedCommands, l2.groups.get(2)!.sm.commands);
    // c's installed snapshot is durable: stopped and restarted, it restores from its own copy.
    const snapshotIndex = c.host.status(1)!.snapshotIndex;
    await c.host.stop();
    const again = await startHost(hub, dir, "c", { groups });
    hosts.set("c", again);
    await until("c's group 1 recovered", () => again.groups.get(1)!.sm.commands.length === 35);
    assert.deepEqual(again.groups.get(1)!.sm.restored, [snapshotIndex]);
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a crash between the snapshot's write and the compaction record loses nothing", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  const solo = new Map([["a", "a"]]);
  const groups = new Map<GroupId, HostGroupOptions>([[1, { snapshotEvery: 10, keepAfterSnapshot: 0 }]]);
  let compactions = 0;
  // The host dies at the write of its first compaction record: the snapshot is durable, the record is not.
  const failCompaction = (log: MultiGroupLogPort): MultiGroupLogPort => ({
    load: () => log.load(),
    write: (ops: readonly HostLogOp[]) => {
      if (ops.some((op) => "compactTo" in op)) {
        compactions++;
        return Promise.reject(new Error("crash before the compaction record"));
      }
      return log.write(ops);
    },
    sync: () => log.sync(),
    pinning: (behind, max) => log.pinning(behind, max),
    close: () => log.close(),
  });
  let host: Host | undefined;
  try {
    host = await startHost(hub, dir, "a", { groups, wrap: failCompaction, peers: solo, members: ["a"] });
    const g = host.groups.get(1)!;
    await until("a leads", () => g.handle.status().role === "leader");
    // Proposals until the host fails: the one whose snapshot's compaction fails may or may not be answered.
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) {
      try {
        await g.handle.propose(encoder.encode(cmd(1, i)));
        acked.push(cmd(1, i));
      } catch {
        break;
      }
    }
    await assert.rejects(host.host.done, /crash before the compaction record|write/);
    assert.equal(compactions, 1);
    assert.ok(acked.length >= 9, `${acked.length} acknowledged`);
    const snapDir = join(dir, "a", "snapshots", "1", "snapshots");
    assert.equal((await fsp.readdir(snapDir)).filter((n) => n.endsWith(".snap")).length, 1, "the snapshot is durable");

    // Restart: the snapshot and the whole log are there; replay reconciles them.
    host = await startHost(hub, dir, "a", { groups, peers: solo, members: ["a"] });
    const sm = host.groups.get(1)!.sm;
    const h = host.groups.get(1)!.handle;
    await until("a leads again", () => h.status().role === "leader");
    await until("every acknowledged command is back", () => acked.every((c) => sm.commands.includes(c)));
    assert.equal(sm.restored.length, 1, "restored from the snapshot");
    assert.deepEqual(sm.commands.slice(0, acked.length), acked, "in order, none lost, none twice");
    assert.equal(new Set(sm.commands).size, sm.commands.length);
    // The group goes on and compacts this time.
    for (let i = 20; i < 32; i++) await h.propose(encoder.encode(cmd(1, i)));
    await until("compacted after the restart", () => h.status().compactedIndex >= 20);
  } finally {
    await host?.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a follower that crashed after storing a received snapshot, before its compaction record, recovers and goes on", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  const groups = new Map<GroupId, HostGroupOptions>([[1, { snapshotEvery: 10, keepAfterSnapshot: 0 }]]);
  const hosts = new Map<NodeId, Host>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, { groups }));
    await leaderOf(hosts, 1);
    await hosts.get("c")!.host.stop();
    hosts.delete("c");
    const l1 = await leaderOf(hosts, 1);
    for (let i = 0; i < 25; i++) await l1.groups.get(1)!.handle.propose(encoder.encode(cmd(1, i)));
    await until("group 1's leader compacted", () => l1.host.status(1)!.compactedIndex >= 20);
    // c is sent the snapshot, stores it durably, and dies writing the compaction that follows.
    let failed = 0;
    const crashAtCompaction = (log: MultiGroupLogPort): MultiGroupLogPort => ({
      load: () => log.load(),
      write: (ops: readonly HostLogOp[]) => {
        if (!ops.some((op) => "compactTo" in op)) return log.write(ops);
        failed++;
        return Promise.reject(new Error("crash before the compaction record"));
      },
      sync: () => log.sync(),
      pinning: (behind, max) => log.pinning(behind, max),
      close: () => log.close(),
    });
    const doomed = await startHost(hub, dir, "c", { groups, wrap: crashAtCompaction });
    await assert.rejects(doomed.host.done);
    assert.equal(failed, 1);
    // Back: the stored snapshot is past c's log, which the core drops; the multi-group log must follow,
    // without the help of a later compaction or of a checkpoint for an old pin.
    const rare = { groups: new Map([[1, { snapshotEvery: 0 }]]), checkpointBehind: 1000 };
    let c = await startHost(hub, dir, "c", rare);
    hosts.set("c", c);
    await until("c restored group 1", () => c.groups.get(1)!.sm.commands.length === 25);
    assert.equal(c.groups.get(1)!.sm.restored.length, 1);
    for (let i = 25; i < 30; i++) await l1.groups.get(1)!.handle.propose(encoder.encode(cmd(1, i)));
    await until("c applied the new commands", () => c.groups.get(1)!.sm.commands.length === 30);
    // And its log replays after another restart.
    await c.host.stop();
    c = await startHost(hub, dir, "c", rare);
    hosts.set("c", c);
    await until("c recovered everything", () => c.groups.get(1)!.sm.commands.length === 30);
    assert.deepEqual(c.groups.get(1)!.sm.commands, l1.groups.get(1)!.sm.commands);
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a user's snapshot of one group: stored at its applied index, its log compacted behind it, restored at restart", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  // Never on a schedule: only when asked.
  const groups = new Map<GroupId, HostGroupOptions>([[1, { keepAfterSnapshot: 0 }], [2, {}]]);
  const hosts = new Map<NodeId, Host>();
  try {
    for (const id of ids) hosts.set(id, await startHost(hub, dir, id, { groups }));
    const leader = await leaderOf(hosts, 1);
    for (let i = 0; i < 12; i++) await leader.groups.get(1)!.handle.propose(encoder.encode(cmd(1, i)));
    const c = hosts.get("c")!;
    await until("c applied group 1's commands", () => c.groups.get(1)!.sm.commands.length === 12);
    assert.equal(c.host.status(1)!.snapshotIndex, 0, "no snapshot before one is asked for");
    const applied = c.host.status(1)!.applied;
    const meta = await c.groups.get(1)!.handle.snapshot();
    assert.ok(meta.index >= applied, `snapshot at ${meta.index}, applied ${applied} when asked`);
    await until("c compacted group 1 behind its snapshot", () => {
      const s = c.host.status(1)!;
      return s.snapshotIndex === meta.index && s.compactedIndex === meta.index;
    });
    // Only c, only group 1.
    assert.equal(c.host.status(2)!.snapshotIndex, 0);
    for (const id of ["a", "b"]) assert.equal(hosts.get(id)!.host.status(1)!.snapshotIndex, 0);
    // Asked again with nothing applied since: the same snapshot.
    assert.deepEqual(await c.groups.get(1)!.handle.snapshot(), meta);

    const before = [...c.groups.get(1)!.sm.commands];
    await c.host.stop();
    const again = await startHost(hub, dir, "c", { groups });
    hosts.set("c", again);
    const sm1 = again.groups.get(1)!.sm;
    await until("c's group 1 is back", () => sm1.commands.length === 12);
    assert.deepEqual(sm1.commands, before);
    assert.deepEqual(sm1.restored, [meta.index]);
  } finally {
    for (const h of hosts.values()) await h.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a user's snapshot is refused with a reason on a host without snapshot stores", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-gsnap-"));
  const hub = new MemoryHub();
  const solo = new Map([["a", "a"]]);
  const host = await HostLoop.start(await MultiGroupLog.open(fs, join(dir, "log")), hub.transport("a"), {
    id: "a",
    peers: solo,
    config,
  });
  try {
    const g = await host.addGroup(1, membershipOf(["a"]), new Machine());
    await until("a leads", () => g.status().role === "leader");
    await g.propose(encoder.encode("x"));
    await assert.rejects(g.snapshot(), /no snapshot stores/);
  } finally {
    await host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("hosting a removed group again keeps its snapshots until its removal record is durable", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-snap-"));
  const hub = new MemoryHub();
  let hold: Promise<void> | undefined;
  const wrap = (log: MultiGroupLogPort): MultiGroupLogPort => ({
    load: () => log.load(),
    write: (ops) => log.write(ops),
    pinning: (behind, max) => log.pinning(behind, max),
    close: () => log.close(),
    sync: async () => {
      await hold;
      await log.sync();
    },
  });
  const solo = new Map([["a", "a"]]);
  const host = await startHost(hub, dir, "a", { groups: new Map([[1, {}]]), peers: solo, members: ["a"], wrap });
  let open = () => {};
  try {
    const h = host.groups.get(1)!.handle;
    await until("a leads", () => h.status().role === "leader");
    await h.propose(encoder.encode("x"));
    await h.snapshot();
    const snapDir = join(dir, "a", "snapshots", "1", "snapshots");
    const snaps = async () => (await fsp.readdir(snapDir).catch(() => [])).filter((n) => n.endsWith(".snap")).length;
    assert.equal(await snaps(), 1);
    hold = new Promise<void>((r) => (open = r));
    await host.host.removeGroup(1); // its removal record waits behind the held fsync
    let added = false;
    const again = host.host.addGroup(1, membershipOf(["a"]), new Machine()).then(() => (added = true));
    await new Promise((r) => setTimeout(r, 100));
    // A crash now replays the removed incarnation (its removal is not durable), which needs its snapshot.
    assert.equal(added, false, "hosted again before the removal was durable");
    assert.equal(await snaps(), 1, "the snapshot went before the removal was durable");
    hold = undefined;
    open();
    await again;
    assert.equal(await snaps(), 0, "an earlier incarnation's snapshots go once its removal is durable");
  } finally {
    hold = undefined;
    open();
    await host.host.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
