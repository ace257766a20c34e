/**
 * Telling a Promise (or any thenable) from a plain value, for the places
 * that stay synchronous while a user's function returns plain values.
 *
 * @module
 */

/** Whether `v` is a thenable (a Promise, or anything with a `then` method). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}
