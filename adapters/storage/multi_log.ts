/**
 * The log of many groups (one process hosting many Raft groups): every
 * group's writes of one host iteration go into one record of one
 * {@link WriteAheadLog}, so the whole host makes one write and one fsync per
 * iteration, and inherits that log's checks (CRC-32C per record, segments
 * chained, a torn tail repaired only past the synced mark, everything else
 * refused naming file and offset).
 *
 * Each record of the underlying log (an entry at the next host index) holds
 * the groups' operations in order, `[uv group][u8 op][body]`:
 *
 * - `BATCH`: `[flags: 1 hard state, 2 truncation][hard state][uv truncateFrom][uv n][entry bytes]…`;
 * - `COMPACT`: `[uv index]`: the group's entries up to it are covered by a snapshot;
 * - `CHECKPOINT`: `[hard state][uv offset][uv n][entry bytes]…`: the group's whole
 *   state (entries after `offset`); what came before it for this group is moot;
 * - `REMOVE`: the group is gone.
 *
 * Per-group compaction is a `COMPACT` operation, written only once the
 * group's snapshot covering it is durable (§7; the host's ordering), and
 * followed in the same record by a `CHECKPOINT` of the group, so that the
 * group's compacted prefix stops pinning the shared log. The underlying log
 * is compacted behind the oldest record some group still needs: the record of
 * its latest `CHECKPOINT` (or its first record, if none). The host moves those
 * forward by checkpointing the groups that pin the oldest records (from their
 * cores' logs, which hold exactly what is durable plus what is being written),
 * a few per iteration ({@link MultiGroupLog.pinning}). On replay a group's
 * latest checkpoint is its whole state: its operations before it (in earlier
 * records, which the compaction may have dropped in part, or earlier in the
 * same record) are skipped.
 *
 * @module
 */

import { decodeEntry, decodeHardState, encodeEntry, encodeHardState, Reader, Writer } from "../../core/codec/mod.ts";
import type { Entry, GroupId, HardState, Index } from "../../core/types.ts";
import type { HostLogOp } from "../../effects/host/host_loop.ts";
import type { RecoveredLog } from "../../effects/ports/mod.ts";
import { CorruptLogError, type DurableFs, joinPath } from "./fs.ts";
import { type WalOptions, WriteAheadLog } from "./wal.ts";

const OP_BATCH = 1;
const OP_COMPACT = 2;
const OP_CHECKPOINT = 3;
const OP_REMOVE = 4;
const HAS_HARD = 1;
const HAS_TRUNCATE = 2;

interface GroupState {
  hardState: HardState;
  entries: Entry[];
  offset: Index;
  /** Host index of the oldest record replay needs for this group. */
  pin: Index;
  removed: boolean;
}

const ZERO: HardState = { term: 0, vote: undefined, commit: 0 };

/** Every group's log in one write-ahead log. One writer; calls run in order. */
export class MultiGroupLog {
  readonly #wal: WriteAheadLog;
  readonly #pins = new Map<GroupId, Index>();
  /** Groups removed whose removal record pins the log until what came before it is compacted. */
  readonly #removed = new Set<GroupId>();
  #recovered: Map<GroupId, RecoveredLog> | undefined;
  #next: Index;

  private constructor(
    wal: WriteAheadLog,
    next: Index,
    pins: Map<GroupId, Index>,
    recovered: Map<GroupId, RecoveredLog>,
  ) {
    this.#wal = wal;
    this.#next = next;
    this.#pins = pins;
    this.#recovered = recovered;
  }

  /**
   * Locks `dir`, replays its log (see {@link WriteAheadLog.open}) and rebuilds
   * every group's state.
   *
   * @throws CorruptLogError if the log is damaged, or a record does not decode
   */
  static async open(fs: DurableFs, dir: string, opts: WalOptions = {}): Promise<MultiGroupLog> {
    const { wal, recovered } = await WriteAheadLog.open(fs, dir, opts);
    try {
      const groups = new Map<GroupId, GroupState>();
      const where = joinPath(dir, "wal");
      const records = recovered.entries.map((record) => ({ record, ops: decodeRecord(record, where) }));
      // Each group's latest checkpoint is its whole state: what it wrote before is moot (and may be half gone).
      const checkpoints = new Map<GroupId, { readonly record: number; readonly op: number }>();
      records.forEach(({ ops }, record) =>
        ops.forEach((o, op) => o.op === OP_CHECKPOINT && checkpoints.set(o.g, { record, op }))
      );
      records.forEach(({ record, ops }, ri) =>
        foldRecord(groups, record, ops, where, (g, oi) => {
          const cp = checkpoints.get(g);
          return cp !== undefined && (ri < cp.record || (ri === cp.record && oi < cp.op));
        })
      );
      const pins = new Map<GroupId, Index>();
      const out = new Map<GroupId, RecoveredLog>();
      for (const [g, st] of groups) {
        if (st.removed) continue;
        pins.set(g, st.pin);
        out.set(g, { hardState: st.hardState, entries: st.entries, firstIndex: st.offset + 1 });
      }
      const next = (recovered.entries.at(-1)?.index ?? Math.max(0, (recovered.firstIndex ?? 1) - 1)) + 1;
      return new MultiGroupLog(wal, next, pins, out);
    } catch (e) {
      await wal.close().catch(() => {});
      throw e;
    }
  }

  /** What each group's log held when opened (handed out once). */
  load(): Map<GroupId, RecoveredLog> {
    const r = this.#recovered;
    if (!r) throw new Error("load() is called once, on the log opened");
    this.#recovered = undefined;
    return r;
  }

  /** Groups the log knows, with the host index of the oldest record each needs. */
  get pins(): ReadonlyMap<GroupId, Index> {
    return this.#pins;
  }

  /** Host records written so far (the next one's index, minus one). */
  get lastIndex(): Index {
    return this.#next - 1;
  }

  /**
   * The groups to checkpoint so that the log can be compacted: those whose
   * pin is more than `behind` records old, oldest first, at most `max`.
   */
  pinning(behind: number, max: number): GroupId[] {
    const limit = this.#next - behind;
    const old: [GroupId, Index][] = [];
    for (const [g, pin] of this.#pins) if (pin < limit && !this.#removed.has(g)) old.push([g, pin]);
    old.sort((a, b) => a[1] - b[1]);
    return old.slice(0, max).map(([g]) => g);
  }

  /** Writes one host iteration's operations as one record (not durable until {@link sync}). */
  async write(ops: readonly HostLogOp[]): Promise<void> {
    if (ops.length === 0) return;
    const index = this.#next;
    const data = encodeOps(ops);
    await this.#wal.append({ entries: [{ term: 1, index, kind: "command", data, config: undefined }] });
    this.#next++;
    for (const op of ops) {
      if ("remove" in op) {
        // Records before the removal may go, the removal itself not yet (replay must not see half a history).
        this.#pins.set(op.group, index);
        this.#removed.add(op.group);
        continue;
      }
      this.#removed.delete(op.group);
      if ("checkpoint" in op) this.#pins.set(op.group, index);
      else if (!this.#pins.has(op.group)) this.#pins.set(op.group, index);
    }
  }

  /** Makes every earlier write durable (one fsync), then drops host records no group needs any more. */
  async sync(): Promise<void> {
    await this.#wal.sync();
    let oldest = this.#next;
    for (const pin of this.#pins.values()) oldest = Math.min(oldest, pin);
    // Keep the last record: the underlying log must never be compacted past its end.
    const upTo = Math.min(oldest, this.#next - 1) - 1;
    if (upTo > this.#wal.compactedIndex) await this.#wal.compact(upTo);
    // A removed group whose earlier records are gone needs nothing more: without any record, it is absent.
    for (const g of [...this.#removed]) {
      if (this.#pins.get(g)! - 1 <= this.#wal.compactedIndex) {
        this.#pins.delete(g);
        this.#removed.delete(g);
      }
    }
  }

  /** Releases the directory. */
  close(): Promise<void> {
    return this.#wal.close();
  }
}

function encodeOps(ops: readonly HostLogOp[]): Uint8Array {
  const w = new Writer(256);
  for (const op of ops) {
    w.uvarint(op.group);
    if ("batch" in op) {
      const b = op.batch;
      w.u8(OP_BATCH);
      w.u8((b.hardState ? HAS_HARD : 0) | (b.truncateFrom !== undefined ? HAS_TRUNCATE : 0));
      if (b.hardState) w.bytes(encodeHardState(b.hardState));
      if (b.truncateFrom !== undefined) w.uvarint(b.truncateFrom);
      writeEntries(w, b.entries);
    } else if ("compactTo" in op) {
      w.u8(OP_COMPACT);
      w.uvarint(op.compactTo);
    } else if ("checkpoint" in op) {
      w.u8(OP_CHECKPOINT);
      w.bytes(encodeHardState(op.checkpoint.hardState));
      w.uvarint(op.checkpoint.offset);
      writeEntries(w, op.checkpoint.entries);
    } else {
      w.u8(OP_REMOVE);
    }
  }
  return w.finish().slice();
}

function writeEntries(w: Writer, entries: readonly Entry[]): void {
  w.uvarint(entries.length);
  for (const e of entries) w.bytes(encodeEntry(e));
}

function readEntries(r: Reader): Entry[] {
  const n = r.count(1);
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push(decodeEntry(r.bytes()));
  return out;
}

/** One decoded operation of a host record. */
type Op =
  | {
    readonly g: GroupId;
    readonly op: typeof OP_BATCH;
    readonly hard?: HardState;
    readonly from?: Index;
    readonly entries: Entry[];
  }
  | { readonly g: GroupId; readonly op: typeof OP_COMPACT; readonly upTo: Index }
  | {
    readonly g: GroupId;
    readonly op: typeof OP_CHECKPOINT;
    readonly hard: HardState;
    readonly offset: Index;
    readonly entries: Entry[];
  }
  | { readonly g: GroupId; readonly op: typeof OP_REMOVE };

/** The operations of one host record; anything that does not decode is damage. */
function decodeRecord(record: Entry, where: string): Op[] {
  const fail = (reason: string): never => {
    throw new CorruptLogError(where, 0, `host record ${record.index}: ${reason}`);
  };
  const ops: Op[] = [];
  try {
    const r = new Reader(record.data);
    while (r.offset < record.data.length) {
      const g = r.uvarint();
      const op = r.u8();
      switch (op) {
        case OP_BATCH: {
          const f = r.flags(HAS_HARD | HAS_TRUNCATE);
          const hard = f & HAS_HARD ? decodeHardState(r.bytes()) : undefined;
          const from = f & HAS_TRUNCATE ? r.uvarint() : undefined;
          ops.push({ g, op, hard, from, entries: readEntries(r) });
          break;
        }
        case OP_COMPACT:
          ops.push({ g, op, upTo: r.uvarint() });
          break;
        case OP_CHECKPOINT: {
          const hard = decodeHardState(r.bytes());
          const offset = r.uvarint();
          ops.push({ g, op, hard, offset, entries: readEntries(r) });
          break;
        }
        case OP_REMOVE:
          ops.push({ g, op });
          break;
        default:
          fail(`unknown operation ${op} for group ${g}`);
      }
    }
  } catch (e) {
    if (e instanceof CorruptLogError) throw e;
    fail(`does not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
  return ops;
}

/**
 * Folds one host record's operations into the groups' states, but those
 * `moot` says a later checkpoint of their group replaces; an entry that does
 * not continue its group's log is damage. A group's checkpoint is its whole
 * state as of the end of its record (the host writes it after the group's
 * other operations of the iteration), so the shared log may be compacted
 * up to the oldest group's checkpoint record while other groups still have
 * operations left in the records between: those are moot, not damage.
 */
function foldRecord(
  groups: Map<GroupId, GroupState>,
  record: Entry,
  ops: readonly Op[],
  where: string,
  moot: (group: GroupId, op: number) => boolean,
): void {
  const fail = (reason: string): never => {
    throw new CorruptLogError(where, 0, `host record ${record.index}: ${reason}`);
  };
  ops.forEach((o, i) => {
    if (moot(o.g, i)) return;
    const g = o.g;
    let st = groups.get(g);
    if (!st || st.removed) {
      st = { hardState: ZERO, entries: [], offset: 0, pin: record.index, removed: false };
      groups.set(g, st);
    }
    switch (o.op) {
      case OP_BATCH: {
        if (o.hard) st.hardState = o.hard;
        if (o.from !== undefined) {
          if (o.from <= st.offset) {
            fail(`group ${g} truncates from ${o.from}, behind its compaction point ${st.offset}`);
          }
          st.entries.length = Math.max(0, Math.min(st.entries.length, o.from - st.offset - 1));
        }
        for (const e of o.entries) {
          const expected = st.offset + st.entries.length + 1;
          if (e.index !== expected) fail(`group ${g}'s entry ${e.index} does not continue its log (${expected})`);
          st.entries.push(e);
        }
        break;
      }
      case OP_COMPACT:
        if (o.upTo > st.offset) {
          st.entries = st.entries.filter((e) => e.index > o.upTo);
          if (st.entries.length === 0 || st.entries[0]!.index !== o.upTo + 1) st.entries = [];
          st.offset = o.upTo;
        }
        break;
      case OP_CHECKPOINT: {
        st.hardState = o.hard;
        st.offset = o.offset;
        st.entries = o.entries;
        st.pin = record.index;
        const s = st;
        o.entries.forEach((e, j) => {
          if (e.index !== s.offset + 1 + j) fail(`group ${g}'s checkpoint is not contiguous at ${e.index}`);
        });
        break;
      }
      case OP_REMOVE:
        st.removed = true;
        break;
    }
  });
}
