/**
 * Issue 15's live-heap creep on Deno: a 3-node Deno raftd cluster under a
 * steady rate of 1 KiB PUTs, with the leader (node 1) under `--inspect`.
 * Every `--every` seconds it forces a GC through the inspector and prints the
 * leader's used heap after that GC and its VmRSS; at each `--snap` second it
 * writes a heap snapshot (`HeapProfiler.takeHeapSnapshot`) to `--out`.
 * Compare two snapshots with `bench/heap_diff.ts`.
 *
 *   deno run -A bench/heap_soak.ts [--seconds 300] [--rate 300] [--snap 40,160] [--every 30]
 *                                  [--port 6101] [--inspect 9329] [--out /tmp/plank-heap] [--clients 16]
 *                                  [--raftd examples/raftd/main.ts] [--snapshot-entries 2000]
 *
 * `--no-gc` samples without forcing a GC first (RSS as an uninspected leader would have it, give or take the inspector).
 *
 * `--close` sends `connection: close`, so every PUT comes on a new connection (per-connection state shows up fast).
 *
 * `--alloc-profile FROM,TO` samples the leader's allocations (`HeapProfiler.startSampling`, objects collected by
 * GCs included) between those seconds and prints the allocation sites by bytes.
 *
 * `--snap ""` takes no snapshot: a snapshot's serialization inflates the leader's RSS for the rest of the run, so
 * RSS series come from runs without one.
 *
 * Deno only (the leader is a Deno raftd; the load comes from this process's `fetch` over keep-alive).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { raftdDenoFlags } from "../examples/raftd/deno_flags.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "300" },
    rate: { type: "string", default: "300" },
    snap: { type: "string", default: "40,160" },
    every: { type: "string", default: "30" },
    port: { type: "string", default: "6101" },
    inspect: { type: "string", default: "9329" },
    out: { type: "string", default: "/tmp/plank-heap" },
    clients: { type: "string", default: "16" },
    "snapshot-entries": { type: "string", default: "2000" },
    raftd: { type: "string", default: "examples/raftd/main.ts" },
    "alloc-profile": { type: "string", default: "" },
    close: { type: "boolean", default: false },
    "no-gc": { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const SNAPS = values.snap === "" ? [] : values.snap.split(",").map(Number);
const EVERY = Number(values.every);
const PORT = Number(values.port);
const INSPECT = Number(values.inspect);
const OUT = values.out;
const CLIENTS = Number(values.clients);
mkdirSync(OUT, { recursive: true });

const ROOT = new URL("..", import.meta.url).pathname;
const RAFTD = join(ROOT, values.raftd);
const base = mkdtempSync(join(tmpdir(), "plank-heap-"));
const ports = [PORT, PORT + 1, PORT + 2];
const procs: ReturnType<typeof spawn>[] = [];
const T0 = performance.now();
const log = (m: string) => console.log(`[heap ${((performance.now() - T0) / 1000).toFixed(0)}s] ${m}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function start(i: number): void {
  const inspect = i === 0 ? [`--inspect=127.0.0.1:${INSPECT}`] : [];
  const args = [
    "run",
    "-A",
    ...raftdDenoFlags(),
    ...inspect,
    RAFTD,
    ...["-h", "127.0.0.1", "-p", String(ports[i]), "-id", `n${i + 1}`, "-election-timeout", "1000ms"],
    ...["-snapshot-entries", values["snapshot-entries"]],
    ...(i === 0 ? [] : ["-join", `127.0.0.1:${ports[0]}`]),
    join(base, `n${i + 1}`),
  ];
  procs[i] = spawn(Deno.execPath(), args, { stdio: ["ignore", "ignore", i === 0 ? "pipe" : "ignore"] });
  // The inspector's banner goes to stderr; drain it so the pipe never fills.
  procs[i].stderr?.on("data", () => {});
}

async function status(port: number): Promise<{ role: string; members: { suffrage: string }[] } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(500) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
class Inspector {
  #ws!: WebSocket;
  #id = 0;
  #pending = new Map<number, (r: unknown) => void>();
  #chunks: string[] = [];
  static async open(port: number): Promise<Inspector> {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const i = new Inspector();
    i.#ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((r, j) => {
      i.#ws.onopen = r;
      i.#ws.onerror = j;
    });
    i.#ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.method === "HeapProfiler.addHeapSnapshotChunk") i.#chunks.push(m.params.chunk);
      else if (m.id !== undefined) {
        i.#pending.get(m.id)?.(m.error ? { error: m.error } : m.result);
        i.#pending.delete(m.id);
      }
    };
    return i;
  }
  // deno-lint-ignore no-explicit-any -- CDP results are untyped JSON, read field by field here
  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = ++this.#id;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((r) => this.#pending.set(id, r));
  }
  async snapshot(file: string): Promise<void> {
    this.#chunks = [];
    await this.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false, captureNumericValue: false });
    writeFileSync(file, this.#chunks.join(""));
    this.#chunks = [];
  }
  close(): void {
    this.#ws.close();
  }
}

function rssMiB(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Allocation sites by sampled bytes: the allocating frame, and the first frame of plank's own code above it. */
function printAllocations(profile: { head: SamplingNode }, ops: number): void {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: SamplingNode, ownAbove: string) => {
    const f = n.callFrame;
    const here = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(node_modules|wt-[^/]+)\//, "")}:${
      f.lineNumber + 1
    }`;
    // The nearest frame of the repository's own code (not a dependency, not the runtime) at or above this one.
    const own = f.url.startsWith("file://") && !f.url.includes("/node_modules/") ? here : ownAbove;
    if (n.selfSize > 0) {
      const key = `${here}  <=  ${own}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, own);
  };
  walk(profile.head, "(none)");
  log(
    `allocations sampled: ${(total / 2 ** 20).toFixed(1)} MiB over ${ops} puts (${
      (total / Math.max(ops, 1)).toFixed(0)
    } B/put)`,
  );
  for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`  ${(v / Math.max(ops, 1)).toFixed(0).padStart(6)} B/put  ${k}`);
  }
}

// ------------------------------------------------------------------ run

let stop = false;
let puts = 0;
let errors = 0;
let profPuts = 0;
try {
  start(0);
  await until(async () => (await status(ports[0]))?.role === "leader", 30_000, "n1 leads");
  start(1);
  start(2);
  await until(
    async () => (await status(ports[0]))?.members.filter((m) => m.suffrage === "voter").length === 3,
    60_000,
    "three voters",
  );
  log(`cluster up (${base}); leader pid ${procs[0].pid}, inspector ${INSPECT}`);
  const insp = await Inspector.open(INSPECT);
  await insp.send("HeapProfiler.enable");

  // Open-loop-ish load: CLIENTS workers share a token schedule of RATE puts/s.
  const value = "x".repeat(1024);
  const t0 = performance.now();
  let issued = 0;
  const worker = async (w: number) => {
    while (!stop) {
      const due = t0 + (issued / RATE) * 1000;
      const now = performance.now();
      if (due > now) {
        await sleep(due - now);
        continue;
      }
      const n = issued++;
      try {
        const res = await fetch(`http://127.0.0.1:${ports[0]}/db/k${n % 1000}`, {
          method: "PUT",
          body: value,
          headers: values.close ? { connection: "close" } : {},
        });
        await res.arrayBuffer();
        if (res.ok) puts++;
        else errors++;
      } catch {
        errors++;
        await sleep(50);
      }
      void w;
    }
  };
  const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));

  const [profFrom, profTo] = values["alloc-profile"] === "" ? [-1, -1] : values["alloc-profile"].split(",").map(Number);
  const snaps = [...SNAPS].sort((a, b) => a - b);
  const rows: string[] = [];
  for (let s = 0; s <= SECONDS; s++) {
    const at = t0 + s * 1000;
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
    if (s % EVERY === 0 || snaps[0] === s) {
      if (!values["no-gc"]) await insp.send("HeapProfiler.collectGarbage");
      const u = await insp.send("Runtime.getHeapUsage");
      const line = `t=${s}s puts=${puts} errors=${errors} ${values["no-gc"] ? "usedHeap" : "usedHeapAfterGC"}=${
        (u.usedSize / 2 ** 20).toFixed(2)
      }MiB rss=${rssMiB(procs[0].pid!).toFixed(1)}MiB`;
      rows.push(line);
      log(line);
    }
    if (s === profFrom) {
      await insp.send("HeapProfiler.startSampling", {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      profPuts = puts;
    }
    if (s === profTo) {
      const { profile } = await insp.send("HeapProfiler.stopSampling");
      writeFileSync(join(OUT, "alloc.heapprofile"), JSON.stringify(profile));
      printAllocations(profile, puts - profPuts);
    }
    if (snaps[0] === s) {
      snaps.shift();
      const file = join(OUT, `leader-${s}s.heapsnapshot`);
      await insp.snapshot(file);
      log(`snapshot ${file}`);
    }
  }
  stop = true;
  await Promise.all(workers);
  insp.close();
  writeFileSync(join(OUT, "samples.txt"), rows.join("\n") + "\n");
  log(`done: ${puts} puts, ${errors} errors`);
} finally {
  stop = true;
  for (const p of procs) p?.kill("SIGTERM");
  await sleep(1000);
  for (const p of procs) if (p && p.exitCode === null) p.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
}
Deno.exit(0);
