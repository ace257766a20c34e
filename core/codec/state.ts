/**
 * Binary encoding of {@link HardState} and {@link SnapshotMeta}.
 *
 * HardState: `flags` (bit 0: has vote), `term` uvarint, `commit` uvarint,
 * then `vote` (length-prefixed UTF-8) only when bit 0 is set, so an empty
 * node id stays distinct from no vote.
 *
 * SnapshotMeta: `index` uvarint, `term` uvarint, membership.
 *
 * @module
 */

import type { HardState, SnapshotMeta } from "../types.ts";
import { membershipSize, readMembership, writeMembership } from "./membership.ts";
import { type DecodeLimits, Reader } from "./reader.ts";
import { CODEC_VERSION, readVersion } from "./version.ts";
import { stringFieldSize, uvarintSize, Writer } from "./writer.ts";

const HAS_VOTE = 1;

/** Bytes {@link writeHardState} writes for `h`. */
export function hardStateSize(h: HardState): number {
  return 1 + uvarintSize(h.term) + uvarintSize(h.commit) +
    (h.vote === undefined ? 0 : stringFieldSize(h.vote));
}

/** Appends `h` to `w` (no version byte). */
export function writeHardState(w: Writer, h: HardState): void {
  w.u8(h.vote === undefined ? 0 : HAS_VOTE);
  w.uvarint(h.term);
  w.uvarint(h.commit);
  if (h.vote !== undefined) w.string(h.vote);
}

/** Reads a hard state written by {@link writeHardState}. Throws `DecodeError`. */
export function readHardState(r: Reader): HardState {
  const flags = r.flags(HAS_VOTE);
  const term = r.term();
  const commit = r.index();
  const vote = flags & HAS_VOTE ? r.string() : undefined;
  return { term, vote, commit };
}

/** Encodes `h` as a standalone, versioned record. */
export function encodeHardState(h: HardState): Uint8Array {
  const w = new Writer(1 + hardStateSize(h));
  w.u8(CODEC_VERSION);
  writeHardState(w, h);
  return w.finish();
}

/** Decodes the output of {@link encodeHardState}. Throws only `DecodeError`. */
export function decodeHardState(
  b: Uint8Array,
  limits?: DecodeLimits,
): HardState {
  const r = new Reader(b, limits);
  readVersion(r);
  const h = readHardState(r);
  r.done();
  return h;
}

/** Bytes {@link writeSnapshotMeta} writes for `m`. */
export function snapshotMetaSize(m: SnapshotMeta): number {
  return uvarintSize(m.index) + uvarintSize(m.term) +
    membershipSize(m.membership);
}

/** Appends `m` to `w` (no version byte). */
export function writeSnapshotMeta(w: Writer, m: SnapshotMeta): void {
  w.uvarint(m.index);
  w.uvarint(m.term);
  writeMembership(w, m.membership);
}

/** Reads snapshot metadata written by {@link writeSnapshotMeta}. Throws `DecodeError`. */
export function readSnapshotMeta(r: Reader): SnapshotMeta {
  const index = r.index();
  const term = r.term();
  const membership = readMembership(r);
  return { index, term, membership };
}

/** Encodes `m` as a standalone, versioned record. */
export function encodeSnapshotMeta(m: SnapshotMeta): Uint8Array {
  const w = new Writer(1 + snapshotMetaSize(m));
  w.u8(CODEC_VERSION);
  writeSnapshotMeta(w, m);
  return w.finish();
}

/** Decodes the output of {@link encodeSnapshotMeta}. Throws only `DecodeError`. */
export function decodeSnapshotMeta(
  b: Uint8Array,
  limits?: DecodeLimits,
): SnapshotMeta {
  const r = new Reader(b, limits);
  readVersion(r);
  const m = readSnapshotMeta(r);
  r.done();
  return m;
}
