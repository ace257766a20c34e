/**
 * `wal/TAIL`: the write-ahead log's witness of how far it was synced.
 *
 * A record cut off the end of the last segment, a zeroed or flipped final
 * record, or a deleted last segment all look like an ordinary end of log, or
 * like a torn write, from the segment alone. So after every fsync of the
 * active segment the log writes down, here, which segment it was and how many
 * of its bytes are now durable. Replay then refuses a log that ends (or is
 * damaged) below that mark, and only repairs bytes past it.
 *
 * The mark is written in place without an fsync of its own, after the
 * segment's fsync returned: whatever version of it survives a power loss
 * names bytes that were durable before it was written, so it can lag behind
 * the log but never run ahead of it. Two slots are written in turn, each with
 * a sequence number and a checksum, so a write torn by a power loss leaves the
 * previous mark readable. Layout (little-endian), slot 0 at byte 0, slot 1 at
 * byte 64:
 *
 * ```
 * "PLNKTAIL" [u64 sequence][u64 segment's first index][u64 synced bytes][u32 crc32c of the 32 bytes before]
 * ```
 *
 * @module
 */

import { crc32c } from "../../core/crc32c.ts";
import { CorruptLogError, type OverwriteFile } from "./fs.ts";

/** The witness's file name inside `wal/`. */
export const TAIL_FILE = "TAIL";

const MAGIC = new TextEncoder().encode("PLNKTAIL");
const SLOT_BYTES = 36;
const SLOT_STRIDE = 64;
const FILE_BYTES = SLOT_STRIDE + SLOT_BYTES;

/** How far the log is known to be synced. */
export interface TailMark {
  /** First index (file name) of the segment the mark is about. */
  readonly segment: number;
  /** Bytes of that segment that were durable when the mark was written. */
  readonly synced: number;
}

function encodeSlot(seq: number, mark: TailMark): Uint8Array {
  const b = new Uint8Array(SLOT_BYTES);
  const view = new DataView(b.buffer);
  b.set(MAGIC, 0);
  view.setBigUint64(8, BigInt(seq), true);
  view.setBigUint64(16, BigInt(mark.segment), true);
  view.setBigUint64(24, BigInt(mark.synced), true);
  view.setUint32(32, crc32c(b.subarray(0, 32)), true);
  return b;
}

/** A new log's witness file: both slots hold `mark`. */
export function initialTail(mark: TailMark): Uint8Array {
  const b = new Uint8Array(FILE_BYTES);
  b.set(encodeSlot(0, mark), 0);
  b.set(encodeSlot(1, mark), SLOT_STRIDE);
  return b;
}

/** The latest mark in `bytes` (the content of the witness file at `path`) and its sequence number. */
export function readTail(bytes: Uint8Array, path: string): { readonly mark: TailMark; readonly seq: number } {
  if (bytes.length !== FILE_BYTES) {
    throw new CorruptLogError(path, 0, `log tail witness is ${bytes.length} bytes, expected ${FILE_BYTES}`);
  }
  let best: { mark: TailMark; seq: number } | undefined;
  for (const at of [0, SLOT_STRIDE]) {
    const slot = bytes.subarray(at, at + SLOT_BYTES);
    const view = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
    if (!MAGIC.every((c, i) => slot[i] === c) || crc32c(slot.subarray(0, 32)) !== view.getUint32(32, true)) continue;
    const seq = Number(view.getBigUint64(8, true));
    const mark = { segment: Number(view.getBigUint64(16, true)), synced: Number(view.getBigUint64(24, true)) };
    if (best === undefined || seq > best.seq) best = { mark, seq };
  }
  if (best === undefined) throw new CorruptLogError(path, 0, "log tail witness: both slots are damaged");
  return best;
}

/** Writes marks into the witness file, alternating slots. */
export class TailWriter {
  private seq: number;
  private last: TailMark;

  /**
   * @param file the witness file, open for in-place writes
   * @param seq sequence number of the mark read at open
   * @param mark that mark
   */
  constructor(private readonly file: OverwriteFile, seq: number, mark: TailMark) {
    this.seq = seq;
    this.last = mark;
  }

  /** Records `mark` (after the fsync it describes returned); nothing is written if it did not move. */
  async write(mark: TailMark): Promise<void> {
    if (mark.segment === this.last.segment && mark.synced === this.last.synced) return;
    const seq = this.seq + 1;
    await this.file.writeAt((seq % 2) * SLOT_STRIDE, encodeSlot(seq, mark));
    this.seq = seq;
    this.last = mark;
  }

  /** Closes the file. */
  close(): Promise<void> {
    return this.file.close();
  }
}
