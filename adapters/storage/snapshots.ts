/**
 * The snapshot store: the state machine's snapshots as files in
 * `DATA/snapshots/`, written over the {@link DurableFs} port.
 *
 * A snapshot file `snap-<index>-<term>.snap` is a header, the user's bytes
 * and a trailer with their checksum, little-endian:
 *
 * ```
 * "PLNKSNAP" [u32 meta length][u32 crc32c of meta][encodeSnapshotMeta bytes]
 * [user bytes...]
 * "PLNKSEND" [u64 length of the user bytes][u32 crc32c of the user bytes][u32 crc32c of the 20 bytes before]
 * ```
 *
 * The data's CRC-32C is known only once it has all streamed through, hence a
 * trailer. It is the snapshot's `checksum`: a leader sends it with the last
 * InstallSnapshot chunk, and reading a snapshot from start to end fails
 * (before the last chunk is handed out) when the data does not match it, so
 * a damaged snapshot is neither restored nor sent.
 *
 * Writing goes to `snap-<index>-<term>.tmp`, is fsynced, renamed into place
 * and the directory fsynced (docs/DESIGN.md "Durability"), so a reader only ever
 * sees a complete snapshot. The size is never needed up front: snapshots are
 * streamed in and out in chunks.
 *
 * @module
 */

import { decodeSnapshotMeta, encodeSnapshotMeta } from "../../core/codec/mod.ts";
import { crc32c, formatCrc32c as hex } from "../../core/crc32c.ts";
import type { GroupId, SnapshotMeta } from "../../core/types.ts";
import { type AppendFile, CorruptLogError, type DurableFs, joinPath, removeTempFiles } from "./fs.ts";

const MAGIC = new TextEncoder().encode("PLNKSNAP");
const FIXED_HEADER = MAGIC.length + 8;
const END_MAGIC = new TextEncoder().encode("PLNKSEND");
const TRAILER = END_MAGIC.length + 16;
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
const SNAP_RE = /^snap-(\d+)-(\d+)\.snap$/;
const SNAP_DIR = "snapshots";

/** Whether data directory `dataDir` holds a snapshot file (without opening the store or checking it). */
export async function holdsSnapshots(fs: DurableFs, dataDir: string): Promise<boolean> {
  const dir = joinPath(dataDir, SNAP_DIR);
  return (await fs.exists(dir)) && (await fs.readDir(dir)).some((name) => SNAP_RE.test(name));
}

// The shapes the interpreter's snapshot-store port expects (effects/ports.ts), implemented here.
import type { ChunkResult, StoredSnapshot } from "../../effects/ports/mod.ts";
import { SnapshotChecksumMismatch } from "../../effects/errors.ts";
export type { ChunkResult, StoredSnapshot };

/** Collects an incoming snapshot (InstallSnapshot chunks) into a temporary file. */
export interface SnapshotReceiver {
  /** What is being received. */
  readonly meta: SnapshotMeta;
  /** Bytes received so far: the offset the next chunk must have. */
  readonly size: number;
  /** CRC-32C of the bytes received so far. */
  readonly checksum: number;
  /** Appends `bytes` if `offset` equals {@link SnapshotReceiver.size}; otherwise writes nothing. */
  writeChunk(offset: number, bytes: Uint8Array): Promise<ChunkResult>;
  /**
   * If the bytes received have the sender's CRC-32C `checksum`, makes the
   * snapshot durable and current (trailer, fsync, rename, directory fsync)
   * and removes older ones. Otherwise, or without a checksum, drops it and
   * rejects with `SnapshotChecksumMismatch`: nothing becomes current.
   */
  finish(checksum: number | undefined): Promise<StoredSnapshot>;
  /** Drops what was received. */
  abort(): Promise<void>;
}

function snapName(meta: SnapshotMeta, ext: "snap" | "tmp"): string {
  return `snap-${meta.index}-${meta.term}.${ext}`;
}

function trailer(size: number, checksum: number): Uint8Array {
  const t = new Uint8Array(TRAILER);
  const view = new DataView(t.buffer);
  t.set(END_MAGIC, 0);
  view.setBigUint64(END_MAGIC.length, BigInt(size), true);
  view.setUint32(END_MAGIC.length + 8, checksum, true);
  view.setUint32(END_MAGIC.length + 12, crc32c(t.subarray(0, END_MAGIC.length + 12)), true);
  return t;
}

function header(meta: SnapshotMeta): Uint8Array {
  const m = encodeSnapshotMeta(meta);
  const h = new Uint8Array(FIXED_HEADER + m.length);
  h.set(MAGIC, 0);
  const view = new DataView(h.buffer);
  view.setUint32(MAGIC.length, m.length, true);
  view.setUint32(MAGIC.length + 4, crc32c(m), true);
  h.set(m, FIXED_HEADER);
  return h;
}

/** Snapshots under `DATA/snapshots/`. Use one store per data directory (the WAL's lock covers it). */
export class FileSnapshotStore {
  /** Retained snapshot files (by name) and how many holders each has ({@link StoredSnapshot.retain}). */
  readonly #held = new Map<string, number>();
  /** Retained files a newer snapshot replaced: removed at their last release. */
  readonly #replaced = new Set<string>();

  private constructor(private readonly fs: DurableFs, private readonly dir: string) {}

  /** Opens the store under data directory `dataDir`, removing temporary files a crash left behind. */
  static async open(fs: DurableFs, dataDir: string): Promise<FileSnapshotStore> {
    const dir = joinPath(dataDir, SNAP_DIR);
    await fs.mkdirp(dir);
    await removeTempFiles(fs, dir);
    return new FileSnapshotStore(fs, dir);
  }

  /**
   * The newest snapshot (highest index, then term), or undefined if none.
   *
   * @throws CorruptLogError if its header is damaged or disagrees with its name
   */
  async latest(): Promise<StoredSnapshot | undefined> {
    for (;;) {
      const snaps = await this.list();
      const best = snaps[snaps.length - 1];
      if (best === undefined) return undefined;
      try {
        return await this.load(best.name);
      } catch (e) {
        // A newer snapshot finishing between the listing and the open removes this one: that is a
        // replacement, not damage, so list again. A file that is still there failed for real.
        if (await this.fs.exists(joinPath(this.dir, best.name))) throw e;
      }
    }
  }

  /** Streams `chunks` into a new snapshot for `meta` and makes it current; removes older snapshots. */
  async write(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<StoredSnapshot> {
    const rx = await this.receive(meta);
    try {
      for await (const chunk of chunks) await rx.writeChunk(rx.size, chunk);
    } catch (e) {
      await rx.abort().catch(() => {});
      throw e;
    }
    return await rx.finish(rx.checksum);
  }

  /** Starts receiving a snapshot for `meta` chunk by chunk, into a temporary file. */
  async receive(meta: SnapshotMeta): Promise<SnapshotReceiver> {
    const tmp = joinPath(this.dir, snapName(meta, "tmp"));
    const final = joinPath(this.dir, snapName(meta, "snap"));
    await this.fs.remove(tmp);
    const file: AppendFile = await this.fs.openAppend(tmp);
    const h = header(meta);
    try {
      await file.write(h);
    } catch (e) {
      await file.close().catch(() => {});
      throw e;
    }
    let size = 0;
    let crc = 0;
    let state: "open" | "finished" | "aborted" = "open";
    const fs = this.fs;
    const dir = this.dir;
    const removeOlder = (m: SnapshotMeta): Promise<void> => this.removeOlderThan(m);
    const stored = (m: SnapshotMeta, p: string, h: number, n: number, c: number): StoredSnapshot =>
      this.stored(m, p, h, n, c);
    const ensureOpen = (): void => {
      if (state !== "open") throw new Error(`snapshot receiver for ${final} is already ${state}`);
    };
    const abort = async (): Promise<void> => {
      if (state !== "open") return;
      state = "aborted";
      await file.close().catch(() => {});
      await fs.remove(tmp);
    };
    return {
      meta,
      get size(): number {
        return size;
      },
      get checksum(): number {
        return crc;
      },
      async writeChunk(offset: number, bytes: Uint8Array): Promise<ChunkResult> {
        ensureOpen();
        if (offset !== size) return { accepted: false, expected: size };
        await file.write(bytes);
        size += bytes.length;
        crc = crc32c(bytes, crc);
        return { accepted: true, expected: size };
      },
      async finish(checksum: number | undefined): Promise<StoredSnapshot> {
        ensureOpen();
        if (checksum !== crc) {
          await abort();
          throw new SnapshotChecksumMismatch(meta, checksum, crc);
        }
        state = "finished";
        try {
          await file.write(trailer(size, checksum));
          await file.sync();
        } finally {
          await file.close();
        }
        await fs.rename(tmp, final);
        await fs.syncDir(dir);
        await removeOlder(meta);
        return stored(meta, final, h.length, size, checksum);
      },
      abort,
    };
  }

  /** Stored snapshots, oldest first. */
  private async list(): Promise<{ name: string; index: number; term: number }[]> {
    const out: { name: string; index: number; term: number }[] = [];
    for (const name of await this.fs.readDir(this.dir)) {
      const m = SNAP_RE.exec(name);
      if (m) out.push({ name, index: Number(m[1]), term: Number(m[2]) });
    }
    return out.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  /** Deletes snapshots older than `meta`. */
  private async removeOlderThan(meta: SnapshotMeta): Promise<void> {
    let removed = false;
    for (const s of await this.list()) {
      if (s.index < meta.index || (s.index === meta.index && s.term < meta.term)) {
        if (this.#held.has(s.name)) {
          this.#replaced.add(s.name); // Being streamed: removed at its last release.
          continue;
        }
        await this.fs.remove(joinPath(this.dir, s.name));
        removed = true;
      }
    }
    if (removed) await this.fs.syncDir(this.dir);
  }

  /** Opens snapshot file `name`, checking its header and trailer (the data is checked as it is read). */
  private async load(name: string): Promise<StoredSnapshot> {
    const path = joinPath(this.dir, name);
    const f = await this.fs.openRead(path);
    try {
      const fileSize = await f.size();
      const fixed = await f.readAt(0, FIXED_HEADER);
      if (fixed.length < FIXED_HEADER) throw new CorruptLogError(path, 0, "snapshot header is truncated");
      for (let i = 0; i < MAGIC.length; i++) {
        if (fixed[i] !== MAGIC[i]) throw new CorruptLogError(path, i, "not a plank snapshot (bad magic)");
      }
      const view = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength);
      const metaLen = view.getUint32(MAGIC.length, true);
      const metaCrc = view.getUint32(MAGIC.length + 4, true);
      if (FIXED_HEADER + metaLen > fileSize) {
        throw new CorruptLogError(path, MAGIC.length, `snapshot metadata length ${metaLen} runs past end of file`);
      }
      const m = await f.readAt(FIXED_HEADER, metaLen);
      if (crc32c(m) !== metaCrc) throw new CorruptLogError(path, FIXED_HEADER, "snapshot metadata checksum mismatch");
      let meta: SnapshotMeta;
      try {
        meta = decodeSnapshotMeta(m);
      } catch (e) {
        throw new CorruptLogError(path, FIXED_HEADER, `undecodable snapshot metadata: ${(e as Error).message}`);
      }
      if (name !== snapName(meta, "snap")) {
        throw new CorruptLogError(
          path,
          FIXED_HEADER,
          `metadata (index ${meta.index}, term ${meta.term}) disagrees with the file name`,
        );
      }
      const headerLen = FIXED_HEADER + metaLen;
      const end = fileSize - TRAILER;
      if (end < headerLen) throw new CorruptLogError(path, headerLen, "snapshot trailer is missing (file cut short?)");
      const t = await f.readAt(end, TRAILER);
      const tv = new DataView(t.buffer, t.byteOffset, t.byteLength);
      if (
        !END_MAGIC.every((c, i) => t[i] === c) || crc32c(t.subarray(0, TRAILER - 4)) !== tv.getUint32(TRAILER - 4, true)
      ) {
        throw new CorruptLogError(path, end, "snapshot trailer is damaged or missing (file cut short?)");
      }
      const size = Number(tv.getBigUint64(END_MAGIC.length, true));
      if (size !== end - headerLen) {
        throw new CorruptLogError(
          path,
          end,
          `snapshot trailer records ${size} data bytes, the file holds ${end - headerLen}`,
        );
      }
      return this.stored(meta, path, headerLen, size, tv.getUint32(END_MAGIC.length + 8, true));
    } finally {
      await f.close();
    }
  }

  /** The reader of a stored snapshot file; a read from the start verifies the data against `checksum`. */
  private stored(meta: SnapshotMeta, path: string, headerLen: number, size: number, checksum: number): StoredSnapshot {
    const fs = this.fs;
    const name = path.slice(path.lastIndexOf("/") + 1);
    const held = this.#held;
    const replaced = this.#replaced;
    return {
      meta,
      size,
      checksum,
      async retain(): Promise<(() => Promise<void>) | undefined> {
        // Held first, then checked: a removal from now on leaves it be; one before it is seen here.
        held.set(name, (held.get(name) ?? 0) + 1);
        let released = false;
        const release = async (): Promise<void> => {
          if (released) return;
          released = true;
          const left = held.get(name)! - 1;
          if (left > 0) return void held.set(name, left);
          held.delete(name);
          if (!replaced.delete(name)) return;
          // Not synced: a replaced snapshot that reappears after a crash is removed by the next one stored.
          await fs.remove(path);
        };
        let exists: boolean;
        try {
          exists = await fs.exists(path);
        } catch (e) {
          // Not held after all: a hold counted but never handed out would keep the file for good.
          await release().catch(() => {});
          throw e;
        }
        if (exists) return release;
        await release();
        return undefined;
      },
      read(offset = 0, chunkBytes = DEFAULT_CHUNK_BYTES, check = true): AsyncIterable<Uint8Array> {
        if (!(offset >= 0 && offset <= size)) {
          throw new RangeError(`offset ${offset} outside snapshot of ${size} bytes`);
        }
        if (!(chunkBytes > 0)) throw new RangeError(`chunkBytes must be positive, got ${chunkBytes}`);
        return {
          async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
            const f = await fs.openRead(path);
            try {
              let crc = 0;
              for (let at = offset; at < size;) {
                const chunk = await f.readAt(headerLen + at, Math.min(chunkBytes, size - at));
                if (chunk.length === 0) {
                  throw new CorruptLogError(path, headerLen + at, "snapshot file shrank while read");
                }
                at += chunk.length;
                if (offset === 0 && check) {
                  crc = crc32c(chunk, crc);
                  if (at >= size && crc !== checksum) {
                    throw new CorruptLogError(
                      path,
                      headerLen,
                      `snapshot data checksum mismatch (crc32c ${hex(crc)}, trailer records ${hex(checksum)})`,
                    );
                  }
                }
                yield chunk;
              }
            } finally {
              await f.close();
            }
          },
        };
      },
    };
  }
}

/**
 * The snapshots of every group a host runs (see `effects/host/host_loop.ts`):
 * one {@link FileSnapshotStore} per group, group `g`'s under `DIR/<g>/snapshots/`,
 * same format, same checks. The multi-group log's lock covers `DIR` when it
 * sits beside that log (raftd: `DATA/groups/snapshots/`).
 */
export class FileGroupSnapshots {
  readonly #stores = new Map<GroupId, Promise<FileSnapshotStore>>();

  private constructor(private readonly fs: DurableFs, private readonly dir: string) {}

  /** The group stores under `dir` (created if missing). */
  static async open(fs: DurableFs, dir: string): Promise<FileGroupSnapshots> {
    await fs.mkdirp(dir);
    return new FileGroupSnapshots(fs, dir);
  }

  /** Group `group`'s store, opened once (removing what a crash left of an unfinished snapshot). */
  open(group: GroupId): Promise<FileSnapshotStore> {
    let store = this.#stores.get(group);
    if (store === undefined) {
      store = FileSnapshotStore.open(this.fs, joinPath(this.dir, String(group)));
      this.#stores.set(group, store);
      store.catch(() => this.#stores.delete(group));
    }
    return store;
  }

  /** Deletes group `group`'s snapshots, durably (the group left this host, or starts afresh). */
  async remove(group: GroupId): Promise<void> {
    this.#stores.delete(group);
    const path = joinPath(this.dir, String(group));
    if (!(await this.fs.exists(path))) return;
    await this.fs.remove(path);
    await this.fs.syncDir(this.dir);
  }
}
