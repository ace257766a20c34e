/**
 * The format version byte that opens every top-level encoding.
 *
 * @module
 */

import type { Reader } from "./reader.ts";

/**
 * Version of the binary format, written as the first byte of every
 * top-level encoding so a later format can be told apart from this one.
 * Building blocks (`writeEntry`, `writeMessage`, …) do not write it.
 */
export const CODEC_VERSION = 1;

/** Reads the version byte and rejects any version this code does not speak. */
export function readVersion(r: Reader): void {
  const at = r.offset;
  const v = r.u8();
  if (v !== CODEC_VERSION) r.fail(`unsupported codec version ${v}`, at);
}
