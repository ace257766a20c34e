/**
 * An in-memory snapshot store for tests and examples.
 *
 * @module
 */

import { crc32c } from "../../core/crc32c.ts";
import type { SnapshotMeta } from "../../core/types.ts";
import { SnapshotChecksumMismatch } from "../../effects/errors.ts";
import type { ChunkResult, SnapshotReceiverPort, SnapshotStorePort, StoredSnapshot } from "../../effects/ports/mod.ts";

function stored(meta: SnapshotMeta, bytes: Uint8Array, checksum: number): StoredSnapshot {
  return {
    meta,
    size: bytes.length,
    checksum,
    read(offset = 0, chunkBytes = 1024 * 1024): AsyncIterable<Uint8Array> {
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
          for (let at = offset; at < bytes.length; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
        },
      };
    },
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Keeps the latest snapshot in memory. Reuse one instance across restarts to model a disk. */
export class MemorySnapshotStore implements SnapshotStorePort {
  private current: StoredSnapshot | undefined = undefined;

  /** The latest snapshot's metadata, if any. */
  get latestMeta(): SnapshotMeta | undefined {
    return this.current?.meta;
  }

  /** The newest snapshot. */
  latest(): Promise<StoredSnapshot | undefined> {
    return Promise.resolve(this.current);
  }

  /** Stores a snapshot. */
  async write(meta: SnapshotMeta, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<StoredSnapshot> {
    const parts: Uint8Array[] = [];
    // Copied: a streaming state machine may reuse its buffers between chunks.
    for await (const chunk of chunks) parts.push(chunk.slice());
    const bytes = concat(parts);
    return this.#keep(stored(meta, bytes, crc32c(bytes)));
  }

  /**
   * Makes `snap` the latest unless a snapshot of a higher index is (as the
   * file store keeps the highest): a capture stored after a newer snapshot
   * was installed must not replace it, or a restart would begin behind what
   * the node acknowledged.
   */
  #keep(snap: StoredSnapshot): StoredSnapshot {
    if (this.current === undefined || snap.meta.index >= this.current.meta.index) this.current = snap;
    return snap;
  }

  /** Receives a snapshot chunk by chunk. */
  receive(meta: SnapshotMeta): Promise<SnapshotReceiverPort> {
    const parts: Uint8Array[] = [];
    let size = 0;
    return Promise.resolve({
      writeChunk: (offset: number, bytes: Uint8Array): Promise<ChunkResult> => {
        if (offset !== size) return Promise.resolve({ accepted: false, expected: size });
        parts.push(bytes.slice());
        size += bytes.length;
        return Promise.resolve({ accepted: true, expected: size });
      },
      finish: (checksum: number | undefined): Promise<StoredSnapshot> => {
        const bytes = concat(parts);
        const actual = crc32c(bytes);
        if (checksum !== actual) return Promise.reject(new SnapshotChecksumMismatch(meta, checksum, actual));
        return Promise.resolve(this.#keep(stored(meta, bytes, actual)));
      },
      abort: (): Promise<void> => Promise.resolve(),
    });
  }
}
