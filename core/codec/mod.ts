/**
 * plank's compact binary codec for log entries, hard state, membership,
 * snapshot metadata and wire messages: varints, length-prefixed bytes and
 * UTF-8, a version byte on every top-level encoding, no JSON and no schema
 * library on the hot path.
 *
 * Encoders allocate one exact-size buffer and throw `RangeError` for values
 * the format cannot hold. Decoders bounds-check every read, return byte
 * fields as views into their input (zero-copy), and throw only
 * {@link DecodeError}.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./mod.ts";
 * const bytes = encodeMessage({ type: "TimeoutNow", group: 0, from: "a", to: "b", term: 3 });
 * decodeMessage(bytes); // { type: "TimeoutNow", group: 0, from: "a", to: "b", term: 3 }
 * ```
 *
 * @module
 */

export type { Entry, HardState, Membership, Message, SnapshotMeta } from "../types.ts";
export { DecodeError } from "./error.ts";
export { type DecodeLimits, MAX_WIRE_INDEX, MAX_WIRE_TERM, Reader, WIRE_LIMITS } from "./reader.ts";
export { bytesFieldSize, stringFieldSize, svarintSize, utf8Length, uvarintSize, Writer } from "./writer.ts";
export { CODEC_VERSION, readVersion } from "./version.ts";
export { decodeMembership, encodeMembership, membershipSize, readMembership, writeMembership } from "./membership.ts";
export {
  checkEntryRun,
  decodeEntries,
  decodeEntry,
  encodedEntrySize,
  encodeEntries,
  encodeEntry,
  entryBodySize,
  entryListSize,
  readEntry,
  readEntryList,
  writeEntry,
  writeEntryList,
} from "./entry.ts";
export {
  decodeHardState,
  decodeSnapshotMeta,
  encodeHardState,
  encodeSnapshotMeta,
  hardStateSize,
  readHardState,
  readSnapshotMeta,
  snapshotMetaSize,
  writeHardState,
  writeSnapshotMeta,
} from "./state.ts";
export {
  decodeMessage,
  encodedMessageSize,
  encodeMessage,
  MAX_COALESCED_ITEMS,
  MESSAGE_TAGS,
  messageBodySize,
  QUIESCE_TAG,
  readMessage,
  writeMessage,
} from "./message.ts";
