/**
 * The core's view of the replicated log: the entries since the last
 * compaction point, plus which prefix of them is durable.
 *
 * Entries are held by reference (payloads are never copied). To keep `step`
 * O(1) in the log's length while staying pure, versions of a log share an
 * append-only buffer of fixed-size chunks: a version only reads its own
 * `length` slots, and appending pushes in place only when this version owns
 * the buffer's tip; otherwise (after a truncation, or when an older version
 * is extended) it copies the chunk list and its last chunk — O(n / CHUNK +
 * CHUNK), never the whole log. Old versions never observe a change. Chunks
 * also spare the runtime from ever copying one huge array as the log grows.
 *
 * @module
 */

import type { Entry, Index, Term } from "./types.ts";

/** An immutable version of the log. */
export interface RaftLog {
  /** Index of the entry just before `buffer[0]` (the compaction point; 0 for a fresh log). */
  readonly offset: Index;
  /** Term of the entry at `offset` (0 for a fresh log). */
  readonly offsetTerm: Term;
  /** Shared chunked storage; only the first `length` slots belong to this version. */
  readonly buffer: EntryBuffer;
  /** Number of entries in this version. */
  readonly length: number;
  /** Highest index known durable on this node (thesis §10.2.1: the leader counts itself only once durable). */
  readonly stable: Index;
}

const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS; // 4096 entries per chunk
const CHUNK_MASK = CHUNK - 1;

/** Append-only chunked entry storage shared between log versions. */
export interface EntryBuffer {
  /** Chunks of up to CHUNK entries; all but the last are full. */
  readonly chunks: Entry[][];
  /** Total entries stored (across all versions sharing it). */
  size: number;
}

function at(buffer: EntryBuffer, position: number): Entry {
  return buffer.chunks[position >>> CHUNK_BITS]![position & CHUNK_MASK]!;
}

/** A private copy of the first `length` slots of `buffer`, sharing full chunks. */
function fork(buffer: EntryBuffer, length: number): EntryBuffer {
  const full = length >>> CHUNK_BITS;
  const chunks = buffer.chunks.slice(0, full);
  const rest = length & CHUNK_MASK;
  if (rest > 0) chunks.push(buffer.chunks[full]!.slice(0, rest));
  return { chunks, size: length };
}

function push(buffer: EntryBuffer, entry: Entry): void {
  if ((buffer.size & CHUNK_MASK) === 0) buffer.chunks.push([]);
  buffer.chunks[buffer.chunks.length - 1]!.push(entry);
  buffer.size++;
}

function bufferOf(entries: readonly Entry[], from = 0): EntryBuffer {
  const buffer: EntryBuffer = { chunks: [], size: 0 };
  for (let i = from; i < entries.length; i++) push(buffer, entries[i]!);
  return buffer;
}

/** An empty log starting after `offset` (whose term is `offsetTerm`). */
export function emptyLog(offset: Index = 0, offsetTerm: Term = 0): RaftLog {
  return { offset, offsetTerm, buffer: { chunks: [], size: 0 }, length: 0, stable: offset };
}

/** Builds a log from durable entries (all considered stable), e.g. on restart. */
export function logFromEntries(offset: Index, offsetTerm: Term, entries: readonly Entry[]): RaftLog {
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]!.index !== offset + i + 1) {
      throw new RangeError(`log entries are not contiguous at position ${i}: index ${entries[i]!.index}`);
    }
  }
  return { offset, offsetTerm, buffer: bufferOf(entries), length: entries.length, stable: offset + entries.length };
}

/** Index of the last entry (the offset when empty). */
export function lastIndex(log: RaftLog): Index {
  return log.offset + log.length;
}

/** Term of the last entry. */
export function lastTerm(log: RaftLog): Term {
  return log.length === 0 ? log.offsetTerm : at(log.buffer, log.length - 1).term;
}

/** First index still held (offset + 1). */
export function firstIndex(log: RaftLog): Index {
  return log.offset + 1;
}

/** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
export function termAt(log: RaftLog, index: Index): Term | undefined {
  if (index === log.offset) return log.offsetTerm;
  if (index < log.offset || index > log.offset + log.length) return undefined;
  return at(log.buffer, index - log.offset - 1).term;
}

/** The entry at `index`, if held. */
export function entryAt(log: RaftLog, index: Index): Entry | undefined {
  if (index <= log.offset || index > log.offset + log.length) return undefined;
  return at(log.buffer, index - log.offset - 1);
}

/**
 * Entries from `from` to `to` inclusive, stopping once `maxBytes` is reached
 * (always at least one entry). `from` must be held.
 */
export function sliceLog(log: RaftLog, from: Index, to: Index, maxBytes = Infinity): Entry[] {
  const start = from - log.offset - 1;
  const end = Math.min(to, log.offset + log.length) - log.offset;
  if (start < 0) throw new RangeError(`entry ${from} is compacted (log starts after ${log.offset})`);
  const out: Entry[] = [];
  let bytes = 0;
  for (let i = start; i < end; i++) {
    const entry = at(log.buffer, i);
    bytes += entrySize(entry);
    if (out.length > 0 && bytes > maxBytes) break;
    out.push(entry);
  }
  return out;
}

/** Approximate in-memory and wire cost of an entry, for flow-control byte limits. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 16;
}

/** Appends entries that continue the log (the first must have index lastIndex + 1). */
export function appendToLog(log: RaftLog, entries: readonly Entry[]): RaftLog {
  if (entries.length === 0) return log;
  const expected = log.offset + log.length + 1;
  if (entries[0]!.index !== expected) {
    throw new RangeError(`append at ${entries[0]!.index} does not continue the log (next is ${expected})`);
  }
  // Push in place only if we own the tip; otherwise fork our live part first.
  const buffer = log.buffer.size === log.length ? log.buffer : fork(log.buffer, log.length);
  for (const entry of entries) push(buffer, entry);
  return { ...log, buffer, length: log.length + entries.length };
}

/** Drops every entry after `index` (conflict resolution, Figure 2 AppendEntries rule 3). */
export function truncateAfter(log: RaftLog, index: Index): RaftLog {
  if (index >= log.offset + log.length) return log;
  if (index < log.offset) throw new RangeError(`cannot truncate into the compacted prefix (${index} < ${log.offset})`);
  return { ...log, length: index - log.offset, stable: Math.min(log.stable, index) };
}

/** Drops entries up to and including `index`, which a snapshot now covers. */
export function compactLog(log: RaftLog, index: Index, term: Term): RaftLog {
  if (index <= log.offset) return log;
  if (index >= log.offset + log.length) {
    return { ...emptyLog(index, term), stable: Math.max(index, log.stable) };
  }
  // Compaction is rare (once per snapshot), so rebuilding the kept suffix is fine.
  const kept = sliceLog(log, index + 1, log.offset + log.length);
  return {
    offset: index,
    offsetTerm: term,
    buffer: bufferOf(kept),
    length: kept.length,
    stable: Math.max(index, log.stable),
  };
}

/** Marks entries up to `index` durable, if the entry there still has `term` (a stale report is ignored). */
export function markStable(log: RaftLog, index: Index, term: Term): RaftLog {
  if (index <= log.stable || termAt(log, index) !== term) return log;
  return { ...log, stable: index };
}

/** Whether a candidate's log is at least as up to date as ours (paper §5.4.1). */
export function isUpToDate(log: RaftLog, candidateLastIndex: Index, candidateLastTerm: Term): boolean {
  const ourTerm = lastTerm(log);
  return candidateLastTerm > ourTerm || (candidateLastTerm === ourTerm && candidateLastIndex >= lastIndex(log));
}

/**
 * First index held whose term is `term` (terms never decrease along the log,
 * so a binary search finds it in O(log n)). Undefined if no entry has it.
 */
export function firstIndexOfTerm(log: RaftLog, term: Term): Index | undefined {
  let lo = log.offset + 1;
  let hi = log.offset + log.length;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2); // not (lo + hi) >>> 1: indices exceed 32 bits
    if (termAt(log, mid)! < term) lo = mid + 1;
    else hi = mid;
  }
  return lo <= log.offset + log.length && termAt(log, lo) === term ? lo : undefined;
}

/** Last index held whose term is `term`, or undefined. */
export function lastIndexOfTerm(log: RaftLog, term: Term): Index | undefined {
  let lo = log.offset + 1;
  let hi = log.offset + log.length;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (termAt(log, mid)! > term) hi = mid - 1;
    else lo = mid;
  }
  return lo <= log.offset + log.length && termAt(log, lo) === term ? lo : undefined;
}
