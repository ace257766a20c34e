/**
 * The production host over the runtime's TCP transport: three hosts of sixteen
 * groups, each host one transport (so one connection per peer process), every
 * group's messages of an iteration handed over together (one write per
 * destination), and a lost host's groups failing over once quiescent.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { membershipOf } from "../../core/membership.ts";
import type { GroupId, Message, NodeId } from "../../core/types.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { MultiGroupLog } from "../../adapters/storage/multi_log.ts";
import type { StreamTransport } from "../../adapters/transport/stream.ts";
import { OutcomeUnknown, RaftRejected } from "../errors.ts";
import type { TransportPort } from "../ports/mod.ts";
import { type HostGroup, HostLoop } from "./host_loop.ts";

const deno = typeof Deno !== "undefined";
const fs: DurableFs = deno
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();
const Tcp = deno
  ? (await import("../../adapters/deno/tcp.ts")).DenoTcpTransport
  : (await import("../../adapters/bun/tcp.ts")).BunTcpTransport;

const ids = ["a", "b", "c"];
const groups: GroupId[] = Array.from({ length: 16 }, (_, i) => i + 1);
const config = { electionTimeoutMs: 200, heartbeatMs: 20 };
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Records what a host hands its transport in bursts: one per destination per
 * task, as the stream transport writes them, each with the groups whose own
 * messages it carries (coalesced heartbeats are one message already, so they
 * are left out: they would make any burst look wide).
 */
class Counting implements TransportPort {
  /** Most distinct groups one burst carried since the last reset. */
  widest = 0;
  readonly #open = new Map<NodeId, Set<GroupId>>();
  constructor(readonly inner: StreamTransport) {}
  send(message: Message): boolean {
    let burst = this.#open.get(message.to);
    if (burst === undefined) {
      const groups = burst = new Set();
      this.#open.set(message.to, groups);
      queueMicrotask(() => {
        this.#open.delete(message.to);
        this.widest = Math.max(this.widest, groups.size);
      });
    }
    const coalesced = message.type === "Heartbeats" || message.type === "HeartbeatResponses" ||
      message.type === "HostHeartbeat";
    if (!coalesced) burst.add(message.group);
    return this.inner.send(message);
  }
  onMessage(handler: (message: Message) => void): void {
    this.inner.onMessage(handler);
  }
  onUnreachable(handler: (peer: NodeId) => void): void {
    this.inner.onUnreachable(handler);
  }
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.inner.setPeers(peers);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function leaders(hosts: Map<NodeId, HostLoop>, among: readonly NodeId[]): Promise<Map<GroupId, NodeId>> {
  for (let i = 0; i < 600; i++) {
    const found = new Map<GroupId, NodeId>();
    for (const g of groups) {
      for (const id of among) if (hosts.get(id)!.status(g)?.role === "leader") found.set(g, id);
    }
    if (found.size === groups.length) return found;
    await sleep(10);
  }
  throw new Error("not every group elected a leader");
}

/**
 * Proposes `data` to group `g` through host `via` (forwarded to the group's
 * leader), and when a leader change refuses it or leaves its outcome unknown,
 * afresh at the leader among `among`: such a proposal was never acknowledged
 * (this test asserts nothing about how often a value is applied), and a loaded
 * machine can stall a loop past the 200 ms election timeout. Resolves with the
 * applied index.
 */
async function propose(
  hosts: Map<NodeId, HostLoop>,
  handles: Map<string, HostGroup>,
  via: NodeId,
  among: readonly NodeId[],
  g: GroupId,
  data: Uint8Array,
): Promise<number> {
  for (let attempt = 0;; attempt++) {
    const leader = attempt === 0 ? via : (await leaders(hosts, among)).get(g)!;
    try {
      return await handles.get(`${leader}/${g}`)!.propose(data) as number;
    } catch (e) {
      if (!(e instanceof RaftRejected || e instanceof OutcomeUnknown) || attempt >= 20) throw e;
    }
  }
}

test("three hosts of sixteen groups over TCP: one transport per host, batched sends, and failover of quiescent groups", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-host-tcp-"));
  const transports = new Map<NodeId, StreamTransport>();
  const hosts = new Map<NodeId, HostLoop>();
  const handles = new Map<string, HostGroup>();
  const counting = new Map<NodeId, Counting>();
  try {
    for (const id of ids) {
      const t = new Tcp({ clusterId: "host-test", self: id, listen: "127.0.0.1:0" });
      await t.start();
      transports.set(id, t);
    }
    const peers = new Map([...transports].map(([id, t]) => [id, t.address]));
    for (const id of ids) {
      const c = new Counting(transports.get(id)!);
      counting.set(id, c);
      const host = await HostLoop.start(await MultiGroupLog.open(fs, join(dir, id)), c, { id, peers, config });
      hosts.set(id, host);
      for (const g of groups) {
        handles.set(`${id}/${g}`, await host.addGroup(g, membershipOf(ids), { apply: (e) => e.index }));
      }
    }
    await leaders(hosts, ids);
    // Every group at once, through host a (forwarded to each group's leader): a host's messages of one
    // iteration leave together, so one burst to a peer carries several groups' messages (counted by
    // groups, not messages: how many heartbeat-only bursts a slow machine adds meanwhile is its load's).
    for (const c of counting.values()) c.widest = 0;
    const results = await Promise.all(
      groups.map((g) => propose(hosts, handles, "a", ids, g, encoder.encode(`w${g}`))),
    );
    for (const r of results) assert.equal(typeof r, "number");
    const widest = Math.max(...[...counting.values()].map((c) => c.widest));
    assert.ok(widest >= 2, `the widest burst carried ${widest} group(s)' messages`);

    // Idle: every group quiesces on every host.
    let quiet = false;
    for (let i = 0; i < 400 && !quiet; i++) {
      await sleep(10);
      quiet = ids.every((id) => groups.every((g) => hosts.get(id)!.status(g)!.quiescent));
    }
    assert.ok(quiet, "every group quiesced");

    // The host leading most groups goes away: the failure detector wakes its quiescent groups, which elect anew.
    const led = await leaders(hosts, ids);
    const count = new Map<NodeId, number>();
    for (const id of led.values()) count.set(id, (count.get(id) ?? 0) + 1);
    const victim = [...count].sort((x, y) => y[1] - x[1])[0][0];
    await hosts.get(victim)!.stop();
    hosts.delete(victim);
    const rest = ids.filter((id) => id !== victim);
    const after = await leaders(hosts, rest);
    for (const g of groups) {
      assert.notEqual(after.get(g), victim);
      const index = await propose(hosts, handles, after.get(g)!, rest, g, encoder.encode(`after${g}`));
      assert.ok(index >= 3);
    }
  } finally {
    for (const h of hosts.values()) await h.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
