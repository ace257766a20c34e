/**
 * The child program of the crash test: one single-node plank cluster (id
 * `"w"`) on a data directory, under whichever runtime runs it (Deno's adapter
 * under Deno, Bun's under Bun).
 *
 *   writer.ts write  <dataDir> <port> [prefix]   # propose prefix-1, prefix-2, … forever (64 in flight); `ack <value>` per success
 *   writer.ts verify <dataDir> <port>            # recover, read once, print the applied commands as one JSON line
 *
 * An `ack` line is written only after its proposal resolved, i.e. after the
 * entry was committed (fsynced) and applied, so a value acknowledged here
 * must survive a SIGKILL at any moment.
 *
 * @module
 */

import process from "node:process";
import type { RaftNode } from "../../mod.ts";

/** Records every applied command, in apply order. */
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

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

async function loadStartNode(): Promise<StartNode> {
  // A computed specifier: each runtime loads (and type-checks) only its own adapter.
  const path = `../../adapters/${isDeno ? "deno" : "bun"}/mod.ts`;
  return ((await import(path)) as { startNode: StartNode }).startNode;
}

const encoder = new TextEncoder();

/** Writes a line to stdout at once (no buffering in this process), so the parent sees it even if we die next. */
function emit(line: string): void {
  if (isDeno) {
    const deno = (globalThis as unknown as { Deno: { stdout: { writeSync(b: Uint8Array): number } } }).Deno;
    let bytes = encoder.encode(line + "\n");
    while (bytes.length > 0) bytes = bytes.subarray(deno.stdout.writeSync(bytes));
  } else {
    process.stdout.write(line + "\n");
  }
}

const [mode, dataDir, port, prefix = "w"] = process.argv.slice(2);
if ((mode !== "write" && mode !== "verify") || !dataDir || !port) {
  console.error("usage: writer.ts write|verify <dataDir> <port> [prefix]");
  process.exit(2);
}

const startNode = await loadStartNode();
const machine = new AppliedList();
const node = await startNode({
  id: "w",
  peers: { w: `127.0.0.1:${port}` },
  dataDir: dataDir!,
  stateMachine: machine,
  // Short timeouts: a single node elects itself after one election timeout.
  config: { electionTimeoutMs: 150, heartbeatMs: 25 },
});

if (mode === "verify") {
  // A linearizable read on a fresh leader waits for an entry of its own term
  // to commit, which commits and applies the whole recovered log first.
  const applied = await node.read((sm) => [...sm.applied]);
  emit(JSON.stringify(applied));
  await node.stop();
  process.exit(0);
}

// Write mode: keep 64 proposals in flight until killed.
let next = 1;
const proposeOne = (): void => {
  const value = `${prefix}-${next++}`;
  node.propose(value).then(
    () => {
      emit(`ack ${value}`);
      proposeOne();
    },
    (e) => {
      console.error(`propose ${value} failed: ${String(e)}`);
      process.exit(1);
    },
  );
};
for (let i = 0; i < 64; i++) proposeOne();
