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
 *
 * The byte is shared by the wire and the on-disk records (log entries, hard
 * state, snapshot metadata), so it changes only when an existing layout
 * changes. A new message type is a new tag instead: existing messages keep
 * their bytes, and a peer too old for it refuses it with a `DecodeError`
 * ("unknown message tag"), never a misread. Additions within version 1:
 *
 * | tags   | what                                                       | since                      |
 * |--------|------------------------------------------------------------|----------------------------|
 * | 1–11   | Raft's messages and request forwarding                     | the first format           |
 * | 12, 13 | quiescing AppendEntries, HostHeartbeat                     | quiescence (many groups)   |
 * | 14, 15 | Heartbeats, HeartbeatResponses (coalesced between hosts)   | coalesced heartbeats       |
 *
 * A host sends tags 14 and 15 only with `coalesceHeartbeats` on (the
 * default): turn it off while a peer process still runs an older version.
 */
export const CODEC_VERSION = 1;

/** Reads the version byte and rejects any version this code does not speak. */
export function readVersion(r: Reader): void {
  const at = r.offset;
  const v = r.u8();
  if (v !== CODEC_VERSION) r.fail(`unsupported codec version ${v}`, at);
}
