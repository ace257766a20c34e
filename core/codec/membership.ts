/**
 * Binary encoding of {@link Membership}.
 *
 * Layout: `flags` (bit 0: joint, bit 1: promote), `voters`, `learners`, then
 * `outgoing` only when joint, then `promote` only when that flag is set. Each
 * list is a varint count followed by length-prefixed UTF-8 node ids. The joint
 * flag keeps `outgoing: undefined` distinct from an empty outgoing set. The
 * promote flag is written only for a non-empty list, so a membership without
 * learners to promote encodes exactly as before the field existed.
 *
 * @module
 */

import type { Membership, NodeId } from "../types.ts";
import { type DecodeLimits, Reader } from "./reader.ts";
import { CODEC_VERSION, readVersion } from "./version.ts";
import { stringFieldSize, uvarintSize, Writer } from "./writer.ts";

const JOINT = 1;
const PROMOTE = 2;

function hasPromote(m: Membership): boolean {
  return m.promote !== undefined && m.promote.length > 0;
}

function writeIds(w: Writer, ids: readonly NodeId[]): void {
  w.uvarint(ids.length);
  for (let i = 0; i < ids.length; i++) w.string(ids[i]);
}

function readIds(r: Reader): NodeId[] {
  // Each id takes at least its one-byte length prefix.
  const n = r.count(1);
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(r.string());
  return ids;
}

function idsSize(ids: readonly NodeId[]): number {
  let size = uvarintSize(ids.length);
  for (let i = 0; i < ids.length; i++) size += stringFieldSize(ids[i]);
  return size;
}

/** Exact number of bytes {@link writeMembership} writes for `m`. */
export function membershipSize(m: Membership): number {
  return 1 + idsSize(m.voters) + idsSize(m.learners) +
    (m.outgoing === undefined ? 0 : idsSize(m.outgoing)) + (hasPromote(m) ? idsSize(m.promote!) : 0);
}

/** Appends `m` to `w` (no version byte). */
export function writeMembership(w: Writer, m: Membership): void {
  w.u8((m.outgoing === undefined ? 0 : JOINT) | (hasPromote(m) ? PROMOTE : 0));
  writeIds(w, m.voters);
  writeIds(w, m.learners);
  if (m.outgoing !== undefined) writeIds(w, m.outgoing);
  if (hasPromote(m)) writeIds(w, m.promote!);
}

/** Reads a membership written by {@link writeMembership}. Throws `DecodeError`. */
export function readMembership(r: Reader): Membership {
  const flags = r.flags(JOINT | PROMOTE);
  const voters = readIds(r);
  const learners = readIds(r);
  const outgoing = flags & JOINT ? readIds(r) : undefined;
  if (!(flags & PROMOTE)) return { voters, learners, outgoing };
  const at = r.offset;
  const promote = readIds(r);
  // Canonical form: the flag is set only for a non-empty list.
  if (promote.length === 0) r.fail("empty promote list", at);
  return { voters, learners, outgoing, promote };
}

/** Encodes `m` as a standalone, versioned record. */
export function encodeMembership(m: Membership): Uint8Array {
  const w = new Writer(1 + membershipSize(m));
  w.u8(CODEC_VERSION);
  writeMembership(w, m);
  return w.finish();
}

/** Decodes the output of {@link encodeMembership}. Throws only `DecodeError`. */
export function decodeMembership(
  b: Uint8Array,
  limits?: DecodeLimits,
): Membership {
  const r = new Reader(b, limits);
  readVersion(r);
  const m = readMembership(r);
  r.done();
  return m;
}
