/**
 * Binary encoding of log entries, alone and in batches.
 *
 * Entry layout (no version byte; {@link encodeEntry} prepends one):
 *
 * | field  | encoding                                              |
 * |--------|-------------------------------------------------------|
 * | header | u8: bits 0–1 kind (0 command, 1 config, 2 noop), bit 2 has config |
 * | term   | uvarint                                               |
 * | index  | uvarint                                               |
 * | data   | uvarint length + bytes                                |
 * | config | membership, present iff bit 2 is set                  |
 *
 * A batch ({@link encodeEntries}) is the version byte, a uvarint count and
 * the entries back to back. Decoded `data` views the input (zero-copy).
 *
 * @module
 */

import type { Entry, EntryKind } from "../types.ts";
import { membershipSize, readMembership, writeMembership } from "./membership.ts";
import { type DecodeLimits, Reader } from "./reader.ts";
import { CODEC_VERSION, readVersion } from "./version.ts";
import { bytesFieldSize, uvarintSize, Writer } from "./writer.ts";

const KINDS: readonly EntryKind[] = ["command", "config", "noop"];
const KIND_MASK = 3;
const HAS_CONFIG = 4;
/** Header, term, index and data length take at least a byte each. */
const MIN_ENTRY_BYTES = 4;

function kindCode(e: Entry): number {
  switch (e.kind) {
    case "command":
      return 0;
    case "config":
      return 1;
    case "noop":
      return 2;
    default:
      throw new RangeError(`cannot encode entry kind ${String(e.kind)}`);
  }
}

function header(e: Entry): number {
  const code = kindCode(e);
  // Config is present exactly on config entries (types.ts): anything else
  // would either fail to decode or silently drop the membership.
  if ((code === 1) !== (e.config !== undefined)) {
    throw new RangeError(
      `cannot encode entry ${e.index}: kind "${e.kind}" with config ${e.config === undefined ? "missing" : "set"}`,
    );
  }
  return e.config === undefined ? code : code | HAS_CONFIG;
}

/** Bytes {@link writeEntry} writes for `e` (no version byte). */
export function entryBodySize(e: Entry): number {
  return 1 + uvarintSize(e.term) + uvarintSize(e.index) +
    bytesFieldSize(e.data.length) +
    (e.config === undefined ? 0 : membershipSize(e.config));
}

/**
 * Exact length of `encodeEntry(e)`, cheap enough for flow-control byte
 * limits (no encoding; node ids are only scanned for config entries).
 * Inside a batch or message an entry takes one byte less (no version byte).
 */
export function encodedEntrySize(e: Entry): number {
  return 1 + entryBodySize(e);
}

/** Appends `e` to `w` (no version byte). Throws `RangeError` on an invalid entry. */
export function writeEntry(w: Writer, e: Entry): void {
  w.u8(header(e));
  w.uvarint(e.term);
  w.uvarint(e.index);
  w.bytes(e.data);
  if (e.config !== undefined) writeMembership(w, e.config);
}

/** Reads an entry written by {@link writeEntry}; `data` views the input. Throws `DecodeError`. */
export function readEntry(r: Reader): Entry {
  const at = r.offset;
  const h = r.flags(KIND_MASK | HAS_CONFIG);
  const code = h & KIND_MASK;
  if (code === 3) r.fail("unknown entry kind 3", at);
  const hasConfig = (h & HAS_CONFIG) !== 0;
  if ((code === 1) !== hasConfig) {
    r.fail(
      hasConfig ? `${KINDS[code]} entry with a config` : "config entry without a config",
      at,
    );
  }
  const term = r.term();
  const index = r.index();
  const data = r.bytes();
  const config = hasConfig ? readMembership(r) : undefined;
  return { term, index, kind: KINDS[code], data, config };
}

/** Appends a count and the entries (no version byte). */
export function writeEntryList(w: Writer, es: readonly Entry[]): void {
  w.uvarint(es.length);
  for (let i = 0; i < es.length; i++) writeEntry(w, es[i]);
}

/** Reads a list written by {@link writeEntryList}. */
export function readEntryList(r: Reader): Entry[] {
  const n = r.count(MIN_ENTRY_BYTES);
  const es: Entry[] = [];
  for (let i = 0; i < n; i++) es.push(readEntry(r));
  return es;
}

/**
 * Refuses (with a `DecodeError` at `at`) entries that cannot follow
 * `prevIndex`/`prevTerm` in a log written in `term`: indices must run
 * contiguously from `prevIndex + 1` and terms must not decrease from
 * `prevTerm` nor exceed `term`. Every leader's AppendEntries has this shape;
 * anything else would throw inside the core's log and stop the node.
 */
export function checkEntryRun(
  r: Reader,
  at: number,
  es: readonly Entry[],
  prevIndex: number,
  prevTerm: number,
  term: number,
): void {
  if (prevTerm > term) r.fail(`prevTerm ${prevTerm} above the message term ${term}`, at);
  let t = prevTerm;
  for (let i = 0; i < es.length; i++) {
    const e = es[i];
    if (e.index !== prevIndex + 1 + i) r.fail(`entry ${i} has index ${e.index}, expected ${prevIndex + 1 + i}`, at);
    if (e.term < t || e.term > term) r.fail(`entry ${e.index} has term ${e.term} outside [${t}, ${term}]`, at);
    t = e.term;
  }
}

/** Bytes {@link writeEntryList} writes for `es`. */
export function entryListSize(es: readonly Entry[]): number {
  let size = uvarintSize(es.length);
  for (let i = 0; i < es.length; i++) size += entryBodySize(es[i]);
  return size;
}

/** Encodes one entry as a standalone, versioned record (e.g. one write-ahead-log record). */
export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(encodedEntrySize(e));
  w.u8(CODEC_VERSION);
  writeEntry(w, e);
  return w.finish();
}

/** Decodes the output of {@link encodeEntry}. Throws only `DecodeError`. */
export function decodeEntry(b: Uint8Array, limits?: DecodeLimits): Entry {
  const r = new Reader(b, limits);
  readVersion(r);
  const e = readEntry(r);
  r.done();
  return e;
}

/** Encodes a batch of entries as one versioned record. */
export function encodeEntries(es: readonly Entry[]): Uint8Array {
  const w = new Writer(1 + entryListSize(es));
  w.u8(CODEC_VERSION);
  writeEntryList(w, es);
  return w.finish();
}

/** Decodes the output of {@link encodeEntries}. Throws only `DecodeError`. */
export function decodeEntries(b: Uint8Array, limits?: DecodeLimits): Entry[] {
  const r = new Reader(b, limits);
  readVersion(r);
  const es = readEntryList(r);
  r.done();
  return es;
}
