/**
 * {@link DurableFs} on Deno's file APIs: `Deno.open` + `FsFile.sync()` for
 * durable writes, `fsync` of a read-only directory handle for durable
 * renames, and an advisory `flock` on `DATA/LOCK` for exclusive use.
 *
 * @module
 */

import {
  type AppendFile,
  DataDirLockedError,
  type DirLock,
  type DurableFs,
  joinPath,
  type OverwriteFile,
  parseLockPid,
  type ReadFile,
  wrapIo,
  wrapIoNow,
} from "../storage/fs.ts";

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * Writes `bytes` with blocking `write(2)` calls. A write into the page cache
 * takes microseconds, while an async `FsFile.write` hands each call to a
 * thread pool and back (measured: ~60 µs of CPU against ~4 µs for a 3 KB
 * write), which the log pays on every append. What waits for the device,
 * fsync, stays async.
 */
function writeAllNow(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

class DenoAppendFile implements AppendFile {
  constructor(private readonly file: Deno.FsFile, private readonly path: string) {}
  write(bytes: Uint8Array): Promise<void> {
    return wrapIoNow("write", this.path, () => writeAllNow(this.file, bytes));
  }
  sync(): Promise<void> {
    return wrapIo("fsync", this.path, () => this.file.sync());
  }
  close(): Promise<void> {
    return wrapIo("close", this.path, () => Promise.resolve(this.file.close()));
  }
}

class DenoReadFile implements ReadFile {
  constructor(private readonly file: Deno.FsFile, private readonly path: string) {}
  size(): Promise<number> {
    return wrapIo("stat", this.path, async () => (await this.file.stat()).size);
  }
  readAt(position: number, length: number): Promise<Uint8Array> {
    return wrapIo("read", this.path, async () => {
      await this.file.seek(position, Deno.SeekMode.Start);
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = await this.file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      return got === length ? buf : buf.subarray(0, got);
    });
  }
  close(): Promise<void> {
    return wrapIo("close", this.path, () => Promise.resolve(this.file.close()));
  }
}

class DenoOverwriteFile implements OverwriteFile {
  constructor(private readonly file: Deno.FsFile, private readonly path: string) {}
  writeAt(position: number, bytes: Uint8Array): Promise<void> {
    return wrapIoNow("write", this.path, () => {
      // Deno's FsFile has no pwrite; the log's single writer makes seek + write safe.
      this.file.seekSync(position, Deno.SeekMode.Start);
      writeAllNow(this.file, bytes);
    });
  }
  close(): Promise<void> {
    return wrapIo("close", this.path, () => Promise.resolve(this.file.close()));
  }
}

/** {@link DurableFs} implemented with Deno's APIs. Needs `--allow-read --allow-write`. */
export class DenoFs implements DurableFs {
  /** Creates `path` and missing parents. */
  mkdirp(path: string): Promise<void> {
    return wrapIo("mkdir", path, () => Deno.mkdir(path, { recursive: true }));
  }

  /** Lists the entry names of directory `path`. */
  readDir(path: string): Promise<string[]> {
    return wrapIo("readDir", path, async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(path)) names.push(e.name);
      return names;
    });
  }

  /** Reads the whole file at `path`. */
  readFile(path: string): Promise<Uint8Array> {
    return wrapIo("readFile", path, () => Deno.readFile(path));
  }

  /** Whether anything exists at `path`. */
  async exists(path: string): Promise<boolean> {
    try {
      await Deno.lstat(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      return wrapIo("stat", path, () => Promise.reject(e));
    }
  }

  /** Opens `path` for appending, creating it if missing. */
  openAppend(path: string): Promise<AppendFile> {
    return wrapIo("open", path, async () => {
      const file = await Deno.open(path, { append: true, create: true });
      return new DenoAppendFile(file, path);
    });
  }

  /** Opens an existing file for positional reads. */
  openRead(path: string): Promise<ReadFile> {
    return wrapIo("open", path, async () => new DenoReadFile(await Deno.open(path, { read: true }), path));
  }

  /** Opens an existing file for in-place writes (no append, no truncation). */
  openOverwrite(path: string): Promise<OverwriteFile> {
    return wrapIo("open", path, async () => new DenoOverwriteFile(await Deno.open(path, { write: true }), path));
  }

  /** Creates or replaces `path` with `bytes`, fsynced. */
  writeFileSynced(path: string, bytes: Uint8Array): Promise<void> {
    return wrapIo("writeFile", path, async () => {
      using file = await Deno.open(path, { write: true, create: true, truncate: true });
      await writeAll(file, bytes);
      await file.sync();
    });
  }

  /** Renames `from` to `to`, replacing `to`. */
  rename(from: string, to: string): Promise<void> {
    return wrapIo("rename", `${from} -> ${to}`, () => Deno.rename(from, to));
  }

  /** Removes a file or directory tree; missing is fine. */
  remove(path: string): Promise<void> {
    return wrapIo("remove", path, async () => {
      try {
        await Deno.remove(path, { recursive: true });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    });
  }

  /** Fsyncs directory `path`. */
  syncDir(path: string): Promise<void> {
    return wrapIo("fsync dir", path, async () => {
      // A directory can only be opened read-only; fsync on that handle
      // flushes its entries (the new names after create/rename/unlink).
      using dir = await Deno.open(path, { read: true });
      await dir.sync();
    });
  }

  /** Cuts `path` to `size` bytes and fsyncs it. */
  truncate(path: string, size: number): Promise<void> {
    return wrapIo("truncate", path, async () => {
      using file = await Deno.open(path, { write: true });
      await file.truncate(size);
      await file.sync();
    });
  }

  /**
   * Takes an exclusive `flock` on `dir/LOCK` without blocking and writes this
   * process's pid into it so that a refused opener can name the holder. The
   * kernel drops the lock when the process dies, so a crash leaves nothing
   * stale. `flock` belongs to the open file description: a second open in
   * the same process is refused too.
   */
  lockDir(dir: string): Promise<DirLock> {
    const path = joinPath(dir, "LOCK");
    return wrapIo("lock", path, async () => {
      // Not `truncate: true`: that would wipe the holder's pid before we
      // know whether we get the lock.
      const file = await Deno.open(path, { read: true, write: true, create: true });
      let locked = false;
      try {
        locked = await file.tryLock(true);
      } finally {
        if (!locked) file.close();
      }
      if (!locked) {
        let pid: number | undefined;
        try {
          pid = parseLockPid(await Deno.readFile(path));
        } catch {
          pid = undefined;
        }
        throw new DataDirLockedError(dir, pid);
      }
      await file.truncate(0);
      await writeAll(file, new TextEncoder().encode(`${Deno.pid}\n`));
      await file.sync();
      let released = false;
      return {
        release: async (): Promise<void> => {
          if (released) return;
          released = true;
          // Leave the file: removing it would race with a new holder that
          // has opened it but not yet locked it.
          await file.truncate(0).catch(() => {});
          await file.unlock().catch(() => {});
          file.close();
        },
      };
    });
  }
}
