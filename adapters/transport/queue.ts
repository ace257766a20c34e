/**
 * The bounded per-peer send queue: frames wait here until the connection can
 * take them, and leave as one batch per write.
 *
 * @module
 */

import { concatBytes } from "./framing.ts";

/**
 * Encoded frames waiting for one peer. The bounds count both what is queued
 * and the batch currently being written, so memory stays bounded while a
 * peer is down or slow; when full, `offer` refuses instead of growing.
 */
export class PeerQueue {
  readonly #maxBytes: number;
  readonly #maxMessages: number;
  #frames: Uint8Array[] = [];
  #bytes = 0;
  #inFlightBytes = 0;
  #inFlightMessages = 0;

  /**
   * Create an empty queue.
   *
   * @param maxBytes bound on queued + in-flight bytes
   * @param maxMessages bound on queued + in-flight messages
   */
  constructor(maxBytes: number, maxMessages: number) {
    this.#maxBytes = maxBytes;
    this.#maxMessages = maxMessages;
  }

  /** Messages waiting (not counting the batch in flight). */
  get length(): number {
    return this.#frames.length;
  }

  /** Bytes waiting plus bytes in flight. */
  get bytes(): number {
    return this.#bytes + this.#inFlightBytes;
  }

  /** Append `frame` unless that would exceed a bound. */
  offer(frame: Uint8Array): boolean {
    if (
      this.#frames.length + this.#inFlightMessages >= this.#maxMessages ||
      this.bytes + frame.length > this.#maxBytes
    ) return false;
    this.#frames.push(frame);
    this.#bytes += frame.length;
    return true;
  }

  /**
   * Take everything queued as one buffer (after `prefix`, e.g. a handshake),
   * counted as in flight until {@link PeerQueue.settle}. Undefined when empty.
   */
  take(prefix?: Uint8Array): Uint8Array | undefined {
    if (this.#frames.length === 0) return prefix;
    const parts = prefix ? [prefix, ...this.#frames] : this.#frames;
    const batch = concatBytes(parts, this.#bytes + (prefix?.length ?? 0));
    this.#inFlightBytes += this.#bytes;
    this.#inFlightMessages += this.#frames.length;
    this.#frames = [];
    this.#bytes = 0;
    return batch;
  }

  /** The batch in flight was written (or lost): release its share of the bounds. */
  settle(): void {
    this.#inFlightBytes = 0;
    this.#inFlightMessages = 0;
  }

  /** Drop everything (peer removed or transport closed). */
  clear(): void {
    this.#frames = [];
    this.#bytes = 0;
    this.settle();
  }
}
