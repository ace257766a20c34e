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
import { Counter, loadStartNode, rawBytes } from "./cluster_machine.ts";

const startNode = await loadStartNode();

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
