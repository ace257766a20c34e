/**
 * bench/recovery: one single-voter plank node on real files (write-ahead log
 * with fsync, the public adapter of the runtime running it), snapshots off so
 * the log holds every entry. `bench/compare.ts` runs it twice per runtime:
 *
 * ```
 * deno run -A bench/recovery.ts write   DATA_DIR [--entries 1000000] [--size 128] [--inflight 4096]
 * deno run -A bench/recovery.ts recover DATA_DIR [--entries 1000000]
 *   (both: [--election-timeout 100] in ms, heartbeat a tenth of it)
 * bun bench/recovery.ts ...             (same arguments)
 * ```
 *
 * `write` starts a new cluster of one in DATA_DIR, proposes `--entries`
 * raw `--size`-byte commands with `--inflight` proposals outstanding (so
 * group commit batches them into few fsyncs), prints
 * `written N entries in MS ms (R entries/s)` and then waits to be killed
 * (the caller SIGKILLs it, as it does etcd).
 *
 * `recover` restarts the node on the same DATA_DIR (the log is replayed) and
 * prints `ready applied=A ms=MS` once a linearizable read index succeeds and
 * the state machine has applied at least `--entries` commands; MS counts from
 * this process's first line of code, the caller measures from its spawn. It
 * then stays up so the caller can read its VmRSS, until killed.
 *
 * Both modes stop when their stdin closes, so they never outlive the caller.
 *
 * @module
 */

import { freePort } from "../tests/free_port.ts";
import process from "node:process";
import type { CommandCodec, RaftNode } from "../mod.ts";
import { flag } from "./flags.ts";

const T0 = performance.now();

/** Counts applied commands; keeps nothing else (the log is what is measured). */
class Counter {
  /** Commands applied so far. */
  applied = 0;
  /** Counts one command. */
  apply(_command: Uint8Array): number {
    return ++this.applied;
  }
}

const rawBytes: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };

type StartNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: Counter;
  command: CommandCodec<Uint8Array>;
  config: { electionTimeoutMs: number; heartbeatMs: number; snapshotEvery: number };
  requestTimeoutMs: number;
}) => Promise<RaftNode<Uint8Array, number, Counter>>;

const [mode, dataDir] = process.argv.slice(2);
const ENTRIES = Number(flag("entries", "1000000"));
const SIZE = Number(flag("size", "128"));
const IN_FLIGHT = Number(flag("inflight", "4096"));
const ELECTION_MS = Number(flag("election-timeout", "100"));
if (
  (mode !== "write" && mode !== "recover") || !dataDir || !(ENTRIES >= 0) || !(SIZE >= 0) || !(IN_FLIGHT >= 1) ||
  !(ELECTION_MS >= 2)
) {
  console.error("usage: recovery.ts write|recover DATA_DIR [--entries N] [--size BYTES] [--inflight N]");
  process.exit(2);
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
// A computed specifier: each runtime loads (and type-checks) only its own adapter.
const adapter = `../adapters/${isDeno ? "deno" : "bun"}/mod.ts`;
const { startNode } = (await import(adapter)) as { startNode: StartNode };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Never outlive the caller: it holds our stdin.
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();

// A single voter has no peers to reach; the TCP listener is only there because startNode wants one.
const counter = new Counter();
const node = await startNode({
  id: "r",
  peers: { r: `127.0.0.1:${await freePort()}` },
  dataDir,
  stateMachine: counter,
  command: rawBytes,
  // A lone voter still waits one (randomized) election timeout before it leads: keep it short, as for etcd's side.
  config: { electionTimeoutMs: ELECTION_MS, heartbeatMs: Math.max(1, ELECTION_MS / 10), snapshotEvery: 0 },
  requestTimeoutMs: 120_000,
});

if (mode === "write") {
  while (node.status().role !== "leader") await sleep(5);
  const command = new Uint8Array(SIZE).fill(120);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < ENTRIES) {
      next++;
      await node.propose(command);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, Math.max(1, ENTRIES)) }, worker));
  const ms = performance.now() - t0;
  const s = node.status();
  console.log(
    `written ${ENTRIES} entries in ${ms.toFixed(0)} ms (${Math.round(ENTRIES / (ms / 1000))} entries/s), ` +
      `commit=${s.commit}`,
  );
} else {
  for (;;) {
    try {
      await node.readIndex();
      if (counter.applied >= ENTRIES) break;
    } catch {
      // Not leader yet: readIndex waits for a leader up to leaderWaitMs, then fails; try again.
    }
    await sleep(1);
  }
  console.log(`ready applied=${node.status().applied} ms=${(performance.now() - T0).toFixed(0)}`);
}
