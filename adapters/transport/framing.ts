/**
 * Wire framing shared by every stream transport: `[u32 big-endian length]
 * [payload]` frames, an incremental decoder that tolerates any chunking, and
 * the handshake frame each connection (or HTTP request body) starts with.
 *
 * @module
 */

import { CODEC_VERSION, encodedMessageSize, writeMessage, Writer } from "../../core/codec/mod.ts";
import type { Message, NodeId } from "../../core/types.ts";

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/** Version of the framing + handshake protocol; bump on incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** The four bytes every handshake starts with ("PLNK"). */
export const HANDSHAKE_MAGIC = "PLNK";

/** A frame announced a length above the configured maximum. */
export class FrameTooLargeError extends Error {
  /** Discriminator. */
  readonly _tag: "FrameTooLargeError" = "FrameTooLargeError";
  /** The announced payload length. */
  readonly size: number;
  /** The limit it exceeded. */
  readonly max: number;

  /**
   * Describe an oversized frame.
   *
   * @param size announced payload length
   * @param max configured limit
   */
  constructor(size: number, max: number) {
    super(`frame of ${size} bytes exceeds the limit of ${max} bytes`);
    this.name = "FrameTooLargeError";
    this.size = size;
    this.max = max;
  }
}

/** A handshake frame that is malformed, of another protocol/version, or of another cluster. */
export class HandshakeError extends Error {
  /** Discriminator. */
  readonly _tag: "HandshakeError" = "HandshakeError";
  /** What was wrong. */
  readonly reason: string;
  /** Whether the peer spoke our protocol but may not talk to us (wrong cluster, unknown sender). */
  readonly forbidden: boolean;

  /**
   * Describe a refused handshake.
   *
   * @param reason what was wrong
   * @param forbidden true for a well-formed handshake we refuse (HTTP 403), false for garbage (HTTP 400)
   */
  constructor(reason: string, forbidden: boolean) {
    super(`handshake rejected: ${reason}`);
    this.name = "HandshakeError";
    this.reason = reason;
    this.forbidden = forbidden;
  }
}

/** Prefix `payload` with its length. Allocates one buffer for header and payload. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Concatenate byte arrays into one (a batch of frames for a single write). */
export function concatBytes(parts: readonly Uint8Array[], totalBytes?: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  let total = totalBytes ?? 0;
  if (totalBytes === undefined) { for (const p of parts) total += p.length; }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Splits a byte stream into frame payloads, whatever the chunk boundaries.
 *
 * Returned payloads own their memory (they never alias a pushed chunk), so a
 * runtime may reuse its read buffer and decoded messages may keep references
 * into the payload. Complete frames inside one chunk share a single copy.
 * After a {@link FrameTooLargeError} the stream is unusable: close it.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFilled = 0;
  /** Payload of a frame that spans chunks, allocated once its length is known. */
  #partial: Uint8Array | undefined;
  #partialFilled = 0;

  /**
   * Create a decoder for one stream.
   *
   * @param maxFrameBytes largest payload accepted
   */
  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** True when no partial frame is buffered (a clean end of stream). */
  get idle(): boolean {
    return this.#headerFilled === 0 && this.#partial === undefined;
  }

  /** Feed the next chunk; returns the payloads of the frames it completes, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let pos = 0;
    // Finish a frame left over from earlier chunks.
    if (this.#headerFilled > 0 || this.#partial !== undefined) {
      pos = this.#continuePartial(chunk, frames);
      if (this.#headerFilled > 0 || this.#partial !== undefined) return frames;
    }
    // Whole frames contained in this chunk: find their extent, copy it once.
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const runStart = pos;
    const bounds: number[] = [];
    while (chunk.length - pos >= FRAME_HEADER_BYTES) {
      const len = view.getUint32(pos);
      if (len > this.#maxFrameBytes) throw new FrameTooLargeError(len, this.#maxFrameBytes);
      if (chunk.length - pos - FRAME_HEADER_BYTES < len) break;
      bounds.push(pos + FRAME_HEADER_BYTES - runStart, pos + FRAME_HEADER_BYTES + len - runStart);
      pos += FRAME_HEADER_BYTES + len;
    }
    if (bounds.length > 0) {
      const copy = chunk.slice(runStart, pos);
      for (let i = 0; i < bounds.length; i += 2) frames.push(copy.subarray(bounds[i], bounds[i + 1]));
    }
    // Start a frame that continues in later chunks.
    if (pos < chunk.length) this.#continuePartial(chunk.subarray(pos), frames);
    return frames;
  }

  /** Consume bytes into the pending header/payload; returns how many bytes of `chunk` were used. */
  #continuePartial(chunk: Uint8Array, frames: Uint8Array[]): number {
    let pos = 0;
    if (this.#partial === undefined) {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.length);
      this.#header.set(chunk.subarray(0, take), this.#headerFilled);
      this.#headerFilled += take;
      pos = take;
      if (this.#headerFilled < FRAME_HEADER_BYTES) return pos;
      const len = new DataView(this.#header.buffer).getUint32(0);
      if (len > this.#maxFrameBytes) throw new FrameTooLargeError(len, this.#maxFrameBytes);
      this.#headerFilled = 0;
      this.#partial = new Uint8Array(len);
      this.#partialFilled = 0;
    }
    const partial = this.#partial;
    const take = Math.min(partial.length - this.#partialFilled, chunk.length - pos);
    partial.set(chunk.subarray(pos, pos + take), this.#partialFilled);
    this.#partialFilled += take;
    pos += take;
    if (this.#partialFilled === partial.length) {
      frames.push(partial);
      this.#partial = undefined;
    }
    return pos;
  }
}

/** The first frame on every connection: who is talking, in which cluster, with which protocol. */
export interface Handshake {
  /** Must be {@link HANDSHAKE_MAGIC}. */
  readonly magic: string;
  /** Must be {@link PROTOCOL_VERSION}. */
  readonly version: number;
  /** The sender's cluster. */
  readonly clusterId: string;
  /** The sending node. */
  readonly from: NodeId;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/**
 * Handshake payload (not yet framed): `"PLNK"`, u16 version, then cluster id
 * and sender as u16-length-prefixed UTF-8.
 */
export function encodeHandshake(h: Handshake): Uint8Array {
  const magic = utf8.encode(h.magic);
  const cluster = utf8.encode(h.clusterId);
  const from = utf8.encode(h.from);
  if (cluster.length > 0xffff || from.length > 0xffff) throw new RangeError("cluster id or node id too long");
  const out = new Uint8Array(magic.length + 2 + 2 + cluster.length + 2 + from.length);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(magic, at);
  at += magic.length;
  view.setUint16(at, h.version);
  at += 2;
  view.setUint16(at, cluster.length);
  out.set(cluster, at + 2);
  at += 2 + cluster.length;
  view.setUint16(at, from.length);
  out.set(from, at + 2);
  return out;
}

/** Parse a handshake payload. Throws {@link HandshakeError} (not forbidden) on malformed bytes. */
export function decodeHandshake(payload: Uint8Array): Handshake {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 0;
  const need = (n: number): void => {
    if (payload.length - at < n) throw new HandshakeError("truncated handshake", false);
  };
  const str = (): string => {
    need(2);
    const len = view.getUint16(at);
    at += 2;
    need(len);
    const s = payload.subarray(at, at + len);
    at += len;
    try {
      return utf8Strict.decode(s);
    } catch {
      throw new HandshakeError("handshake string is not UTF-8", false);
    }
  };
  need(4);
  const magic = String.fromCharCode(payload[0], payload[1], payload[2], payload[3]);
  at = 4;
  if (magic !== HANDSHAKE_MAGIC) throw new HandshakeError("bad magic", false);
  need(2);
  const version = view.getUint16(at);
  at += 2;
  if (version !== PROTOCOL_VERSION) {
    throw new HandshakeError(`unsupported protocol version ${version} (expected ${PROTOCOL_VERSION})`, false);
  }
  const clusterId = str();
  const from = str();
  if (at !== payload.length) throw new HandshakeError("trailing bytes after handshake", false);
  return { magic, version, clusterId, from };
}

/**
 * Check a decoded handshake against our cluster and address book. Throws a
 * forbidden {@link HandshakeError} for another cluster or an unknown sender.
 */
export function checkHandshake(h: Handshake, clusterId: string, isKnownPeer: (id: NodeId) => boolean): void {
  if (h.clusterId !== clusterId) {
    throw new HandshakeError(`cluster ${JSON.stringify(h.clusterId)} is not ${JSON.stringify(clusterId)}`, true);
  }
  if (!isKnownPeer(h.from)) throw new HandshakeError(`unknown sender ${JSON.stringify(h.from)}`, true);
}

/** The framed handshake this node sends first on every connection. */
export function handshakeFrame(clusterId: string, self: NodeId): Uint8Array {
  return encodeFrame(encodeHandshake({ magic: HANDSHAKE_MAGIC, version: PROTOCOL_VERSION, clusterId, from: self }));
}

/** Encode `message` as one frame; a message above `maxFrameBytes` is a caller error (the core bounds message sizes). */
export function encodeMessageFrame(message: Message, maxFrameBytes: number): Uint8Array {
  // One buffer for header and payload (a frame per message: half the allocations of encodeFrame(encodeMessage(m))).
  const size = encodedMessageSize(message);
  const w = new Writer(FRAME_HEADER_BYTES + size);
  w.raw(ZERO_HEADER);
  w.u8(CODEC_VERSION);
  writeMessage(w, message);
  const out = w.finish();
  const length = out.length - FRAME_HEADER_BYTES;
  if (length > maxFrameBytes) {
    throw new RangeError(`message of ${length} bytes exceeds maxFrameBytes ${maxFrameBytes}`);
  }
  new DataView(out.buffer, out.byteOffset).setUint32(0, length);
  return out;
}

const ZERO_HEADER = new Uint8Array(FRAME_HEADER_BYTES);
