/**
 * The follower's side of a chunked snapshot transfer, sans-IO: for each chunk
 * the core hands over (`ReceiveSnapshotChunk`), it decides what the shell
 * does with the snapshot store, in order:
 *
 * - chunks come in order from one leader in one term; a chunk of another
 *   snapshot, leader or term (or a new offset 0) drops the partial one;
 * - the expected chunk is written and acknowledged with the next offset;
 *   a duplicate is acknowledged too; a chunk past a gap is answered with the
 *   offset to resume from (`success: false`);
 * - the last chunk finishes the snapshot (the store checks the leader's
 *   checksum over the whole data), and the shell restores the state machine
 *   from it before the core hears `SnapshotRestored`.
 *
 * @module
 */

import type { Index, NodeId, SnapshotMeta, Term } from "../../core/types.ts";

/** One thing to do with the snapshot store or the network, in order. */
export type ReceiverOp =
  /** Drop the partial snapshot being received. */
  | { readonly op: "abort" }
  /** Start receiving `meta`. */
  | { readonly op: "begin"; readonly meta: SnapshotMeta }
  /** Append `data` at `offset`. */
  | { readonly op: "write"; readonly offset: number; readonly data: Uint8Array }
  /** Make it durable and current (verifying `checksum`), then restore the state machine from it. */
  | { readonly op: "finish"; readonly from: NodeId; readonly meta: SnapshotMeta; readonly checksum: number | undefined }
  /** Tell the leader the offset expected next; `success` false names a gap to fill. */
  | {
    readonly op: "answer";
    readonly to: NodeId;
    readonly term: Term;
    readonly index: Index;
    readonly offset: number;
    readonly success: boolean;
  };

/** A received chunk, as the core's `ReceiveSnapshotChunk` effect carries it. */
export interface ReceivedChunk {
  /** The leader that sent it. */
  readonly from: NodeId;
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** Offset of `data`. */
  readonly offset: number;
  /** The bytes. */
  readonly data: Uint8Array;
  /** Whether it is the last chunk. */
  readonly done: boolean;
  /** The leader's checksum of the whole data (on the last chunk). */
  readonly checksum: number | undefined;
}

interface Partial {
  readonly from: NodeId;
  readonly term: Term;
  readonly meta: SnapshotMeta;
  expected: number;
}

/** The snapshot a follower is receiving, if any. */
export class SnapshotReceiver {
  #partial: Partial | undefined = undefined;

  /** Whether a partial snapshot is held. */
  get receiving(): boolean {
    return this.#partial !== undefined;
  }

  /** The ops for chunk `c`, received in `term`. */
  chunk(c: ReceivedChunk, term: Term): ReceiverOp[] {
    const ops: ReceiverOp[] = [];
    const answer = (offset: number, success: boolean) =>
      ops.push({ op: "answer", to: c.from, term, index: c.meta.index, offset, success });
    let p = this.#partial;
    const same = p !== undefined && p.from === c.from && p.term === term && p.meta.index === c.meta.index &&
      p.meta.term === c.meta.term;
    if (!same || c.offset === 0) {
      if (p !== undefined) ops.push({ op: "abort" });
      this.#partial = p = undefined;
      if (c.offset !== 0) {
        answer(0, false);
        return ops;
      }
      ops.push({ op: "begin", meta: c.meta });
      this.#partial = p = { from: c.from, term, meta: c.meta, expected: 0 };
    }
    if (c.offset !== p!.expected) {
      // An old duplicate is acknowledged; a chunk past a gap names the resumption point.
      answer(p!.expected, c.offset < p!.expected);
      return ops;
    }
    ops.push({ op: "write", offset: c.offset, data: c.data });
    p!.expected += c.data.length;
    if (!c.done) {
      answer(p!.expected, true);
      return ops;
    }
    this.#partial = undefined;
    ops.push({ op: "finish", from: c.from, meta: c.meta, checksum: c.checksum });
    return ops;
  }

  /** The node moved to `term`: a partial snapshot of an earlier term is abandoned (the new leader starts its own). */
  termChanged(term: Term): ReceiverOp[] {
    if (this.#partial === undefined || this.#partial.term === term) return [];
    this.#partial = undefined;
    return [{ op: "abort" }];
  }

  /** The store refused what was received (a write failed, or the checksum did not match): start over. */
  reset(): void {
    this.#partial = undefined;
  }
}
