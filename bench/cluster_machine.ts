/**
 * What `bench/cluster.ts` and its follower processes (`bench/cluster_node.ts`)
 * must agree on: the state machine and the command codec.
 *
 * @module
 */

import type { CommandCodec } from "../mod.ts";

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
