/**
 * A growable byte buffer with the primitives of plank's binary format:
 * unsigned LEB128 varints, zigzag varints, length-prefixed bytes and UTF-8
 * strings. The `*Size` helpers give the exact encoded length of each
 * primitive, so encoders can allocate once.
 *
 * Encoding throws `RangeError` for values outside the format's domain
 * (negative or non-integer counters, numbers beyond 2^53, strings with lone
 * surrogates): writing them would silently change the value.
 *
 * @module
 */

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const utf8 = new TextEncoder();

function outOfRange(what: string, value: unknown): never {
  throw new RangeError(`cannot encode ${what}: ${String(value)}`);
}

/**
 * Encoded length of `n` as an unsigned LEB128 varint (1 to 8 bytes).
 * `n` must be a non-negative safe integer; others are rejected by {@link Writer.uvarint}.
 */
export function uvarintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  return 8;
}

/** Encoded length of the safe integer `n` as a zigzag varint. */
export function svarintSize(n: number): number {
  const m = n < 0 ? -n - 1 : n;
  // Zigzag doubles the magnitude: one bit more than the unsigned form.
  return m < 0x40 ? 1 : 1 + uvarintSize(Math.floor(m / 64));
}

/**
 * Number of bytes of `s` in UTF-8. Throws `RangeError` on a lone surrogate,
 * which UTF-8 cannot represent (TextEncoder would replace it with U+FFFD and
 * the string would not round-trip).
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c < 0xd800 || c > 0xdfff) bytes += 2;
    else if (c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) {
        outOfRange("string with a lone surrogate", JSON.stringify(s));
      }
      i++; // the pair is 2 UTF-16 units and 4 UTF-8 bytes
      bytes += 2;
    } else outOfRange("string with a lone surrogate", JSON.stringify(s));
  }
  return bytes;
}

/** Encoded length of a length-prefixed byte field holding `length` bytes. */
export function bytesFieldSize(length: number): number {
  return uvarintSize(length) + length;
}

/** Encoded length of `s` as a length-prefixed UTF-8 string. */
export function stringFieldSize(s: string): number {
  return bytesFieldSize(utf8Length(s));
}

/**
 * Appends encoded primitives to a buffer that grows as needed. Reuse one
 * writer with {@link Writer.reset} to avoid allocating per record.
 */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;

  /**
   * Creates an empty writer.
   *
   * @param capacity initial buffer size in bytes; pass the exact size when known to avoid any copy
   */
  constructor(capacity: number = 256) {
    this.buf = new Uint8Array(capacity);
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** Forgets what was written, keeping the buffer for reuse. Views returned by {@link Writer.finish} become invalid. */
  reset(): void {
    this.pos = 0;
  }

  /**
   * The bytes written so far. No copy: the result views the writer's buffer
   * (and is that buffer itself when the initial capacity was exact), so it is
   * valid until the writer is reset.
   */
  finish(): Uint8Array {
    return this.pos === this.buf.length ? this.buf : this.buf.subarray(0, this.pos);
  }

  /** Grows the buffer (at least doubling) so `n` more bytes fit. */
  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    const next = new Uint8Array(Math.max(need, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** Appends one byte (0–255). */
  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Appends a non-negative safe integer as an unsigned LEB128 varint. */
  uvarint(n: number): void {
    // Reserve the exact size only near the end, so an exact-size buffer never grows.
    if (this.buf.length - this.pos < 8) this.ensure(uvarintSize(n));
    const buf = this.buf;
    let pos = this.pos;
    if (n >>> 0 === n) {
      // Fast path: fits 32 bits, so bit operations are exact.
      while (n >= 0x80) {
        buf[pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
    } else {
      if (!(Number.isInteger(n) && n >= 0 && n <= MAX_SAFE)) {
        outOfRange("unsigned integer", n);
      }
      while (n >= 0x80) {
        buf[pos++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  /**
   * Appends a safe integer (possibly negative) as a zigzag varint: the sign
   * in the lowest bit, so small magnitudes of either sign stay short. Written
   * without computing `2n+1`, which is not exact beyond 2^53.
   */
  svarint(n: number): void {
    if (!Number.isSafeInteger(n)) outOfRange("integer", n);
    const sign = n < 0 ? 1 : 0;
    const m = sign ? -n - 1 : n;
    const low = m % 0x40;
    const rest = (m - low) / 0x40;
    if (rest === 0) return this.u8((low << 1) | sign);
    this.u8(0x80 | (low << 1) | sign);
    this.uvarint(rest);
  }

  /** Appends `b` without a length prefix. */
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Appends `b` prefixed with its length. */
  bytes(b: Uint8Array): void {
    this.uvarint(b.length);
    this.raw(b);
  }

  /** Appends `s` as length-prefixed UTF-8. */
  string(s: string): void {
    const len = utf8Length(s);
    this.uvarint(len);
    this.ensure(len);
    const buf = this.buf;
    let pos = this.pos;
    if (len === s.length && len <= 64) {
      // Short ASCII (typical node ids): a plain loop beats encodeInto's call overhead.
      for (let i = 0; i < len; i++) buf[pos++] = s.charCodeAt(i);
    } else {
      utf8.encodeInto(s, buf.subarray(pos, pos + len));
      pos += len;
    }
    this.pos = pos;
  }
}
