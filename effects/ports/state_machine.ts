/**
 * The state-machine port: the user's replicated state machine at the byte
 * level, as the interpreter calls it (the typed one is `UserStateMachine`).
 *
 * @module
 */

import { Context } from "effect";
import type { Entry } from "../../core/types.ts";

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
   * the call (the loop moves on); serializing may finish in the returned Promise.
   */
  snapshot(): Uint8Array | PromiseLike<Uint8Array>;
  /** Replaces the whole state with a snapshot's bytes. */
  restore(bytes: Uint8Array): void | PromiseLike<void>;
}
/** The {@link StateMachine} service key. */
export const StateMachine: Context.Service<StateMachine, StateMachine> = Context.Service<StateMachine>(
  "@plank/raft/StateMachine",
);
