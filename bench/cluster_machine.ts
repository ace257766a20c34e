/**
 * What `bench/cluster.ts` and its follower processes (`bench/cluster_node.ts`)
 * must agree on: the state machine and the command codec.
 *
 * @module
 */

import type { CommandCodec, RaftNode } from "../mod.ts";

/** The bench's state machine: counts applied commands and keeps nothing else. */
export class Counter {
  /** Commands applied so far. */
  applied = 0;
  /** Counts one command; returns the count. */
  apply(_command: Uint8Array): number {
    return ++this.applied;
  }
}

/** Commands are raw bytes: a `--size`-byte command is `--size` bytes in the log and on the wire. */
export const rawBytes: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };

/** The adapters' `startNode`, as the cluster benches call it (a {@link Counter} over {@link rawBytes}). */
export type StartCounterNode = (options: {
  id: string;
  peers: Record<string, string>;
  dataDir: string;
  stateMachine: Counter;
  command: CommandCodec<Uint8Array>;
  config: { electionTimeoutMs: number; heartbeatMs: number };
}) => Promise<RaftNode<Uint8Array, number, Counter>>;

/**
 * This runtime's `startNode` (`adapters/deno` or `adapters/bun`), imported
 * through a computed specifier so each runtime loads only its own adapter.
 */
export async function loadStartNode(): Promise<StartCounterNode> {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const adapter = `../adapters/${isDeno ? "deno" : "bun"}/mod.ts`;
  return ((await import(adapter)) as { startNode: StartCounterNode }).startNode;
}
