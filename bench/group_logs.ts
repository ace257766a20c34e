/**
 * Storage for many groups per process, the two layouts issue 16 names, side
 * by side on the runtime that runs it: one multi-group write-ahead log whose
 * records carry the group (`MultiGroupLog`: one write and one fsync per loop
 * iteration, whatever the number of groups), against one `WriteAheadLog` per
 * group synced together (every active group's append, then all their fsyncs
 * at once with `Promise.all`, so the kernel may merge the journal commits).
 *
 * ```
 * deno run -A bench/group_logs.ts [--groups 16,256] [--active all|4] [--seconds 5] [--size 128]
 * bun bench/group_logs.ts [same flags]
 * ```
 *
 * Each iteration appends one `--size`-byte entry to each active group
 * (`--active all`: every group, as under load spread over many keys; `4`:
 * four groups, the rest idle) and makes it durable, as the host loop does
 * once per iteration. Prints iterations/s, entries/s and fsyncs per
 * iteration for each layout.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Entry, GroupId } from "../core/mod.ts";
import type { DurableFs, WriteAheadLog as Wal } from "../adapters/deno/mod.ts";
import { MultiGroupLog } from "../adapters/storage/multi_log.ts";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const groupCounts = flag("groups", "16,256").split(",").map(Number);
const activeFlag = flag("active", "all");
const seconds = Number(flag("seconds", "5"));
const size = Number(flag("size", "128"));

const isDeno = typeof Deno !== "undefined";
const runtime = isDeno ? `deno ${Deno.version.deno}` : `bun ${process.versions.bun}`;
const { fs, WriteAheadLog }: { fs: DurableFs; WriteAheadLog: typeof Wal } = isDeno
  ? await import("../adapters/deno/mod.ts").then((m) => ({ fs: new m.DenoFs(), WriteAheadLog: m.WriteAheadLog }))
  : await import("../adapters/bun/mod.ts").then((m) => ({ fs: new m.BunFs(), WriteAheadLog: m.WriteAheadLog }));

const data = new Uint8Array(size).fill(0x61);
const entry = (index: number): Entry => ({ term: 1, index, kind: "command", data, config: undefined });

/** Runs `iteration` for `seconds`; iterations/s. */
async function timed(iteration: () => Promise<void>): Promise<{ iterations: number; perSec: number }> {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let iterations = 0;
  while (performance.now() < end) {
    await iteration();
    iterations++;
  }
  return { iterations, perSec: iterations / ((performance.now() - start) / 1000) };
}

async function shared(groups: GroupId[], active: GroupId[]) {
  const dir = await fsp.mkdtemp(join(tmpdir(), "plank-bench-glog-"));
  try {
    const log = await MultiGroupLog.open(fs, dir);
    const next = new Map(groups.map((g) => [g, 1]));
    return await timed(async () => {
      await log.write(active.map((group) => {
        const i = next.get(group)!;
        next.set(group, i + 1);
        return { group, batch: { entries: [entry(i)], hardState: { term: 1, vote: "n1", commit: i - 1 } } };
      }));
      await log.sync();
    }).finally(() => log.close());
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function separate(groups: GroupId[], active: GroupId[]) {
  const root = await fsp.mkdtemp(join(tmpdir(), "plank-bench-glog-"));
  try {
    const wals = new Map<GroupId, Wal>();
    for (const g of groups) {
      const dir = join(root, String(g));
      await fsp.mkdir(dir);
      wals.set(g, (await WriteAheadLog.open(fs, dir)).wal);
    }
    const next = new Map(groups.map((g) => [g, 1]));
    return await timed(async () => {
      await Promise.all(active.map((g) => {
        const i = next.get(g)!;
        next.set(g, i + 1);
        return wals.get(g)!.append({ entries: [entry(i)], hardState: { term: 1, vote: "n1", commit: i - 1 } });
      }));
      await Promise.all(active.map((g) => wals.get(g)!.sync()));
    }).finally(() => Promise.all([...wals.values()].map((w) => w.close())));
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

console.log(`${runtime}: ${seconds} s per case, one ${size}-byte entry per active group per iteration`);
for (const n of groupCounts) {
  const groups = Array.from({ length: n }, (_, i) => i + 1);
  const active = activeFlag === "all" ? groups : groups.slice(0, Number(activeFlag));
  for (
    const [name, run, fsyncs] of [
      ["one multi-group log, 1 fsync/iteration", shared, 1],
      [`one log per group, ${active.length} fsyncs/iteration together`, separate, active.length],
    ] as const
  ) {
    const r = await run(groups, active);
    console.log(
      `${String(n).padStart(5)} groups, ${String(active.length).padStart(4)} active, ${name}: ` +
        `${r.perSec.toFixed(0)} iterations/s, ${(r.perSec * active.length).toFixed(0)} entries/s, ` +
        `${fsyncs} fsync(s) per iteration`,
    );
  }
}
