/**
 * Many Raft groups per process: three host processes of the same runtime
 * (this one hosts `a` and runs the clients; `b` and `c` are children running
 * this file with `--child`), `--groups` groups hosted by all three, real
 * multi-group logs (one fsync per iteration) and one TCP transport per
 * process on 127.0.0.1.
 *
 * ```
 * deno run -A bench/multi.ts [--groups 16] [--seconds 5] [--inflight 64] [--idle 5]
 * bun bench/multi.ts [--groups 16] [--seconds 5] [--inflight 64] [--idle 5]
 * ```
 *
 * Load: `--inflight` clients in process `a`, each proposing 128-byte writes
 * to the group of a random key (hash over the groups) through `a`'s host,
 * which forwards to the group's leader; groups' leaders are wherever the
 * elections put them (no balancing here). Prints writes/s and p50/p99 in ms.
 * Then, with `--idle`, waits for every group to quiesce and prints process
 * `a`'s CPU (% of one core) and RSS over `--idle` seconds with no load.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../tests/free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { membershipOf } from "../core/membership.ts";
import type { GroupId, NodeId } from "../core/types.ts";
import type { DurableFs } from "../adapters/storage/fs.ts";
import { MultiGroupLog } from "../adapters/storage/multi_log.ts";
import { type HostGroup, HostLoop } from "../effects/host/host_loop.ts";

const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const args = deno ? deno.args : process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const groupCount = Number(arg("groups", "16"));
const groups: GroupId[] = Array.from({ length: groupCount }, (_, i) => i + 1);
const ids = ["a", "b", "c"];
const config = { electionTimeoutMs: 1000, heartbeatMs: 100 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function startHost(id: NodeId, peers: Map<NodeId, string>, dir: string): Promise<HostLoop> {
  const fs: DurableFs = deno
    ? new (await import("../adapters/deno/fs.ts")).DenoFs()
    : new (await import("../adapters/bun/fs.ts")).BunFs();
  const Tcp = deno
    ? (await import("../adapters/deno/tcp.ts")).DenoTcpTransport
    : (await import("../adapters/bun/tcp.ts")).BunTcpTransport;
  const transport = new Tcp({ clusterId: "bench-multi", self: id, listen: peers.get(id)! });
  await transport.start();
  const host = await HostLoop.start(await MultiGroupLog.open(fs, join(dir, id)), transport, { id, peers, config });
  for (const g of groups) await host.addGroup(g, membershipOf(ids), { apply: (e) => e.index });
  return host;
}

const child = args.indexOf("--child");
if (child >= 0) {
  const peers = new Map<NodeId, string>(JSON.parse(arg("peers", "[]")));
  const host = await startHost(args[child + 1], peers, arg("dir", ""));
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => void host.stop().then(() => process.exit(0)));
  process.stdin.on("close", () => void host.stop().then(() => process.exit(0)));
  console.log("ready");
} else {
  const seconds = Number(arg("seconds", "5"));
  const inflight = Number(arg("inflight", "64"));
  const idle = Number(arg("idle", "0"));
  const dir = await mkdtemp(join(tmpdir(), "plank-bench-multi-"));
  const peers = new Map<NodeId, string>();
  for (const id of ids) peers.set(id, `127.0.0.1:${await freePort()}`);
  const self = deno ? deno.execPath() : process.execPath;
  const file = new URL(import.meta.url).pathname;
  const children: ChildProcess[] = [];
  for (const id of ["b", "c"]) {
    const rest = [
      file,
      "--child",
      id,
      "--peers",
      JSON.stringify([...peers]),
      "--dir",
      dir,
      "--groups",
      String(groupCount),
    ];
    const p = spawn(self, deno ? ["run", "-A", ...rest] : rest, { stdio: ["pipe", "pipe", "inherit"] });
    children.push(p);
    await new Promise<void>((resolve) => p.stdout!.once("data", () => resolve()));
  }
  const host = await startHost("a", peers, dir);
  try {
    const handles = new Map<GroupId, HostGroup>(groups.map((g) => [g, host.group(g)!]));
    while (groups.some((g) => host.status(g)?.leader === undefined)) await sleep(20);
    const leaders = new Map<NodeId, number>();
    for (const g of groups) leaders.set(host.status(g)!.leader!, (leaders.get(host.status(g)!.leader!) ?? 0) + 1);
    const payload = new Uint8Array(128);
    const latencies: number[] = [];
    let stop = false;
    let measuring = false;
    const client = async () => {
      while (!stop) {
        const g = groups[Math.floor(Math.random() * groups.length)];
        const t0 = performance.now();
        await handles.get(g)!.propose(payload);
        if (measuring) latencies.push(performance.now() - t0);
      }
    };
    const running = Array.from({ length: inflight }, client);
    await sleep(1000);
    measuring = true;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const done = latencies.length;
    stop = true;
    await Promise.all(running);
    latencies.sort((x, y) => x - y);
    const pct = (p: number) => latencies[Math.min(done - 1, Math.floor(done * p))].toFixed(1);
    const runtime = deno ? `deno ${deno.version.deno}` : `bun ${process.versions.bun}`;
    console.log(
      `${runtime} 3 processes x ${groupCount} groups, ${inflight} clients: ${(done / elapsed).toFixed(0)} writes/s, ` +
        `p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (leaders ${JSON.stringify(Object.fromEntries(leaders))})`,
    );
    if (idle > 0) {
      while (groups.some((g) => !host.status(g)?.quiescent)) await sleep(50);
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      await sleep(idle * 1000);
      const c1 = process.cpuUsage(c0);
      const cpu = (c1.user + c1.system) / 1000 / (performance.now() - w0) * 100;
      const rss = process.memoryUsage().rss;
      console.log(
        `  quiescent: process a ${cpu.toFixed(2)}% of a core, RSS ${(rss / 2 ** 20).toFixed(1)} MiB ` +
          `(${(rss / groupCount / 1024).toFixed(1)} KiB per group, whole process)`,
      );
    }
  } finally {
    await host.stop();
    for (const p of children) p.stdin!.end();
    await Promise.all(children.map((p) => new Promise((r) => p.once("exit", r))));
    await rm(dir, { recursive: true, force: true });
  }
}
