/**
 * The simulated leader's snapshot streams: which bytes a chunk the driver
 * asks for carries. They follow the rule of the production streams
 * (`effects/runtime/snapshot_io.ts`, `ChunkStreams`): a stream holds the
 * snapshot it began until its driver ends it, so a newer snapshot stored
 * mid-stream does not cut it off; a stream that begins on a snapshot no
 * longer stored finds nothing to send, and the follower is reported
 * unreachable (the core then asks for the latest).
 *
 * @module
 */

import type { NodeId, SnapshotMeta } from "../../core/types.ts";
import type { ChunkSend } from "../../effects/driver/driver.ts";

interface Held {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

const same = (a: SnapshotMeta | undefined, b: SnapshotMeta): boolean =>
  a !== undefined && a.index === b.index && a.term === b.term;

/** One node's (or one group's) snapshot streams, in memory: lost in a crash. */
export class SimStreams {
  readonly #held = new Map<NodeId, Held>();

  /**
   * The bytes of chunk `c`, read from the snapshot its stream holds, or from
   * `stored` (the latest) when the stream begins; undefined if neither is
   * the snapshot `c` belongs to.
   */
  read(c: ChunkSend, stored: Held | undefined): Uint8Array | undefined {
    const to = c.header.to;
    let held = this.#held.get(to);
    if (held === undefined || !same(held.meta, c.meta)) {
      this.#held.delete(to);
      if (stored === undefined || !same(stored.meta, c.meta)) return undefined;
      this.#held.set(to, held = stored);
    }
    return held.data.subarray(c.chunk.offset, c.chunk.offset + c.chunk.length);
  }

  /** Lets go of what streams the driver ended hold (`streaming`: `NodeDriver.streaming`). */
  sweep(streaming: (to: NodeId) => SnapshotMeta | undefined): void {
    for (const [to, held] of this.#held) if (!same(streaming(to), held.meta)) this.#held.delete(to);
  }

  /** Forgets every stream (a crash). */
  clear(): void {
    this.#held.clear();
  }
}
