/**
 * One follower node of `bench/cluster.ts`, run as a child process of the
 * current runtime:
 *
 *   cluster_node.ts <id> <dataDir> <peersJson> <electionTimeoutMs>
 *
 * Prints `ready` once started and stops (then exits) when its stdin closes,
 * so it never outlives the bench.
 *
 * @module
 */

import process from "node:process";
import type { CommandCodec, RaftNode } from "../mod.ts";
import { Counter, rawBytes } from "./cluster_machine.ts";

type StartNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: Counter;
  command: CommandCodec<Uint8Array>;
  config: { electionTimeoutMs: number; heartbeatMs: number };
}) => Promise<RaftNode<Uint8Array, number, Counter>>;

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
// A computed specifier: each runtime loads (and type-checks) only its own adapter.
const adapter = `../adapters/${isDeno ? "deno" : "bun"}/mod.ts`;
const { startNode } = (await import(adapter)) as { startNode: StartNode };

const [id, dataDir, peersJson, electionTimeoutMs] = process.argv.slice(2);
if (!id || !dataDir || !peersJson || !electionTimeoutMs) {
  console.error("usage: cluster_node.ts <id> <dataDir> <peersJson> <electionTimeoutMs>");
  process.exit(2);
}

const node = await startNode({
  id,
  peers: JSON.parse(peersJson) as Record<string, string>,
  dataDir,
  stateMachine: new Counter(),
  command: rawBytes,
  config: { electionTimeoutMs: Number(electionTimeoutMs), heartbeatMs: 100 },
});
console.log("ready");

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await node.stop().catch(() => {});
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
