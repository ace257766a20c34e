/**
 * The leader's side of a chunked snapshot transfer (paper Figure 13, with
 * chunks acknowledged one by one), sans-IO: it decides which byte ranges go
 * out and when; the I/O shell reads them from the snapshot store and sends
 * them. The same code runs in production and in the simulator.
 *
 * - a window: at most `window` chunks beyond the follower's acknowledged
 *   offset are in flight;
 * - acknowledgements move the window; a follower that reports a gap (a lost
 *   or reordered chunk) names the offset it needs, and the stream resumes
 *   there — once per offset, since every chunk behind the gap reports it;
 * - idle retry: with no answer for `idleMs`, the stream resends from the
 *   acknowledged offset; after `maxIdle` such rounds it gives up (the shell
 *   tells the core the follower is unreachable, and the core asks again once
 *   the follower answers a heartbeat);
 * - an empty snapshot is one empty, final chunk.
 *
 * @module
 */

import type { InstallSnapshot, MessageHeader, SnapshotMeta, Term } from "../../core/types.ts";

/** A byte range of the snapshot to send as one InstallSnapshot chunk. */
export interface ChunkToSend {
  /** Offset of the first byte. */
  readonly offset: number;
  /** Number of bytes. */
  readonly length: number;
  /** Whether it is the last chunk. */
  readonly done: boolean;
}

/** What a sender is built from. */
export interface SenderOptions {
  /** The follower. */
  readonly to: string;
  /** The leader's term the stream belongs to. */
  readonly term: Term;
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** Its size in bytes. */
  readonly size: number;
  /** Largest chunk, in bytes (at least 1). */
  readonly chunkBytes: number;
  /** Chunks in flight beyond the acknowledged offset. */
  readonly window: number;
  /** Silence after which the stream resends from the acknowledged offset. */
  readonly idleMs: number;
  /** Idle rounds after which the stream gives up. */
  readonly maxIdle: number;
}

/** Chunks in flight beyond the follower's acknowledged offset, by default. */
export const SNAPSHOT_WINDOW = 4;
/** Idle rounds (of an election timeout each) before a stream gives up, by default. */
export const SNAPSHOT_MAX_IDLE = 3;

/** One snapshot stream to one follower. */
export class SnapshotSender {
  /** The options it was built with. */
  readonly options: SenderOptions;
  #acked = 0;
  #sent = 0;
  /** Offset last resumed from after a gap report (-1: none). */
  #resumedAt = -1;
  #idle = 0;
  #quietSince: number;
  #emptySent = false;
  #finished = false;

  /** A stream starting at offset 0 at time `now`. */
  constructor(options: SenderOptions, now: number) {
    this.options = { ...options, chunkBytes: Math.max(1, Math.floor(options.chunkBytes)) };
    this.#quietSince = now;
  }

  /** The offset the follower confirmed. */
  get acked(): number {
    return this.#acked;
  }

  /** The next offset to send. */
  get sent(): number {
    return this.#sent;
  }

  /** Whether the follower reported the whole snapshot installed. */
  get finished(): boolean {
    return this.#finished;
  }

  /** The chunks that may go out now (filling the window), in order. */
  pump(): ChunkToSend[] {
    const { size, chunkBytes, window } = this.options;
    const out: ChunkToSend[] = [];
    if (this.#finished) return out;
    if (size === 0) {
      if (!this.#emptySent) {
        this.#emptySent = true;
        out.push({ offset: 0, length: 0, done: true });
      }
      return out;
    }
    while (this.#sent < size && this.#sent < this.#acked + window * chunkBytes) {
      const length = Math.min(chunkBytes, size - this.#sent);
      out.push({ offset: this.#sent, length, done: this.#sent + length >= size });
      this.#sent += length;
    }
    return out;
  }

  /**
   * A follower's answer about a chunk: it now expects `offset`; `success`
   * false reports a gap (or an aborted partial snapshot) it needs filled from
   * `offset`. `done` answers end the stream.
   */
  answer(offset: number, success: boolean, done: boolean, now: number): void {
    this.#quietSince = now;
    this.#idle = 0;
    if (done) {
      this.#finished = success;
      return;
    }
    if (offset > this.#acked) this.#acked = Math.min(offset, this.options.size);
    if (!success && offset < this.#sent && offset !== this.#resumedAt) {
      this.#sent = Math.max(0, offset);
      this.#resumedAt = offset;
      this.#emptySent = false;
    }
  }

  /** The core asked for the same snapshot again (a transfer that looked lost): resume from what was confirmed. */
  resume(now: number): void {
    this.#rewind(now);
    this.#idle = 0;
  }

  /**
   * Time passed. After `idleMs` without an answer the stream resends from
   * the acknowledged offset; returns `"give-up"` once that happened
   * `maxIdle` times in a row.
   */
  tick(now: number): "give-up" | undefined {
    if (this.#finished || now < this.#quietSince + this.options.idleMs) return undefined;
    if (++this.#idle > this.options.maxIdle) return "give-up";
    this.#rewind(now);
    return undefined;
  }

  /** When {@link tick} next has something to do. */
  get deadline(): number {
    return this.#quietSince + this.options.idleMs;
  }

  #rewind(now: number): void {
    this.#sent = this.#acked;
    this.#resumedAt = -1;
    this.#emptySent = false;
    this.#quietSince = now;
  }
}

/** The InstallSnapshot message for one chunk (the checksum rides on the last). */
export function chunkMessage(
  header: MessageHeader,
  meta: SnapshotMeta,
  chunk: ChunkToSend,
  data: Uint8Array,
  checksum: number | undefined,
): InstallSnapshot {
  return {
    ...header,
    type: "InstallSnapshot",
    meta,
    offset: chunk.offset,
    data,
    done: chunk.done,
    ...(chunk.done && checksum !== undefined ? { checksum } : {}),
  };
}
