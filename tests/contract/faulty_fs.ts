/**
 * A {@link DurableFs} that fails on demand: wraps a real one and makes every
 * write or every fsync throw (as `EIO` or `ENOSPC` would) once told to, and
 * counts the calls, so tests can check that a failed fsync is never retried.
 *
 * @module
 */

import {
  type AppendFile,
  type DirLock,
  type DurableFs,
  type OverwriteFile,
  type ReadFile,
  StorageError,
} from "../../adapters/storage/fs.ts";

/** Which operations fail, with which errno code. */
export interface Faults {
  /** Every data write (append, in-place write, whole-file write) fails with this code. */
  write?: string;
  /** Every fsync (of a file or a directory) fails with this code. */
  sync?: string;
}

function fault(code: string, operation: string, path: string): StorageError {
  const cause = Object.assign(new Error(`${code}: injected failure, ${operation} '${path}'`), { code });
  return new StorageError(operation, path, cause);
}

/** A file system whose writes or fsyncs fail once {@link FaultyFs.faults} says so. */
export class FaultyFs implements DurableFs {
  /** What fails now; change it at any time. */
  faults: Faults = {};
  /** Calls made so far, failed ones included. */
  readonly calls = { write: 0, sync: 0 };

  /** @param inner the file system that does the work */
  constructor(private readonly inner: DurableFs) {}

  private write(path: string): void {
    this.calls.write++;
    if (this.faults.write !== undefined) throw fault(this.faults.write, "write", path);
  }

  private sync(path: string): void {
    this.calls.sync++;
    if (this.faults.sync !== undefined) throw fault(this.faults.sync, "fsync", path);
  }

  /** Delegates. */
  mkdirp(path: string): Promise<void> {
    return this.inner.mkdirp(path);
  }
  /** Delegates. */
  readDir(path: string): Promise<string[]> {
    return this.inner.readDir(path);
  }
  /** Delegates. */
  readFile(path: string): Promise<Uint8Array> {
    return this.inner.readFile(path);
  }
  /** Delegates. */
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
  /** An append file whose writes and fsyncs go through the faults. */
  async openAppend(path: string): Promise<AppendFile> {
    const f = await this.inner.openAppend(path);
    return {
      write: async (bytes) => {
        this.write(path);
        await f.write(bytes);
      },
      sync: async () => {
        this.sync(path);
        await f.sync();
      },
      close: () => f.close(),
    };
  }
  /** Delegates. */
  openRead(path: string): Promise<ReadFile> {
    return this.inner.openRead(path);
  }
  /** An in-place file whose writes go through the faults. */
  async openOverwrite(path: string): Promise<OverwriteFile> {
    const f = await this.inner.openOverwrite(path);
    return {
      writeAt: async (position, bytes) => {
        this.write(path);
        await f.writeAt(position, bytes);
      },
      close: () => f.close(),
    };
  }
  /** Goes through the write and sync faults. */
  async writeFileSynced(path: string, bytes: Uint8Array): Promise<void> {
    this.write(path);
    this.sync(path);
    await this.inner.writeFileSynced(path, bytes);
  }
  /** Delegates. */
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  /** Delegates. */
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  /** Goes through the sync faults. */
  async syncDir(path: string): Promise<void> {
    this.sync(path);
    await this.inner.syncDir(path);
  }
  /** Goes through the write and sync faults. */
  async truncate(path: string, size: number): Promise<void> {
    this.write(path);
    this.sync(path);
    await this.inner.truncate(path, size);
  }
  /** Delegates. */
  lockDir(dir: string): Promise<DirLock> {
    return this.inner.lockDir(dir);
  }
}
