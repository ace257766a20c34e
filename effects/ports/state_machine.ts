/**
 * The state-machine port: the user's replicated state machine at the byte
 * level, as the interpreter calls it (the typed one is `UserStateMachine`).
 *
 * @module
 */

import { Context } from "effect";
import type { Entry, Index, SnapshotMeta } from "../../core/types.ts";

/**
 * A snapshot's bytes as a state machine produces them: one buffer, or
 * chunks (sync or async) that are written to the snapshot store as they
 * come, so a large state never has to be one `Uint8Array`.
 */
export type SnapshotData =
  | Uint8Array
  | PromiseLike<Uint8Array>
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

/**
 * A stored snapshot handed to `restore`: its chunks as an async iterable
 * (read from the store as they are consumed; the last chunk is handed out
 * only once the whole snapshot matched its checksum), or all of it with
 * `bytes()` for a small state.
 */
export interface SnapshotReader extends AsyncIterable<Uint8Array> {
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** Its size in bytes. */
  readonly size: number;
  /** All of it in one buffer (reads the whole snapshot). */
  bytes(): Promise<Uint8Array>;
}

/**
 * A restore that runs while a snapshot is received from the leader
 * ({@link StateMachine.beginRestore}). It is fed the chunks in order as they
 * arrive and must leave the state machine as it was until {@link commit} —
 * decoding into new structures, swapped in at the end — since a transfer
 * can end without a snapshot (a new leader, a refused checksum, a stop).
 */
export interface RestoreInProgress {
  /** The next chunk (a copy: the restore may keep it). A throw abandons the streamed restore (see `beginRestore`). */
  write(chunk: Uint8Array): void | PromiseLike<void>;
  /** The snapshot is whole, matched the leader's checksum and is durable: replace the state with it. */
  commit(): void | PromiseLike<void>;
  /** The transfer ended without this snapshot: drop what was written; the state stays as it was. */
  discard(): void;
}

/**
 * The replicated state machine, at the byte level. Calls are made from the
 * node's single loop, in log order, each committed command exactly once.
 * Results may be values or Promises; the loop waits for a Promise before it
 * applies the next entry.
 */
export interface StateMachine {
  /** Applies one committed `command` entry and returns its result. A throw fails only that entry's proposal. */
  apply(entry: Entry): unknown;
  /**
   * Captures the state as of the last applied entry. Capture synchronously at
   * the call (the loop moves on, and applies the next entries while the
   * chunks are written); producing the bytes may go on in a Promise or an
   * async iterable of chunks.
   */
  snapshot(): SnapshotData;
  /** Replaces the whole state with a snapshot's, streamed. */
  restore(snapshot: SnapshotReader): void | PromiseLike<void>;
  /**
   * Optional: restore a snapshot received from the leader while it arrives,
   * instead of once it is whole (the decoding overlaps the transfer). Should
   * a chunk's `write` throw, the node discards it and, once the snapshot is
   * whole and verified, restores it with {@link restore} instead (the
   * bytes may have been damaged in transit and are only checked at the
   * end). Restores at start and of local snapshots always use `restore`.
   */
  beginRestore?(meta: SnapshotMeta): RestoreInProgress;
  /**
   * For a state machine that persists itself: the index of the last entry
   * its durable state includes. At start the node then restores no snapshot
   * it already holds and replays only the entries after it.
   */
  appliedIndex?(): Index | PromiseLike<Index>;
}

/** The {@link StateMachine} service key. */
export const StateMachine: Context.Service<StateMachine, StateMachine> = Context.Service<StateMachine>(
  "@plank/raft/StateMachine",
);
