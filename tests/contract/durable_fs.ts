/**
 * Contract tests every {@link DurableFs} must pass, whatever the runtime.
 * A runner calls {@link durableFsContract} with its implementation.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DataDirLockedError, type DurableFs, joinPath, StorageError } from "../../adapters/storage/fs.ts";

/** A child process of the same runtime that holds a data directory's lock until stopped. */
export interface LockHolder {
  /** The child's process id. */
  readonly pid: number;
  /** Kills the child (SIGKILL, as a crash would) and waits until it is gone. */
  kill(): Promise<void>;
}

/** Options shared by the contract suites. */
export interface ContractOptions {
  /** Skip the whole suite (e.g. on the other runtime). */
  readonly skip?: boolean;
  /** Starts a child process that opens the write-ahead log in `dir` and holds it; resolves once it holds it. */
  readonly spawnLockHolder?: (dir: string) => Promise<LockHolder>;
}

/** Makes a fresh temp dir, runs `f` with it and removes it afterwards. */
export async function withTmp(
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
  f: (fs: DurableFs, dir: string) => Promise<void>,
): Promise<void> {
  const fs = makeFs();
  const dir = await tmpDir();
  try {
    await f(fs, dir);
  } finally {
    await fs.remove(dir);
  }
}

/** A `test` registrar whose tests each get a file system and a fresh temp dir (see {@link withTmp}). */
export function fsTest(
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
): (title: string, f: (fs: DurableFs, dir: string) => Promise<void>) => void {
  return (title, f) => test(title, () => withTmp(makeFs, tmpDir, f));
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Registers the {@link DurableFs} contract suite. */
export function durableFsContract(
  name: string,
  makeFs: () => DurableFs,
  tmpDir: () => Promise<string>,
  options: ContractOptions = {},
): void {
  const t = fsTest(makeFs, tmpDir);

  describe(`DurableFs contract: ${name}`, { skip: options.skip }, () => {
    t("mkdirp, writeFileSynced, readFile, readDir, exists", async (fs, dir) => {
      const sub = joinPath(dir, "a", "b");
      await fs.mkdirp(sub);
      await fs.mkdirp(sub); // idempotent
      await fs.writeFileSynced(joinPath(sub, "f"), bytes("hello"));
      await fs.writeFileSynced(joinPath(sub, "f"), bytes("hi")); // replaces
      assert.equal(text(await fs.readFile(joinPath(sub, "f"))), "hi");
      assert.deepEqual(await fs.readDir(sub), ["f"]);
      assert.equal(await fs.exists(joinPath(sub, "f")), true);
      assert.equal(await fs.exists(joinPath(sub, "g")), false);
      await fs.syncDir(sub);
    });

    t("openAppend appends across opens; truncate cuts", async (fs, dir) => {
      const p = joinPath(dir, "log");
      let f = await fs.openAppend(p);
      await f.write(bytes("abc"));
      await f.write(bytes("def"));
      await f.sync();
      await f.close();
      f = await fs.openAppend(p);
      await f.write(bytes("ghi"));
      await f.close();
      assert.equal(text(await fs.readFile(p)), "abcdefghi");
      await fs.truncate(p, 4);
      assert.equal(text(await fs.readFile(p)), "abcd");
    });

    t("openRead reads at positions and reports size", async (fs, dir) => {
      const p = joinPath(dir, "r");
      await fs.writeFileSynced(p, bytes("0123456789"));
      const f = await fs.openRead(p);
      try {
        assert.equal(await f.size(), 10);
        assert.equal(text(await f.readAt(3, 4)), "3456");
        assert.equal(text(await f.readAt(8, 5)), "89");
        assert.equal((await f.readAt(10, 5)).length, 0);
      } finally {
        await f.close();
      }
    });

    t("rename replaces the target; remove deletes files and trees, missing is fine", async (fs, dir) => {
      const a = joinPath(dir, "a");
      const b = joinPath(dir, "b");
      await fs.writeFileSynced(a, bytes("new"));
      await fs.writeFileSynced(b, bytes("old"));
      await fs.rename(a, b);
      await fs.syncDir(dir);
      assert.equal(text(await fs.readFile(b)), "new");
      assert.equal(await fs.exists(a), false);
      await fs.remove(b);
      await fs.remove(b);
      await fs.mkdirp(joinPath(dir, "t", "u"));
      await fs.writeFileSynced(joinPath(dir, "t", "u", "x"), bytes("x"));
      await fs.remove(joinPath(dir, "t"));
      assert.deepEqual(await fs.readDir(dir), []);
    });

    t("I/O failures are StorageError naming the operation and path", async (fs, dir) => {
      const missing = joinPath(dir, "nope");
      const err = await fs.readFile(missing).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof StorageError, `expected StorageError, got ${err}`);
      assert.equal(err._tag, "StorageError");
      assert.equal(err.path, missing);
      assert.match(err.message, /nope/);
    });

    t("lockDir: a second lock in the same process is refused until released", async (fs, dir) => {
      const lock = await fs.lockDir(dir);
      const err = await fs.lockDir(dir).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof DataDirLockedError, `expected DataDirLockedError, got ${err}`);
      assert.equal(err._tag, "DataDirLockedError");
      assert.match(err.message, new RegExp(`data directory ${dir} is in use by another plank process`));
      await lock.release();
      await lock.release();
      const again = await fs.lockDir(dir);
      await again.release();
    });

    const spawn = options.spawnLockHolder;
    test("lockDir: a directory held by another process is refused, and free once it dies", {
      skip: spawn === undefined,
    }, () =>
      withTmp(makeFs, tmpDir, async (fs, dir) => {
        const holder = await spawn!(dir);
        try {
          const err = await fs.lockDir(dir).then(
            async (l) => {
              await l.release();
              return undefined;
            },
            (e: unknown) => e,
          );
          assert.ok(err instanceof DataDirLockedError, `expected DataDirLockedError, got ${err}`);
          assert.equal(err.pid, holder.pid);
          assert.equal(err.message, `data directory ${dir} is in use by another plank process (pid ${holder.pid})`);
        } finally {
          await holder.kill();
        }
        // A crashed holder must not lock the directory forever.
        const lock = await fs.lockDir(dir);
        await lock.release();
      }));
  });
}
