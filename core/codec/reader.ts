/**
 * A bounds-checked cursor over encoded bytes: the counterpart of `Writer`.
 *
 * Every read checks the remaining length first and throws {@link DecodeError}
 * (and nothing else) on bad input. Lengths and counts are checked against
 * the bytes actually present before anything is allocated, so a forged
 * 4-GiB length fails at once. Encodings must be canonical (shortest varints,
 * no unknown flag bits), which makes `encode(decode(b))` equal `b` whenever
 * decoding succeeds.
 *
 * Byte fields are returned as views into the input (no copy): callers must
 * not modify the input buffer while decoded values are in use.
 *
 * @module
 */

import { DecodeError } from "./error.ts";

/**
 * Largest term a wire message may carry (and the largest index, see
 * {@link MAX_WIRE_INDEX}): 2^50 − 1, an eighth of `Number.MAX_SAFE_INTEGER`.
 *
 * Why a bound below the format's 2^53 − 1: the core computes `term + 1`
 * (a campaign) and `index + 1` (an append) on what it received, and the
 * encoder refuses anything above 2^53 − 1, so a message at the format's
 * limit used to stop every node that took it. From a value at this bound the
 * core would have to count 7 × 2^50 more elections or entries before an
 * encode could fail. Legitimately reaching the bound takes 2^50 elections
 * (35,000 years at one per millisecond) or 2^50 entries (35 years at a
 * million writes per second); a forged value is kept out by peer
 * authentication. A node past the bound still reads its own disk (the log
 * and hard state decode up to the format's limit); its peers refuse its
 * messages with a {@link DecodeError} instead of stopping.
 */
export const MAX_WIRE_TERM = 2 ** 50 - 1;

/** Largest log index (and snapshot byte offset) a wire message may carry; see {@link MAX_WIRE_TERM}. */
export const MAX_WIRE_INDEX = 2 ** 50 - 1;

/** Caps on what a decoder accepts, beyond the size of the input itself. */
export interface DecodeLimits {
  /** Largest byte field (entry data, snapshot chunk), in bytes. Default: no cap beyond the input. */
  readonly maxBytes?: number;
  /** Largest string (node id), in UTF-8 bytes. Default 65,536. */
  readonly maxString?: number;
  /** Most items in one list (entries, voters, proposals). Default: no cap beyond the input. */
  readonly maxItems?: number;
  /** Largest term. Default: the format's 2^53 − 1 (`decodeMessage` defaults to {@link MAX_WIRE_TERM}). */
  readonly maxTerm?: number;
  /** Largest index or offset. Default: the format's 2^53 − 1 (`decodeMessage`: {@link MAX_WIRE_INDEX}). */
  readonly maxIndex?: number;
}

/** The limits `decodeMessage` applies unless told otherwise: terms and indices bounded for the core's arithmetic. */
export const WIRE_LIMITS: DecodeLimits = { maxTerm: MAX_WIRE_TERM, maxIndex: MAX_WIRE_INDEX };

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DEFAULT_MAX_STRING = 65536;
// ignoreBOM: keep a leading U+FEFF in node ids instead of silently dropping it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads the primitives `Writer` writes, from `bytes`, checking every step. */
export class Reader {
  private readonly buf: Uint8Array;
  private pos = 0;
  private readonly end: number;
  private readonly maxBytes: number;
  private readonly maxString: number;
  private readonly maxItems: number;
  private readonly maxTerm: number;
  private readonly maxIndex: number;

  /**
   * Starts reading at the first byte of `bytes`.
   *
   * @param bytes the input; byte fields read from it alias it
   * @param limits optional caps on field sizes
   */
  constructor(bytes: Uint8Array, limits?: DecodeLimits) {
    this.buf = bytes;
    this.end = bytes.length;
    this.maxBytes = limits?.maxBytes ?? Infinity;
    this.maxString = limits?.maxString ?? DEFAULT_MAX_STRING;
    this.maxItems = limits?.maxItems ?? Infinity;
    this.maxTerm = limits?.maxTerm ?? MAX_SAFE;
    this.maxIndex = limits?.maxIndex ?? MAX_SAFE;
  }

  /** Current position in the input. */
  get offset(): number {
    return this.pos;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws a {@link DecodeError} for `reason` at `offset` (default: the current position). */
  fail(reason: string, offset: number = this.pos): never {
    throw new DecodeError(reason, offset);
  }

  /** Throws unless the whole input has been read. */
  done(): void {
    if (this.pos !== this.end) {
      this.fail(`${this.end - this.pos} trailing byte(s)`);
    }
  }

  /** Reads one byte. */
  u8(): number {
    if (this.pos >= this.end) this.fail("truncated input");
    return this.buf[this.pos++];
  }

  /** Reads a flag byte, rejecting bits outside `allowed` (reserved for future use). */
  flags(allowed: number): number {
    const at = this.pos;
    const f = this.u8();
    if ((f & ~allowed) !== 0) {
      this.fail(`unknown flag bits 0x${(f & ~allowed).toString(16)}`, at);
    }
    return f;
  }

  /** Reads an unsigned LEB128 varint: at most 2^53 − 1, shortest form only. */
  uvarint(): number {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    if (pos < this.end && buf[pos] < 0x80) {
      this.pos = pos + 1;
      return buf[pos];
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (pos >= this.end) this.fail("truncated varint", start);
      const b = buf[pos++];
      // Partial sums are exact while they stay ≤ 2^53, and once past it they
      // cannot round back below, so this check is sound.
      value += (b & 0x7f) * scale;
      if (value > MAX_SAFE) this.fail("varint exceeds 2^53 - 1", start);
      if (b < 0x80) {
        if (b === 0 && i > 0) this.fail("non-canonical varint", start);
        this.pos = pos;
        return value;
      }
      scale *= 0x80;
    }
    return this.fail("varint longer than 8 bytes", start);
  }

  /** Reads a term: a uvarint no larger than the `maxTerm` limit. */
  term(): number {
    return this.bounded(this.maxTerm, "term");
  }

  /** Reads a log index or byte offset: a uvarint no larger than the `maxIndex` limit. */
  index(): number {
    return this.bounded(this.maxIndex, "index");
  }

  /** Reads a uvarint no larger than `max` (`what` names it in the error). */
  private bounded(max: number, what: string): number {
    const at = this.pos;
    const n = this.uvarint();
    if (n > max) this.fail(`${what} ${n} exceeds the limit ${max}`, at);
    return n;
  }

  /** Reads a zigzag varint as written by `Writer.svarint`: a safe integer of either sign. */
  svarint(): number {
    const start = this.pos;
    const b = this.u8();
    const sign = b & 1;
    let m = (b & 0x7f) >>> 1;
    if (b >= 0x80) {
      const rest = this.uvarint();
      if (rest === 0) this.fail("non-canonical varint", start);
      m += rest * 0x40;
      if (m > MAX_SAFE) this.fail("varint exceeds 2^53 - 1", start);
    }
    if (sign === 0) return m;
    if (m === MAX_SAFE) this.fail("integer below -(2^53 - 1)", start);
    return -m - 1;
  }

  /** Reads a length that must fit in the rest of the input and under `cap`. */
  private length(cap: number, what: string): number {
    const at = this.pos;
    const len = this.uvarint();
    if (len > this.end - this.pos) {
      this.fail(
        `${what} length ${len} exceeds the ${this.end - this.pos} remaining byte(s)`,
        at,
      );
    }
    if (len > cap) {
      this.fail(`${what} length ${len} exceeds the limit ${cap}`, at);
    }
    return len;
  }

  /** Reads a length-prefixed byte field, as a view into the input. */
  bytes(): Uint8Array {
    const len = this.length(this.maxBytes, "byte field");
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** Reads a length-prefixed UTF-8 string, rejecting malformed UTF-8. */
  string(): string {
    const len = this.length(this.maxString, "string");
    const buf = this.buf;
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    if (len <= 32) {
      // Short ASCII (typical node ids) without a TextDecoder call.
      let s = "";
      let i = start;
      for (; i < end; i++) {
        const c = buf[i];
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    try {
      return utf8.decode(buf.subarray(start, end));
    } catch {
      return this.fail("invalid UTF-8", start);
    }
  }

  /**
   * Reads an item count for a list whose items take at least `minItemBytes`
   * each, so the count is checked against the input before any loop runs.
   */
  count(minItemBytes: number): number {
    const at = this.pos;
    const n = this.uvarint();
    if (n * minItemBytes > this.end - this.pos) {
      this.fail(
        `count ${n} exceeds what the remaining ${this.end - this.pos} byte(s) can hold`,
        at,
      );
    }
    if (n > this.maxItems) {
      this.fail(`count ${n} exceeds the limit ${this.maxItems}`, at);
    }
    return n;
  }
}
