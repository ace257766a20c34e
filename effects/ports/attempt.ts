/**
 * Running a port's Promise operation as an effect: a failure becomes a
 * typed `StorageFailure` (fail-stop), a close never fails.
 *
 * @module
 */

import { Effect } from "effect";
import { StorageFailure } from "../errors.ts";

/** Runs `f`; a rejection becomes a `StorageFailure` naming `operation` (one already typed passes through). */
export function attempt<A>(operation: string, f: () => Promise<A>): Effect.Effect<A, StorageFailure> {
  return Effect.tryPromise({
    try: f,
    catch: (e) => e instanceof StorageFailure ? e : new StorageFailure(operation, e),
  });
}

/** Closes a port, ignoring a failure to close (there is nothing left to lose). */
export function closing(close: (() => Promise<void>) | undefined): Effect.Effect<void> {
  return close === undefined ? Effect.void : Effect.promise(() => close().catch(() => {}));
}
