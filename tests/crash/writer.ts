/**
 * The child program of the crash test: one plank node on a data directory,
 * started with `startNode` of whichever runtime runs it (Deno's adapter under
 * Deno, Bun's under Bun), WAL with fsync and TCP on 127.0.0.1.
 *
 *   writer.ts write  <id> <dataDir> <peersJson> [prefix]  # propose prefix-1, prefix-2, … forever, 64 in flight
 *   writer.ts member <id> <dataDir> <peersJson>           # only run the node (a peer of a writer)
 *   writer.ts verify <id> <dataDir> <peersJson>           # recover, read once, print the applied commands
 *
 * `peersJson` maps every node id of the cluster to `127.0.0.1:port` (one
 * entry for a single-node cluster). A writer prints `ack <value> <position>`
 * per proposal that resolved, where `position` is the 1-based place of the
 * command in the state machine; a proposal resolves only once its entry was
 * committed (fsynced on a majority) and applied, so an acknowledged value must
 * survive a SIGKILL at any moment, at that same position. A verifier prints
 * the applied commands as one JSON line, then keeps its node running (so a
 * cluster keeps its quorum for the other verifiers) until stdin closes.
 *
 * @module
 */

import process from "node:process";
import type { RaftNode } from "../../mod.ts";
import { emit, outcomeUnknown, refusal, sleep, stdinClosed, whenServed } from "./child.ts";

/** Records every applied command, in apply order; a command's result is its 1-based position. */
class AppliedList {
  readonly applied: string[] = [];
  apply(command: string): number {
    this.applied.push(command);
    return this.applied.length;
  }
}

type Node = RaftNode<string, number, AppliedList>;
type StartNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: AppliedList;
  config: { electionTimeoutMs: number; heartbeatMs: number };
}) => Promise<Node>;

const IN_FLIGHT = 64;
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

async function loadStartNode(): Promise<StartNode> {
  // A computed specifier: each runtime loads (and type-checks) only its own adapter.
  const path = `../../adapters/${isDeno ? "deno" : "bun"}/mod.ts`;
  return ((await import(path)) as { startNode: StartNode }).startNode;
}

const [mode, id, dataDir, peersJson, prefix = "w"] = process.argv.slice(2);
if (!["write", "member", "verify"].includes(mode ?? "") || !id || !dataDir || !peersJson) {
  console.error("usage: writer.ts write|member|verify <id> <dataDir> <peersJson> [prefix]");
  process.exit(2);
}
const peers = JSON.parse(peersJson) as Record<string, string>;
const single = Object.keys(peers).length === 1;

const startNode = await loadStartNode();
const machine = new AppliedList();
const node = await startNode({
  id,
  peers,
  dataDir,
  stateMachine: machine,
  // A single node elects itself after one short timeout; a cluster of three
  // processes sharing two cores gets more slack, so it does not change
  // leaders while it is being loaded.
  config: single ? { electionTimeoutMs: 150, heartbeatMs: 25 } : { electionTimeoutMs: 500, heartbeatMs: 50 },
});

if (mode === "member") {
  await stdinClosed();
  await node.stop();
  process.exit(0);
}

if (mode === "verify") {
  // A linearizable read is served only once the leader committed an entry of
  // its own term, which commits (and applies here) the whole recovered log.
  // Three processes restarting at once on two busy cores may take a few elections to settle:
  // a read refused for want of a leader changed nothing, so ask again (for up to 30 s).
  const applied = await whenServed(() => node.read((sm) => [...sm.applied]), 30_000);
  emit(JSON.stringify(applied));
  await stdinClosed();
  await node.stop();
  process.exit(0);
}

// Write mode: wait for a leader (the other processes may still be starting),
// then keep 64 proposals in flight until killed. A follower forwards them.
const deadline = performance.now() + 10_000;
while (node.status().leader === undefined) {
  if (performance.now() > deadline) {
    console.error("no leader within 10 s");
    process.exit(1);
  }
  await sleep(10);
}
let next = 1;
const proposeOne = (): void => {
  const value = `${prefix}-${next++}`;
  node.propose(value).then(
    (position) => {
      emit(`ack ${value} ${position}`);
      proposeOne();
    },
    (e) => {
      // A leader change may refuse or drop a proposal in flight, or leave its
      // outcome unknown (Raft promises nothing for an unacknowledged write,
      // and this one is never counted): propose a fresh value. Anything else
      // is a finding: fail loudly.
      const reason = refusal(e) ?? (outcomeUnknown(e) ? "unknown" : undefined);
      if (reason !== undefined) {
        emit(`refused ${value} ${reason}`);
        setTimeout(proposeOne, 20);
        return;
      }
      console.error(`propose ${value} failed: ${String(e)}`);
      process.exit(1);
    },
  );
};
for (let i = 0; i < IN_FLIGHT; i++) proposeOne();
