/**
 * The worker half of `bench/split.ts`: runs the leader node `a` of the
 * bench's cluster inside a `Worker`, so the thread that serves HTTP clients
 * does none of the node's work (core steps, log writes, peer sockets).
 *
 * Messages in: `start` (peers, data dir, election timeout), `propose`
 * (request ids and command bodies, batched), `stop`. Messages out: `ready`
 * once `a` leads, `done` (ids and whether each committed, batched per
 * turn), `stopped`, `failed`.
 *
 * @module
 */

import type { RaftNode } from "../mod.ts";
import { Counter, loadStartNode, rawBytes } from "./cluster_machine.ts";

/** What the main thread sends. */
export type SplitIn =
  | {
    readonly type: "start";
    readonly peers: Record<string, string>;
    readonly dataDir: string;
    readonly electionTimeoutMs: number;
  }
  | { readonly type: "propose"; readonly ids: readonly number[]; readonly bodies: readonly Uint8Array[] }
  | { readonly type: "stop" };

/** What the worker answers. */
export type SplitOut =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly ids: readonly number[]; readonly ok: readonly boolean[] }
  | { readonly type: "stopped" }
  | { readonly type: "failed"; readonly message: string };

interface Port {
  onmessage: ((e: MessageEvent<SplitIn>) => void) | null;
  postMessage(message: SplitOut): void;
}

const port = globalThis as unknown as Port;
// The adapter is imported when `start` arrives (loadStartNode): the handler must be in place
// before any await, or a runtime may deliver `start` before it exists (Bun drops it).

let node: RaftNode<Uint8Array, number, Counter> | undefined;
// Answers go back in one message per turn, as requests came in.
let doneIds: number[] = [];
let doneOk: boolean[] = [];
let flushQueued = false;

function answer(id: number, ok: boolean): void {
  doneIds.push(id);
  doneOk.push(ok);
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(() => {
    flushQueued = false;
    port.postMessage({ type: "done", ids: doneIds, ok: doneOk });
    doneIds = [];
    doneOk = [];
  });
}

port.onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.type === "start") {
      const startNode = await loadStartNode();
      node = await startNode({
        id: "a",
        peers: m.peers,
        dataDir: m.dataDir,
        stateMachine: new Counter(),
        command: rawBytes,
        config: { electionTimeoutMs: m.electionTimeoutMs, heartbeatMs: 100 },
      });
      const deadline = performance.now() + 15_000;
      while (node.status().role !== "leader") {
        if (performance.now() > deadline) throw new Error("no leader on a");
        await new Promise((r) => setTimeout(r, 20));
      }
      port.postMessage({ type: "ready" });
    } else if (m.type === "propose") {
      const n = node!;
      m.ids.forEach((id, i) => n.propose(m.bodies[i]!).then(() => answer(id, true), () => answer(id, false)));
    } else {
      await node?.stop().catch(() => {});
      port.postMessage({ type: "stopped" });
    }
  } catch (err) {
    port.postMessage({ type: "failed", message: (err as Error).message });
  }
};
