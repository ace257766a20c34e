/**
 * Child process for the lock contract tests: opens the write-ahead log in the
 * directory given as the first argument with the runtime's file-system
 * adapter, prints `ready`, and holds it until killed.
 *
 * Run as `deno run -A tests/contract/hold_lock.ts DIR` or
 * `bun tests/contract/hold_lock.ts DIR`.
 *
 * @module
 */

import process from "node:process";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { WriteAheadLog } from "../../adapters/storage/wal.ts";

const dir = process.argv[process.argv.length - 1];
const fs: DurableFs = typeof Deno !== "undefined"
  ? new (await import("../../adapters/deno/fs.ts")).DenoFs()
  : new (await import("../../adapters/bun/fs.ts")).BunFs();
const { wal } = await WriteAheadLog.open(fs, dir);
process.stdout.write("ready\n");
// Hold the lock until killed. The timer keeps `wal` reachable: if it were
// collected, its file handles (and on Deno the flock) would go with it.
setInterval(() => void wal.lastIndex, 60_000);
