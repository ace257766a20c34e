/**
 * The small file-system port the write-ahead log and the snapshot store are
 * written against, and the typed errors of durable storage.
 *
 * Each runtime supplies one implementation (`DenoFs`, `BunFs`); the storage
 * logic above it is written once. Every method that promises durability says
 * so: nothing else fsyncs.
 *
 * @module
 */

/** A file opened for appending. Writes go to the end; nothing is durable until {@link AppendFile.sync}. */
export interface AppendFile {
  /** Appends all of `bytes` (looping over short writes). */
  write(bytes: Uint8Array): Promise<void>;
  /** Makes everything written so far durable (fsync). */
  sync(): Promise<void>;
  /** Closes the file without syncing. */
  close(): Promise<void>;
}

/** A file opened for positional reads. */
export interface ReadFile {
  /** The file's current size in bytes. */
  size(): Promise<number>;
  /** Up to `length` bytes starting at `position`; fewer only at end of file. */
  readAt(position: number, length: number): Promise<Uint8Array>;
  /** Closes the file. */
  close(): Promise<void>;
}

/**
 * A small file rewritten in place, by {@link DurableFs.openOverwrite}. Its
 * size never changes after creation, so a rewrite touches only the bytes it
 * names (a crash cannot leave the file shorter).
 */
export interface OverwriteFile {
  /** Writes all of `bytes` at `position`, over what was there. Not durable until the system flushes it. */
  writeAt(position: number, bytes: Uint8Array): Promise<void>;
  /** Closes the file without syncing. */
  close(): Promise<void>;
}

/** An exclusive hold on a data directory, taken by {@link DurableFs.lockDir}. */
export interface DirLock {
  /** Gives the directory up. Idempotent. */
  release(): Promise<void>;
}

/**
 * What durable storage needs from a file system. Paths are plain strings
 * joined with {@link joinPath}. Failures surface as {@link StorageError}
 * (or {@link DataDirLockedError} from `lockDir`).
 */
export interface DurableFs {
  /** Creates `path` and its missing parents; no error if it exists. */
  mkdirp(path: string): Promise<void>;
  /** Names (not paths) of the entries of directory `path`, in no particular order. */
  readDir(path: string): Promise<string[]>;
  /** The whole content of the file at `path`. */
  readFile(path: string): Promise<Uint8Array>;
  /** Whether anything exists at `path`. */
  exists(path: string): Promise<boolean>;
  /** Opens `path` for appending, creating it if missing. */
  openAppend(path: string): Promise<AppendFile>;
  /** Opens an existing file for positional reads. */
  openRead(path: string): Promise<ReadFile>;
  /** Opens an existing file for in-place writes (no append, no truncation). */
  openOverwrite(path: string): Promise<OverwriteFile>;
  /** Creates or replaces the file at `path` with `bytes` and fsyncs it (not its directory). */
  writeFileSynced(path: string, bytes: Uint8Array): Promise<void>;
  /** Renames `from` to `to`, replacing `to` atomically. Durable only after {@link DurableFs.syncDir} of the parent. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a directory tree; no error if nothing is there. */
  remove(path: string): Promise<void>;
  /** Fsyncs directory `path`, making creations, renames and removals in it durable. */
  syncDir(path: string): Promise<void>;
  /** Cuts the file at `path` to `size` bytes and fsyncs it. */
  truncate(path: string, size: number): Promise<void>;
  /**
   * Takes `dir` for this process alone, through a `LOCK` file inside it.
   * Fails with {@link DataDirLockedError} if another holder (another process,
   * or another open in this one) has it.
   */
  lockDir(dir: string): Promise<DirLock>;
}

/** Joins path segments with `/`, dropping empty segments and duplicate separators. */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined.replace(/\/{2,}/g, "/");
}

/** Another process (or another open in this one) holds the data directory. */
export class DataDirLockedError extends Error {
  /** Discriminator. */
  readonly _tag = "DataDirLockedError" as const;
  /** The locked directory. */
  readonly dir: string;
  /** The holder's process id, when it could be read. */
  readonly pid: number | undefined;

  /**
   * Refusal to open `dir`.
   *
   * @param dir the locked directory
   * @param pid the holder's pid, if known
   */
  constructor(dir: string, pid?: number) {
    super(
      `data directory ${dir} is in use by another plank process` +
        (pid !== undefined ? ` (pid ${pid})` : ""),
    );
    this.name = "DataDirLockedError";
    this.dir = dir;
    this.pid = pid;
  }
}

/** A log or snapshot file holds bytes that are not a valid record and cannot be a torn tail. */
export class CorruptLogError extends Error {
  /** Discriminator. */
  readonly _tag = "CorruptLogError" as const;
  /** The damaged file. */
  readonly file: string;
  /** Byte offset of the first bad record within `file`. */
  readonly offset: number;
  /** What is wrong there. */
  readonly reason: string;

  /**
   * Damage found in `file`.
   *
   * @param file the damaged file
   * @param offset byte offset of the damage
   * @param reason what is wrong
   */
  constructor(file: string, offset: number, reason: string) {
    super(`corrupt data in ${file} at byte offset ${offset}: ${reason}`);
    this.name = "CorruptLogError";
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/** An I/O operation failed; wraps the runtime's error with what was being done to which path. */
export class StorageError extends Error {
  /** Discriminator. */
  readonly _tag = "StorageError" as const;
  /** The operation that failed, e.g. `"rename"`. */
  readonly operation: string;
  /** The path it was applied to. */
  readonly path: string;

  /**
   * An I/O failure.
   *
   * @param operation what was being done
   * @param path to which path
   * @param cause the underlying error
   */
  constructor(operation: string, path: string, cause: unknown) {
    super(
      `${operation} ${path} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = "StorageError";
    this.operation = operation;
    this.path = path;
  }
}

/**
 * Runs `f`, turning any error that is not already one of ours into a
 * {@link StorageError} for `operation` on `path`.
 */
export async function wrapIo<A>(operation: string, path: string, f: () => Promise<A>): Promise<A> {
  try {
    return await f();
  } catch (e) {
    throw ioError(operation, path, e);
  }
}

/** {@link wrapIo} for a blocking call: `f` runs now; its result or error comes back as a Promise. */
export function wrapIoNow<A>(operation: string, path: string, f: () => A): Promise<A> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(ioError(operation, path, e));
  }
}

function ioError(operation: string, path: string, e: unknown): unknown {
  if (e instanceof StorageError || e instanceof DataDirLockedError || e instanceof CorruptLogError) return e;
  return new StorageError(operation, path, e);
}

/**
 * Removes the `*.tmp` files in `dir` (what a crash left of a write that was
 * never renamed into place), making the removal durable if there were any.
 */
export async function removeTempFiles(fs: DurableFs, dir: string): Promise<void> {
  let removed = false;
  for (const name of await fs.readDir(dir)) {
    if (name.endsWith(".tmp")) {
      await fs.remove(joinPath(dir, name));
      removed = true;
    }
  }
  if (removed) await fs.syncDir(dir);
}

/** Parses the pid a lock holder wrote into its `LOCK` file, if the text is one. */
export function parseLockPid(bytes: Uint8Array): number | undefined {
  const text = new TextDecoder().decode(bytes).trim();
  if (!/^\d+$/.test(text)) return undefined;
  const pid = Number(text);
  return pid > 0 ? pid : undefined;
}
