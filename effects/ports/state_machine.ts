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
