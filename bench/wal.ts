/**
 * Write-ahead log throughput on the runtime that runs it: 100,000 entries of
 * 128 bytes, appended in batches of 64 with one fsync per batch (the group
 * commit the interpreter does), into a fresh temp directory.
 *
 * ```
 * deno run -A bench/wal.ts        bun bench/wal.ts
 * ```
 *
 * Optional arguments: `ENTRIES BATCH ENTRY_BYTES`.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Entry } from "../core/mod.ts";
import type { DurableFs, WriteAheadLog as Wal } from "../adapters/deno/mod.ts";

const [entries = 100_000, batch = 64, entryBytes = 128] = process.argv
  .slice(2)
  .filter((a) => /^\d+$/.test(a))
  .map(Number);

const isDeno = typeof Deno !== "undefined";
const runtime = isDeno ? `deno ${Deno.version.deno}` : `bun ${process.versions.bun}`;
// Each runtime's public adapter entry point, as a user would import it.
const { fs, WriteAheadLog }: { fs: DurableFs; WriteAheadLog: typeof Wal } = isDeno
  ? await import("../adapters/deno/mod.ts").then((m) => ({ fs: new m.DenoFs(), WriteAheadLog: m.WriteAheadLog }))
  : await import("../adapters/bun/mod.ts").then((m) => ({ fs: new m.BunFs(), WriteAheadLog: m.WriteAheadLog }));

const dir = await fsp.mkdtemp(join(tmpdir(), "plank-bench-wal-"));
try {
  const data = new Uint8Array(entryBytes).fill(0x61);
  const { wal } = await WriteAheadLog.open(fs, dir);
  let index = 0;
  let syncs = 0;
  let bytes = 0;
  const start = performance.now();
  while (index < entries) {
    const n = Math.min(batch, entries - index);
    const es: Entry[] = new Array(n);
    for (let i = 0; i < n; i++) {
      es[i] = { term: 1, index: ++index, kind: "command", data, config: undefined };
    }
    await wal.append({ entries: es, hardState: { term: 1, vote: "n1", commit: index - n } });
    await wal.sync();
    syncs++;
    bytes += n * entryBytes;
  }
  const seconds = (performance.now() - start) / 1000;
  await wal.close();

  const reopenStart = performance.now();
  const reopened = await WriteAheadLog.open(fs, dir);
  const replaySeconds = (performance.now() - reopenStart) / 1000;
  await reopened.wal.close();
  if (reopened.recovered.entries.length !== entries) {
    throw new Error(`replay found ${reopened.recovered.entries.length} entries, wrote ${entries}`);
  }

  const fmt = (x: number): string => Math.round(x).toLocaleString("en-US");
  console.log(`wal bench on ${runtime}: ${entries} entries x ${entryBytes} B, batches of ${batch}`);
  console.log(`  ${fmt(entries / seconds)} entries/s`);
  console.log(`  ${fmt(syncs / seconds)} syncs/s`);
  console.log(`  ${(bytes / seconds / 1e6).toFixed(2)} MB/s of payload`);
  console.log(`  replay of ${entries} entries: ${(replaySeconds * 1000).toFixed(0)} ms`);
} finally {
  await fsp.rm(dir, { recursive: true, force: true });
}
