/**
 * End-to-end throughput and latency of a 3-node plank cluster on the runtime
 * that runs it: real write-ahead logs (fsync) in a temp directory and TCP on
 * 127.0.0.1. This process hosts node `a` (the leader) and proposes on it;
 * nodes `b` and `c` are child processes of the same runtime
 * (`bench/cluster_node.ts`).
 *
 * ```
 * deno run -A bench/cluster.ts [--seconds 10] [--inflight 64] [--size 128]
 * bun bench/cluster.ts [--seconds 10] [--inflight 64] [--size 128]
 * ```
 *
 * Load: `--size`-byte commands (raw bytes, no encoding), `--inflight`
 * proposals in flight, for `--seconds` after a 2 s warm-up. Prints the
 * runtime, commits/s and the p50/p99 propose latency in ms (proposal to
 * committed and applied on the leader).
 *
 * The client shares a process with the leader, as an application embedding
 * plank would; all three processes share this machine's cores, which the
 * output names. Followers stop when their stdin closes, so they never outlive
 * the bench (Ctrl-C, an exception or a kill of this process included).
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../tests/free_port.ts";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { RaftNode } from "../mod.ts";
import { Counter, loadStartNode, rawBytes } from "./cluster_machine.ts";
import { startFollower, stopFollowers } from "./cluster_children.ts";
import { flag } from "./flags.ts";

const WARMUP_MS = 2000;
/** `a` campaigns long before `b` or `c` would, so the leader lives in this process (fair latency). */
const LEADER_ELECTION_MS = 300;
const FOLLOWER_ELECTION_MS = 10_000;

const SECONDS = Number(flag("seconds", "10"));
const IN_FLIGHT = Number(flag("inflight", "64"));
const SIZE = Number(flag("size", "128"));
if (!(SECONDS > 0) || !(IN_FLIGHT >= 1) || !(SIZE >= 0)) {
  console.error("usage: cluster.ts [--seconds S > 0] [--inflight N >= 1] [--size BYTES >= 0]");
  process.exit(2);
}
const COMMAND = new Uint8Array(SIZE).fill(120);
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const deno = (globalThis as unknown as { Deno?: { version: { deno: string } } }).Deno;
const runtime = isDeno ? `deno ${deno!.version.deno}` : `bun ${process.versions.bun}`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const startNode = await loadStartNode();

const children: ChildProcess[] = [];
// Children stop when their stdin closes; SIGKILL is the fallback if this process dies abruptly.
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
let node: RaftNode<Uint8Array, number, Counter> | undefined;
let root: string | undefined;
// Ctrl-C / kill: the followers see their stdin close and stop; remove the data too.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    children.forEach((c) => c.kill("SIGKILL"));
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  });
}
try {
  root = await mkdtemp(join(tmpdir(), "plank-bench-cluster-"));
  const peers: Record<string, string> = {};
  for (const id of ["a", "b", "c"]) peers[id] = `127.0.0.1:${await freePort()}`;
  for (const id of ["b", "c"]) children.push(await startFollower(id, join(root, id), peers, FOLLOWER_ELECTION_MS));
  node = await startNode({
    id: "a",
    peers,
    dataDir: join(root, "a"),
    stateMachine: new Counter(),
    command: rawBytes,
    config: { electionTimeoutMs: LEADER_ELECTION_MS, heartbeatMs: 100 },
  });
  const leaderNode = node;
  const deadline = performance.now() + 15_000;
  while (leaderNode.status().role !== "leader") {
    if (performance.now() > deadline) throw new Error(`no leader on a (leader: ${leaderNode.status().leader})`);
    await sleep(20);
  }

  const start = performance.now() + WARMUP_MS;
  const end = start + SECONDS * 1000;
  const latencies: number[] = [];
  let failures = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        await leaderNode.propose(COMMAND);
      } catch {
        failures++;
        continue;
      }
      const t1 = performance.now();
      // Count proposals started and finished inside the window.
      if (t0 >= start && t1 <= end) latencies.push(t1 - t0);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));

  const sorted = Float64Array.from(latencies).sort();
  const rate = latencies.length / SECONDS;
  console.log(
    `${runtime}: 3 nodes (fsync, TCP 127.0.0.1, 3 processes on ${availableParallelism()} cores), ` +
      `${IN_FLIGHT} in flight, ${SIZE}-byte commands, ${SECONDS} s: ` +
      `${Math.round(rate)} commits/s, p50 ${percentile(sorted, 50).toFixed(2)} ms, ` +
      `p99 ${percentile(sorted, 99).toFixed(2)} ms` + (failures > 0 ? `, ${failures} failed proposals` : ""),
  );
} finally {
  await node?.stop().catch(() => {});
  await stopFollowers(children);
  if (root !== undefined) await rm(root, { recursive: true, force: true });
}
// Exit even if a socket or timer is still being torn down.
process.exit(0);
