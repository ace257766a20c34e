/**
 * bench/compare: plank side by side with its peers (etcd/raft and etcd 3.4),
 * in one session, printed as one markdown table with the ratio plank / peer.
 *
 *   deno run -A bench/compare.ts [--runtimes deno,bun] [--seconds 10] [--failovers 10] [--only core,e2e,...]
 *   bun bench/compare.ts [...same flags]
 *
 * Every row runs as child processes: plank's side under each runtime asked
 * for (default: the one running this script), the peer's side through
 * `../shared/peers/run.sh` (override with `PLANK_PEERS=/path/run.sh`). A peer
 * that is not installed is skipped with a one-line reason, never estimated.
 *
 * Rows: core (in-process 3-voter pipeline), end to end (3-node raftd with
 * fsync vs a 3-member etcd, the same Go HTTP load generator, 64 clients,
 * 128-byte values), failover (SIGKILL of the leader to the first successful
 * write, median; etcd restarted by the peers' etcd-cluster.sh), recovery and
 * memory (below). Sections: `--only core,e2e,failover,recovery,memory,security,soak,multi`.
 *
 * multi (bench/multi.ts, no peer figure): 3 processes of plank hosts x
 * `--multi-groups` (1,16,256,1024) groups with leaders balanced, 64 and
 * 1,024 clients: writes/s and p99; 16 groups / 1 group at 64 clients (issue
 * 16's target: >= 1.5x); the same 16 groups as 16 separate single-group
 * nodes per process (what sharing buys); `--multi-idle-groups` (10,000)
 * quiescent groups: CPU % of a core, RSS per group and messages/s of the
 * busiest process.
 *
 * recovery / memory (etcd started here with its own flags and ports, not by
 * run.sh; kv-load run directly):
 * - restart with `--entries` (10^6) entries: plank = `bench/recovery.ts`, one
 *   voter, WAL with fsync, snapshots off, 128-byte entries written with 4,096
 *   proposals in flight; etcd = one member, `--snapshot-count` above the
 *   entries, 10^6 puts of 128 B over gRPC (kv-load, 256 clients). Both
 *   SIGKILLed and restarted, timed from spawn to ready (plank: leader, a
 *   linearizable read index served, all applied; etcd: first linearizable
 *   range through its gateway); both with a 100 ms election timeout.
 * - bytes per log entry held: (VmRSS after that restart - VmRSS after the
 *   same restart with an empty log) / entries, read 1 s after ready.
 * - wiped follower catch-up: 3 nodes, compaction every 10,000 entries (5,000
 *   kept), `--catchup-mib` MiB of 1 KiB values over as many keys; a follower
 *   is SIGKILLed, removed, its data wiped and it comes back under a new id
 *   (raftd: `-join`; etcd: member add, `--initial-cluster-state existing`);
 *   spawn to applied >= the leader's index (etcd: its /metrics), median of
 *   `--catchups` (3) rounds on one loaded cluster; MB/s of the values loaded.
 * - steady-state RSS: the leader's VmRSS every second during
 *   `--memory-seconds` of the e2e put load (raftd: -snapshot-entries 10000;
 *   etcd: --snapshot-count 10000), mean of the second half.
 *
 * - security: bench/raftd.ts's writes (its own client) with plaintext, mTLS
 *   (TCP, and HTTP/2 as `mtls-http`) and shared-secret peers; no peer figure
 *   (etcd runs plaintext peers here).
 * - soak: the leader's VmRSS every second under `--soak-minutes` (default 10)
 *   of 1 KiB puts, snapshots every 2,000 entries on both sides; the row is the
 *   least-squares slope after the first minute, and the last sample.
 *
 * More flags: `--entries 1000000 --catchup-mib 32 --memory-seconds 20 --soak-minutes 10 --port-base 4701`;
 * `--raftd source` runs raftd from `examples/raftd/main.ts` instead of the bundles this run builds first
 * (`scripts/bundle_raftd.mjs`, the default `--raftd bundle`).
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { raftdDenoFlags } from "../examples/raftd/deno_flags.ts";
import { flag } from "./flags.ts";

type Runtime = "deno" | "bun";

const ROOT = fileURLToPath(new URL("..", import.meta.url).href);
const RAFTD = join(ROOT, "examples/raftd/main.ts");
/**
 * `--raftd bundle` (the default): raftd runs as one pre-built module per runtime, built at the start of this run by
 * `scripts/bundle_raftd.mjs` (as a deployment would run it: ~400 fewer modules to load at every start); `--raftd
 * source`: from `examples/raftd/main.ts`.
 */
const RAFTD_FROM = flag("raftd", "bundle");
if (RAFTD_FROM !== "bundle" && RAFTD_FROM !== "source") {
  console.error(`--raftd ${RAFTD_FROM}: expected bundle or source`);
  process.exit(2);
}
const CORE = join(ROOT, "bench/core.ts");
const RECOVERY = join(ROOT, "bench/recovery.ts");
const MULTI = join(ROOT, "bench/multi.ts");
/** Groups of the multi-raft quiescence row (issue 16's target: 10,000 idle groups). */
const MULTI_IDLE_GROUPS = Number(flag("multi-idle-groups", "10000"));
/** Group counts of the multi-raft load rows. */
const MULTI_GROUPS = flag("multi-groups", "1,16,256,1024").split(",").map(Number);
const PEERS = process.env.PLANK_PEERS ?? join(ROOT, "../shared/peers/run.sh");
const PEERS_BIN = process.env.PEERS_BIN ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "plank-peers");

const CURRENT: Runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
const RUNTIMES = flag("runtimes", CURRENT).split(",").filter((r): r is Runtime => r === "deno" || r === "bun");
const SECONDS = Number(flag("seconds", "10"));
const FAILOVERS = Number(flag("failovers", "10"));
const ONLY = new Set(flag("only", "core,e2e,failover,recovery,memory,security,soak,multi").split(","));
/** Entries in the log of the restart and bytes-per-entry rows. */
const ENTRIES = Number(flag("entries", "1000000"));
/** Seconds of write load the steady-state RSS row samples. */
const MEMORY_SECONDS = Number(flag("memory-seconds", "20"));
/** Minutes of the soak rows' write load (1 KiB values, snapshots every SOAK_SNAPSHOT_ENTRIES). */
const SOAK_MINUTES = Number(flag("soak-minutes", "10"));
/** Log compaction of the soak rows on both sides, as in issue 15's observation of Deno's RSS growth. */
const SOAK_SNAPSHOT_ENTRIES = 2000;
/** State the snapshot catch-up row loads before it wipes a follower: this many MiB of 1 KiB values. */
const CATCHUP_MIB = Number(flag("catchup-mib", "32"));
/** Wipe-and-rejoin rounds of the catch-up row on one loaded cluster; the row is their median. */
const CATCHUPS = Number(flag("catchups", "3"));
/** Raft log compaction on both sides of the memory and catch-up rows: raftd's default -snapshot-entries. */
const SNAPSHOT_ENTRIES = 10_000;
/**
 * Election timeout of the restart rows' single voter, on both sides (heartbeat a tenth): a lone voter
 * waits one randomized timeout, [T, 2T), before it leads, and that wait would otherwise swamp the replay.
 */
const RESTART_ELECTION_MS = 100;
const ELECTION_MS = 1000; // etcd 3.4's default --election-timeout
const CLIENTS = 64;
const SIZE = 128;
/** Keys a read run writes (sequentially, one client) before it starts: few, so setup stays short; same on both sides. */
const READ_KEYS = 100;

/** How to start a script under a runtime (this process's binary when it is that runtime). */
function runtimeCommand(rt: Runtime, script: string): { cmd: string; args: string[] } {
  const local = join(ROOT, "node_modules/.bin", rt);
  if (rt === "deno") {
    const g = globalThis as { Deno?: { execPath(): string } };
    const cmd = CURRENT === "deno" ? g.Deno!.execPath() : existsSync(local) ? local : "deno";
    // raftd runs with its own Deno flags (examples/raftd/deno_flags.json), as `deno task raftd` starts it.
    const raftd = script === RAFTD;
    return { cmd, args: ["run", "-A", ...(raftd ? raftdDenoFlags() : []), raftd ? raftdEntry(rt) : script] };
  }
  return {
    cmd: CURRENT === "bun" ? process.execPath : existsSync(local) ? local : "bun",
    args: [script === RAFTD ? raftdEntry(rt) : script],
  };
}

/** raftd's entry module for `rt`: the bundle built at the start of this run, or the source. */
function raftdEntry(rt: Runtime): string {
  return RAFTD_FROM === "bundle" ? join(ROOT, "build", "raftd", `${rt}.js`) : RAFTD;
}

/** Builds raftd's bundles for the runtimes of this run (`--raftd bundle`), so no row runs a stale one. */
function bundleRaftd(): void {
  if (RAFTD_FROM !== "bundle") return;
  const r = spawnSync("node", [join(ROOT, "scripts/bundle_raftd.mjs"), ...RUNTIMES], {
    stdio: ["ignore", "ignore", 2],
  });
  if (r.status !== 0) {
    console.error(
      `bundling raftd failed (${r.error?.message ?? `exit ${r.status}`}); --raftd source runs it unbundled`,
    );
    process.exit(1);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface RunResult {
  readonly code: number | null;
  readonly out: string;
}

/** Runs a command to completion, collecting stdout and stderr. */
function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: -1, out: String(e) });
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** One figure, or the one-line reason it is missing. */
type Figure = number | string;

interface Row {
  readonly name: string;
  readonly plank: Partial<Record<Runtime, Figure>>;
  peer: Figure;
  readonly digits: number;
}

const rows: Row[] = [];
function row(name: string, digits = 0): Row {
  const r: Row = { name, plank: {}, peer: "not measured yet", digits };
  rows.push(r);
  return r;
}

const T0 = performance.now();
function log(msg: string): void {
  process.stderr.write(`[compare ${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
}

// ---------------------------------------------------------------- peers

/** Why the peers cannot run here, or undefined when they can. */
async function peerMissing(need: "raft" | "load" | "etcd"): Promise<string | undefined> {
  if (!existsSync(PEERS)) return `peer skipped: ${PEERS} not found`;
  const bin = need === "raft" ? "etcdraft-bench" : "kv-load";
  if (!existsSync(join(PEERS_BIN, bin))) return `peer skipped: ${bin} not built (run \`bash ${PEERS} setup\`)`;
  if (need === "etcd") {
    const r = await run("bash", ["-c", "command -v etcd"]);
    if (r.code !== 0) return "peer skipped: etcd not installed (run.sh setup)";
  }
  return undefined;
}

interface LoadFigures {
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** Parses kv-load / etcdraft-bench's one line: `...: N ops/s p50=Xms p99=Yms`. */
function parseLoad(out: string): LoadFigures | string {
  const m = out.match(/([\d.]+) (?:ops|entries)\/s\s+p50=([\d.]+)ms p99=([\d.]+)ms/);
  if (!m) {
    const lines = out.trim().split("\n");
    const why = lines.find((l) => l.startsWith("panic:")) ?? lines.slice(-1)[0] ?? "no output";
    return `failed: ${why.slice(0, 120)}`;
  }
  const e = out.match(/errors=(\d+)/);
  return { opsPerSec: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]), errors: e ? Number(e[1]) : 0 };
}

/** Runs the peer script once more if its first run fails (etcd may still be electing when the load starts). */
async function peer(args: string[]): Promise<LoadFigures | string> {
  let result: LoadFigures | string = "not run";
  for (let attempt = 0; attempt < 2 && typeof result === "string"; attempt++) {
    // run.sh etcd stops its members with SIGTERM and one second's grace; a member still
    // holding its port makes the next cluster refuse connections, so give it time.
    if (args[0] === "etcd" || attempt > 0) await sleep(5000);
    log(`peer: run.sh ${args.join(" ")}`);
    result = parseLoad((await run("bash", [PEERS, ...args])).out);
  }
  return result;
}

// ---------------------------------------------------------------- raftd cluster

interface Node {
  readonly port: number;
  readonly dir: string;
  readonly args: string[];
  proc: ChildProcess | undefined;
}

interface Status {
  readonly id: string;
  readonly role: string;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly members: readonly { id: string; suffrage: string }[];
}

async function status(port: number): Promise<Status | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(500) });
    return res.ok ? await res.json() as Status : undefined;
  } catch {
    return undefined;
  }
}

class Cluster {
  readonly nodes: Node[];
  constructor(readonly rt: Runtime, readonly base: string, ports: number[], extra: readonly string[] = []) {
    this.nodes = ports.map((port, i) => {
      const dir = join(base, `n${i + 1}`);
      const flags = [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-id",
        `n${i + 1}`,
        "-election-timeout",
        `${ELECTION_MS}ms`,
        ...extra,
      ];
      const join_ = i === 0 ? [] : ["-join", `127.0.0.1:${ports[0]}`];
      return { port, dir, args: [...flags, ...join_, dir], proc: undefined };
    });
  }

  get endpoints(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",");
  }

  start(n: Node): void {
    const { cmd, args } = runtimeCommand(this.rt, RAFTD);
    n.proc = spawn(cmd, [...args, ...n.args], { stdio: "ignore" });
  }

  /** Starts node 1, waits for it to lead, then joins the others and waits for three voters. */
  async up(): Promise<void> {
    log(`raftd cluster on ${this.rt}: ${this.endpoints}`);
    this.start(this.nodes[0]);
    await this.until(async () => (await status(this.nodes[0].port))?.role === "leader", 30_000, "first node leads");
    for (const n of this.nodes.slice(1)) this.start(n);
    await this.until(
      async () => {
        const s = await status(this.nodes[0].port);
        return s?.members.filter((m) => m.suffrage === "voter").length === this.nodes.length;
      },
      60_000,
      "three voters",
    );
    log("raftd cluster up");
  }

  async leader(): Promise<Node | undefined> {
    const all = await Promise.all(this.nodes.map((n) => n.proc ? status(n.port) : undefined));
    const i = all.findIndex((s) => s?.role === "leader");
    return i < 0 ? undefined : this.nodes[i];
  }

  async until(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await ok()) return;
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async down(): Promise<void> {
    await Promise.all(this.nodes.map((n) => kill(n, "SIGTERM")));
    rmSync(this.base, { recursive: true, force: true });
  }
}

function kill(n: Node, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  const p = n.proc;
  n.proc = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      resolve();
    }, 5000);
    p.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    p.kill(signal);
  });
}

function rssBytes(pid: number | undefined): number | string {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) * 1024 : "no VmRSS";
  } catch {
    return "no /proc";
  }
}

/** Shifts every port this script opens (raftd's and the etcd members it starts), so that two runs can overlap. */
const PORT_SHIFT = Number(flag("port-base", "4701")) - 4701;
let nextPort = 4701 + PORT_SHIFT;
function ports(): number[] {
  const p = [nextPort, nextPort + 1, nextPort + 2];
  nextPort += 10;
  return p;
}

async function withCluster<T>(
  rt: Runtime,
  body: (c: Cluster) => Promise<T>,
  extra: readonly string[] = [],
): Promise<T> {
  const base = mkdtempSync(join(tmpdir(), `plank-compare-${rt}-`));
  const c = new Cluster(rt, base, ports(), extra);
  try {
    await c.up();
    return await body(c);
  } finally {
    await c.down();
  }
}

/** Picks an op count that lasts about SECONDS at the rate a short warm-up showed. */
function opsFor(warm: LoadFigures | string): number {
  const rate = typeof warm === "string" ? 1000 : warm.opsPerSec;
  return Math.max(2000, Math.round(rate * SECONDS / 1000) * 1000);
}

// ---------------------------------------------------------------- rows

async function coreRows(): Promise<void> {
  const r = row("core: in-process 3 voters, 200k x 128 B, window 1024 (entries/s)");
  for (const rt of RUNTIMES) {
    log(`core on ${rt}`);
    const { cmd, args } = runtimeCommand(rt, CORE);
    const out = (await run(cmd, [...args, "--proposals", "200000", "--size", "128", "--window", "1024"])).out;
    const m = out.match(/committed entries\/s\s*:\s*([\d,]+)/);
    r.plank[rt] = m ? Number(m[1].replace(/,/g, "")) : `failed: ${out.trim().slice(-100)}`;
  }
  const missing = await peerMissing("raft");
  if (missing) r.peer = missing;
  else {
    const p = await peer(["raft", "-n", "200000", "-size", "128", "-window", "1024"]);
    r.peer = typeof p === "string" ? p : p.opsPerSec;
  }
}

async function e2eRows(): Promise<void> {
  const w = row(`e2e: writes/s, 3 nodes, fsync, HTTP, c=${CLIENTS}, ${SIZE} B`);
  const w50 = row("e2e: write p50 (ms)", 2);
  const w99 = row("e2e: write p99 (ms)", 2);
  const rd = row(`e2e: linearizable reads/s, c=${CLIENTS}`);
  const missing = await peerMissing("load");
  for (const rt of RUNTIMES) {
    if (missing) {
      for (const r of [w, w50, w99, rd]) r.plank[rt] = "skipped: no load generator (run.sh setup)";
      continue;
    }
    try {
      await withCluster(rt, async (c) => {
        const load = (op: string, n: number, keys = 1000) =>
          peer([
            "load",
            ...["-target", "raftd", "-endpoints", c.endpoints, "-c", `${CLIENTS}`, "-size", `${SIZE}`],
            ...["-op", op, "-n", `${n}`, "-keys", `${keys}`],
          ]);
        const warm = await load("put", 2000);
        const put = await load("put", opsFor(warm));
        if (typeof put === "string") { for (const r of [w, w50, w99]) r.plank[rt] = put; }
        else {
          w.plank[rt] = put.errors ? `${put.opsPerSec} (${put.errors} errors)` : put.opsPerSec;
          w50.plank[rt] = put.p50;
          w99.plank[rt] = put.p99;
        }
        // No warm-up for reads: each get run first writes its keys one at a time.
        const get = await load("get", 2 * opsFor(put), READ_KEYS);
        rd.plank[rt] = typeof get === "string"
          ? get
          : get.errors
          ? `${get.opsPerSec} (${get.errors} errors)`
          : get.opsPerSec;
      });
    } catch (e) {
      for (const r of [w, w50, w99, rd]) r.plank[rt] ??= `failed: ${(e as Error).message}`;
    }
  }
  const etcdMissing = await peerMissing("etcd");
  if (etcdMissing) {
    for (const r of [w, w50, w99, rd]) r.peer = etcdMissing;
    return;
  }
  const base = ["etcd", "-c", `${CLIENTS}`, "-size", `${SIZE}`, "-target", "gateway"];
  const put = await peer([...base, "-op", "put", "-n", `${Math.round(6000 * SECONDS / 1000) * 1000}`]);
  if (typeof put === "string") { for (const r of [w, w50, w99]) r.peer = put; }
  else {
    w.peer = put.opsPerSec;
    w50.peer = put.p50;
    w99.peer = put.p99;
  }
  const get = await peer([
    ...base,
    "-op",
    "get",
    "-keys",
    `${READ_KEYS}`,
    "-n",
    `${Math.round(12000 * SECONDS / 1000) * 1000}`,
  ]);
  rd.peer = typeof get === "string" ? get : get.opsPerSec;
}

/** One write through any live node; true on 2xx. */
async function tryWrite(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/db/failover`, {
      method: "POST",
      body: "x",
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Milliseconds from t0 to the first attempt that succeeds. A new attempt starts
 * every 20 ms while earlier ones are pending, so a request stuck on the dead
 * leader (until its client timeout) does not stretch the figure.
 */
async function firstSuccess(t0: number, attempt: (k: number) => Promise<boolean>): Promise<number> {
  let done: number | undefined;
  for (let k = 0; done === undefined; k++) {
    if (performance.now() - t0 > 60_000) throw new Error("no write within 60 s of the kill");
    void attempt(k).then((ok) => {
      if (ok && done === undefined) done = performance.now() - t0;
    });
    await sleep(20);
  }
  return done;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function failoverRows(): Promise<void> {
  const r = row(`failover: SIGKILL leader -> first write, median of ${FAILOVERS}, election ${ELECTION_MS} ms (ms)`);
  for (const rt of RUNTIMES) {
    log(`failover on ${rt}`);
    try {
      r.plank[rt] = await withCluster(rt, async (c) => {
        const times: number[] = [];
        for (let i = 0; i < FAILOVERS; i++) {
          let leader: Node | undefined;
          await c.until(async () => (leader = await c.leader()) !== undefined, 30_000, "a leader");
          if (!(await tryWrite(leader!.port))) throw new Error("write before the kill failed");
          const survivors = c.nodes.filter((n) => n !== leader);
          const t0 = performance.now();
          await kill(leader!, "SIGKILL");
          times.push(await firstSuccess(t0, (k) => tryWrite(survivors[k % survivors.length].port)));
          c.start(leader!); // restarts from its data dir; no -join needed
          const back = leader!;
          await c.until(async () => (await status(back.port))?.leader != null, 30_000, "the restarted node");
        }
        log(`failover ${rt}: ${times.map((t) => t.toFixed(0)).join(" ")} ms`);
        return median(times);
      });
    } catch (e) {
      r.plank[rt] = `failed: ${(e as Error).message}`;
    }
  }
  const missing = await peerMissing("etcd");
  if (missing) r.peer = missing;
  else {
    try {
      r.peer = await etcdFailover();
    } catch (e) {
      r.peer = `failed: ${(e as Error).message}`;
    }
  }
}

const ETCD_CLIENTS = [12379, 22379, 32379]; // the ports etcd-cluster.sh gives its members

/** The gateway's JSON for one etcd member, or undefined when it does not answer. */
async function etcdPost(port: number, path: string, body: unknown): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(2000),
    });
    const json = await res.json() as Record<string, unknown>;
    return res.ok ? json : undefined;
  } catch {
    return undefined;
  }
}

/**
 * etcd's side of the failover row: the peers' etcd-cluster.sh starts the
 * members (default 1000 ms election timeout, 100 ms heartbeat); the leader is
 * found through the gateway's maintenance status, SIGKILLed, and a put is
 * retried on the survivors. The member restarts with its own command line.
 */
async function etcdFailover(): Promise<number> {
  const cluster = join(PEERS, "..", "etcd-cluster.sh");
  const dir = mkdtempSync(join(tmpdir(), "plank-compare-etcd-"));
  const env = { ...process.env, DIR: dir };
  const sh = (arg: string) =>
    new Promise<void>((resolve) =>
      spawn("bash", [cluster, arg], { env, stdio: "ignore" }).on("close", () => resolve())
    );
  await sleep(5000); // a previous etcd run may still hold the ports
  await sh("up");
  const children: ChildProcess[] = [];
  try {
    const put = async (port: number) =>
      (await etcdPost(port, "/v3/kv/put", { key: btoa("failover"), value: btoa("x") })) !== undefined;
    const times: number[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      let leaderIdx = -1;
      const end = Date.now() + 30_000;
      while (leaderIdx < 0 && Date.now() < end) {
        const all = await Promise.all(ETCD_CLIENTS.map((p) => etcdPost(p, "/v3/maintenance/status", {})));
        leaderIdx = all.findIndex((st) =>
          st !== undefined && st.leader !== undefined &&
          st.leader === (st.header as Record<string, unknown> | undefined)?.member_id
        );
        if (leaderIdx < 0 || !(await put(ETCD_CLIENTS[leaderIdx]))) {
          leaderIdx = -1;
          await sleep(100);
        }
      }
      if (leaderIdx < 0) throw new Error("etcd has no leader");
      const pid = Number(readFileSync(join(dir, `e${leaderIdx + 1}.pid`), "utf8"));
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
      const survivors = ETCD_CLIENTS.filter((_, j) => j !== leaderIdx);
      const t0 = performance.now();
      process.kill(pid, "SIGKILL");
      times.push(await firstSuccess(t0, (k) => put(survivors[k % survivors.length])));
      const child = spawn(argv[0], argv.slice(1), { stdio: "ignore", detached: false });
      children.push(child);
      writeFileSync(join(dir, `e${leaderIdx + 1}.pid`), `${child.pid}\n`);
    }
    log(`failover etcd: ${times.map((t) => t.toFixed(0)).join(" ")} ms`);
    return median(times);
  } finally {
    await sh("down");
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- recovery and memory

/** A long-lived child whose stdout printed a line matching a pattern. */
interface Started {
  readonly proc: ChildProcess;
  readonly match: RegExpMatchArray;
  /** Milliseconds from the spawn to the matching line. */
  readonly ms: number;
}

/**
 * Spawns a child (stdin kept open: bench/recovery.ts exits when it closes) and
 * resolves once its stdout matches `pattern`; kills it and rejects on exit or timeout.
 */
function spawnUntil(cmd: string, args: string[], pattern: RegExp, timeoutMs: number): Promise<Started> {
  const t0 = performance.now();
  const proc = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        proc.kill("SIGKILL");
        reject(err);
      }
    };
    const timer = setTimeout(() => finish(new Error(`timed out: ${out.trim().slice(-120)}`)), timeoutMs);
    const onData = (d: unknown) => {
      out += String(d);
      const m = out.match(pattern);
      if (m && !done) {
        const ms = performance.now() - t0;
        finish();
        resolve({ proc, match: m, ms });
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d) => (out += String(d)));
    proc.on("error", (e) => finish(e));
    proc.on("exit", (code) => finish(new Error(`exited (${code}): ${out.trim().slice(-120)}`)));
  });
}

/** SIGKILLs a child and waits for it to be gone (its data directory lock released, its ports closed). */
function killHard(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", () => resolve());
    p.kill("SIGKILL");
  });
}

/** VmRSS after a second's settling: both sides are read the same way, no collection forced. */
async function settledRss(pid: number | undefined): Promise<number | string> {
  await sleep(1000);
  return rssBytes(pid);
}

interface RestartFigures {
  /** Spawn to ready with ENTRIES entries in the log. */
  readonly ms: number;
  /** (RSS holding ENTRIES entries - RSS after recovering an empty log) / ENTRIES. */
  readonly bytesPerEntry: number | string;
}

/**
 * plank's restart: bench/recovery.ts writes ENTRIES 128-byte entries to a
 * single-voter node's WAL (fsync, snapshots off) and is SIGKILLed; a restart
 * on the same directory is timed from spawn to its `ready` line (log
 * replayed, leader, a linearizable read index served, every entry applied).
 * The same is done with an empty log for the RSS baseline.
 */
async function plankRestart(rt: Runtime): Promise<RestartFigures> {
  const { cmd, args } = runtimeCommand(rt, RECOVERY);
  const base = mkdtempSync(join(tmpdir(), `plank-compare-recovery-${rt}-`));
  const alive: ChildProcess[] = [];
  try {
    const cycle = async (dir: string, entries: number) => {
      const opts = ["--entries", `${entries}`, "--election-timeout", `${RESTART_ELECTION_MS}`];
      const w = await spawnUntil(cmd, [...args, "write", dir, ...opts], /written .*\n/, 600_000);
      alive.push(w.proc);
      if (entries > 0) log(`recovery ${rt}: ${w.match[0].trim()}`);
      await killHard(w.proc);
      const r = await spawnUntil(cmd, [...args, "recover", dir, ...opts], /ready .*\n/, 120_000);
      alive.push(r.proc);
      const rss = await settledRss(r.proc.pid);
      await killHard(r.proc);
      return { ms: r.ms, rss };
    };
    const empty = await cycle(join(base, "empty"), 0);
    const full = await cycle(join(base, "full"), ENTRIES);
    log(
      `recovery ${rt}: restart ${full.ms.toFixed(0)} ms with ${ENTRIES} entries (RSS ${fmtRss(full.rss)}), ` +
        `${empty.ms.toFixed(0)} ms with an empty log (RSS ${fmtRss(empty.rss)})`,
    );
    return { ms: full.ms, bytesPerEntry: perEntry(full.rss, empty.rss) };
  } finally {
    await Promise.all(alive.map(killHard));
    rmSync(base, { recursive: true, force: true });
  }
}

function fmtRss(rss: number | string): string {
  return typeof rss === "number" ? `${(rss / 2 ** 20).toFixed(1)} MiB` : rss;
}

function perEntry(full: number | string, empty: number | string): number | string {
  if (typeof full === "string") return full;
  if (typeof empty === "string") return empty;
  return (full - empty) / ENTRIES;
}

// Client ports of the etcd members these rows start (peer port = client + 1). Below the kernel's
// ephemeral range (32768-60999 here), so no outgoing connection of another process can hold them.
const ETCD_SINGLE = 6101 + PORT_SHIFT;
const ETCD_CATCHUP = [6111, 6121, 6131].map((p) => p + PORT_SHIFT);
const ETCD_MEMORY = [6141, 6151, 6161].map((p) => p + PORT_SHIFT);

/** One etcd member started by this script (not by etcd-cluster.sh: these rows need their own flags). */
interface EtcdMember {
  readonly name: string;
  readonly client: number;
  readonly peer: number;
  readonly dir: string;
  readonly argv: string[];
  proc: ChildProcess | undefined;
}

/**
 * etcd's command line: etcd-cluster.sh's flags (127.0.0.1, zap logger at
 * error level, default 100 ms heartbeat and 1000 ms election timeout) plus `extra`.
 */
function etcdMember(
  base: string,
  name: string,
  client: number,
  peer: number,
  cluster: string,
  state: "new" | "existing",
  extra: string[],
): EtcdMember {
  const dir = join(base, name);
  const argv = [
    ...["--name", name, "--data-dir", dir],
    ...["--listen-client-urls", `http://127.0.0.1:${client}`, "--advertise-client-urls", `http://127.0.0.1:${client}`],
    ...["--listen-peer-urls", `http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`],
    ...["--initial-cluster", cluster, "--initial-cluster-state", state, "--initial-cluster-token", "bench-compare"],
    ...["--logger", "zap", "--log-level", "error", ...extra],
  ];
  return { name, client, peer, dir, argv, proc: undefined };
}

function startEtcd(m: EtcdMember): void {
  m.proc = spawn("etcd", m.argv, { stdio: "ignore" });
}

/** Milliseconds from t0 to the member's first successful linearizable range over its gateway. */
function etcdReady(t0: number, m: EtcdMember): Promise<number> {
  return firstSuccess(t0, async () => (await etcdPost(m.client, "/v3/kv/range", { key: btoa("k0") })) !== undefined);
}

/** Runs kv-load directly (not through run.sh, which would start and stop its own etcd). */
async function kvLoad(args: string[]): Promise<LoadFigures | string> {
  const r = await run(join(PEERS_BIN, "kv-load"), args, 600_000);
  return parseLoad(r.out);
}

/**
 * etcd's restart: one member (its own ports, --snapshot-count above ENTRIES
 * so every entry stays in its WAL and raft MemoryStorage), ENTRIES puts of
 * 128 bytes over gRPC by kv-load (256 clients, 1,000 keys), SIGKILL, restart
 * with the same command line, timed from spawn to the first successful
 * linearizable range over its HTTP gateway. RSS baseline: the same with no puts.
 */
async function etcdRestart(): Promise<RestartFigures> {
  const base = mkdtempSync(join(tmpdir(), "plank-compare-etcd-recovery-"));
  const members: EtcdMember[] = [];
  try {
    const cycle = async (name: string, entries: number) => {
      const m = etcdMember(
        base,
        name,
        ETCD_SINGLE,
        ETCD_SINGLE + 1,
        `${name}=http://127.0.0.1:${ETCD_SINGLE + 1}`,
        "new",
        [
          ...["--snapshot-count", `${ENTRIES * 2 + 10_000}`],
          ...["--election-timeout", `${RESTART_ELECTION_MS}`, "--heartbeat-interval", `${RESTART_ELECTION_MS / 10}`],
        ],
      );
      members.push(m);
      startEtcd(m);
      await etcdReady(performance.now(), m);
      if (entries > 0) {
        const t = performance.now();
        const load = await kvLoad([
          ...["-endpoints", `127.0.0.1:${m.client}`, "-target", "grpc", "-op", "put"],
          ...["-c", "256", "-size", `${SIZE}`, "-n", `${entries}`],
        ]);
        if (typeof load === "string") throw new Error(`kv-load: ${load}`);
        log(`recovery etcd: ${entries} puts in ${(performance.now() - t).toFixed(0)} ms (${load.opsPerSec} ops/s)`);
      }
      await killHard(m.proc);
      const t0 = performance.now();
      startEtcd(m);
      const ms = await etcdReady(t0, m);
      const rss = await settledRss(m.proc?.pid);
      await killHard(m.proc);
      return { ms, rss };
    };
    const empty = await cycle("empty", 0);
    const full = await cycle("full", ENTRIES);
    log(
      `recovery etcd: restart ${full.ms.toFixed(0)} ms with ${ENTRIES} entries (RSS ${fmtRss(full.rss)}), ` +
        `${empty.ms.toFixed(0)} ms with an empty log (RSS ${fmtRss(empty.rss)})`,
    );
    return { ms: full.ms, bytesPerEntry: perEntry(full.rss, empty.rss) };
  } finally {
    await Promise.all(members.map((m) => killHard(m.proc)));
    rmSync(base, { recursive: true, force: true });
  }
}

/** Size of the newest snapshot file in a raftd data directory, or undefined when there is none. */
function newestSnapshotBytes(dataDir: string): number | undefined {
  const dir = join(dataDir, "snapshots");
  if (!existsSync(dir)) return undefined;
  let best: { index: number; bytes: number } | undefined;
  for (const f of readdirSync(dir)) {
    const m = f.match(/^snap-(\d+)-(\d+)\.snap$/);
    if (m && (!best || Number(m[1]) > best.index)) best = { index: Number(m[1]), bytes: statSync(join(dir, f)).size };
  }
  return best?.bytes;
}

/** Keys (and puts) of CATCHUP_MIB MiB in 1 KiB values. */
const CATCHUP_KEYS = () => CATCHUP_MIB * 1024;
/**
 * The catch-up rows' numerator: the value bytes the wiped node must end up
 * holding, the same on both sides. The leader's snapshot file (plank) or db
 * (etcd) is logged but not used: plank's snapshot holds the state up to its
 * last 10,000-entry mark (the rest follows as log entries), etcd sends its
 * whole bbolt file (free pages and MVCC overhead included).
 */
const catchupBytes = () => CATCHUP_KEYS() * 1024;

/**
 * plank's snapshot catch-up: a 3-node raftd (snapshots every 10,000 entries,
 * 5,000 kept behind) loaded with CATCHUP_MIB MiB of 1 KiB values over as many
 * keys; a follower is SIGKILLed and removed (DELETE /members), its data
 * directory wiped, and a new node (new id, same port) joins through the
 * leader. Timed from its spawn until its applied index reaches the leader's
 * commit at the spawn; MB/s = the leader's newest snapshot file / seconds.
 */
async function plankCatchup(rt: Runtime): Promise<number> {
  return await withCluster(rt, async (c) => {
    const keys = CATCHUP_KEYS();
    const load = await kvLoad([
      ...["-target", "raftd", "-endpoints", c.endpoints, "-op", "put"],
      ...["-c", `${CLIENTS}`, "-size", "1024", "-n", `${keys}`, "-keys", `${keys}`],
    ]);
    if (typeof load === "string") throw new Error(`load: ${load}`);
    if (load.errors) throw new Error(`load: ${load.errors} errors`);
    const rates: number[] = [];
    for (let round = 0; round < CATCHUPS; round++) {
      // The previous round's node must be a voter again before the next membership change.
      await c.until(
        async () => {
          const l = await c.leader();
          const s = l && await status(l.port);
          return s?.members.filter((m) => m.suffrage === "voter").length === 3;
        },
        60_000,
        "three voters",
      );
      const leader = (await c.leader())!;
      const bytes = newestSnapshotBytes(leader.dir);
      if (bytes === undefined) throw new Error("the leader has taken no snapshot");
      const follower = c.nodes.find((n) => n !== leader && n.proc)!;
      const oldId = (await status(follower.port))?.id;
      await kill(follower, "SIGKILL");
      const removed = await fetch(`http://127.0.0.1:${leader.port}/members/${oldId}`, { method: "DELETE" });
      await removed.arrayBuffer();
      if (!removed.ok) throw new Error(`DELETE /members/${oldId}: ${removed.status}`);
      rmSync(follower.dir, { recursive: true, force: true });
      const fresh: Node = {
        port: follower.port,
        dir: follower.dir,
        args: [
          ...["-h", "127.0.0.1", "-p", `${follower.port}`, "-id", `${oldId}w`],
          ...["-election-timeout", `${ELECTION_MS}ms`, "-join", `127.0.0.1:${leader.port}`, follower.dir],
        ],
        proc: undefined,
      };
      c.nodes.push(fresh);
      const target = (await status(leader.port))!.commit;
      const t0 = performance.now();
      c.start(fresh);
      const end = Date.now() + 120_000;
      // Polled every 20 ms, as etcd's side is.
      while (((await status(fresh.port))?.applied ?? 0) < target) {
        if (Date.now() > end) throw new Error("the wiped node did not catch up in 120 s");
        await sleep(20);
      }
      const seconds = (performance.now() - t0) / 1000;
      log(`catch-up ${rt}: leader's snapshot file ${bytes} bytes, ${seconds.toFixed(2)} s (commit ${target})`);
      rates.push(catchupBytes() / 1e6 / seconds);
    }
    return median(rates);
  });
}

/** A membership change through the gateway; throws with etcd's answer when it fails. */
async function etcdAdmin(port: number, path: string, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text.slice(0, 100)}`);
}

interface EtcdStatus {
  readonly member: string;
  readonly leader: string;
  readonly raftIndex: number;
  readonly dbSize: number;
}

async function etcdStatus(port: number): Promise<EtcdStatus | undefined> {
  const st = await etcdPost(port, "/v3/maintenance/status", {});
  if (!st) return undefined;
  const header = st.header as Record<string, unknown> | undefined;
  return {
    member: String(header?.member_id ?? ""),
    leader: String(st.leader ?? ""),
    raftIndex: Number(st.raftIndex ?? 0),
    dbSize: Number(st.dbSize ?? 0),
  };
}

/** A member's applied index as its /metrics reports it (0 while it does not answer). */
async function etcdAppliedMetric(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const m = (await res.text()).match(/^etcd_server_proposals_applied_total (\S+)$/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A 3-member etcd started by this script with `extra` flags; resolves once a put through the gateway succeeds. */
async function etcdCluster(base: string, ports: number[], extra: string[]): Promise<EtcdMember[]> {
  const cluster = ports.map((p, i) => `e${i + 1}=http://127.0.0.1:${p + 1}`).join(",");
  const members = ports.map((p, i) => etcdMember(base, `e${i + 1}`, p, p + 1, cluster, "new", extra));
  members.forEach(startEtcd);
  await firstSuccess(
    performance.now(),
    async () => (await etcdPost(members[0].client, "/v3/kv/put", { key: btoa("k0"), value: btoa("x") })) !== undefined,
  );
  return members;
}

async function etcdLeader(members: EtcdMember[]): Promise<{ m: EtcdMember; st: EtcdStatus } | undefined> {
  for (const m of members) {
    if (!m.proc) continue;
    const st = await etcdStatus(m.client);
    if (st && st.member === st.leader) return { m, st };
  }
  return undefined;
}

/**
 * etcd's snapshot catch-up: 3 members with --snapshot-count 10,000 (etcd
 * keeps 5,000 entries behind a snapshot, as raftd does), the same state
 * loaded by kv-load over gRPC; a follower is SIGKILLed, removed (member
 * remove), added back under a new name on the same ports (member add) and
 * started with a wiped data directory and --initial-cluster-state existing.
 * Timed from its spawn until its raft index reaches the leader's at the
 * spawn; MB/s = the leader's db size / seconds.
 */
async function etcdCatchup(): Promise<number> {
  const base = mkdtempSync(join(tmpdir(), "plank-compare-etcd-catchup-"));
  const members = await etcdCluster(base, ETCD_CATCHUP, ["--snapshot-count", `${SNAPSHOT_ENTRIES}`]);
  try {
    const keys = CATCHUP_KEYS();
    const load = await kvLoad([
      ...["-endpoints", members.map((m) => `127.0.0.1:${m.client}`).join(","), "-target", "grpc", "-op", "put"],
      ...["-c", `${CLIENTS}`, "-size", "1024", "-n", `${keys}`, "-keys", `${keys}`],
    ]);
    if (typeof load === "string") throw new Error(`load: ${load}`);
    const rates: number[] = [];
    for (let round = 0; round < CATCHUPS; round++) {
      const leader = await etcdLeader(members);
      if (!leader) throw new Error("no leader after the load");
      const follower = members.find((m) => m !== leader.m && m.proc)!;
      const followerId = (await etcdStatus(follower.client))?.member;
      if (!followerId) throw new Error("the follower does not answer");
      await killHard(follower.proc);
      follower.proc = undefined;
      await etcdAdmin(leader.m.client, "/v3/cluster/member/remove", { ID: followerId });
      // etcd refuses to add a voter until its members have been connected a while (strict reconfig check): retry.
      const addBy = Date.now() + 30_000;
      for (;;) {
        try {
          await etcdAdmin(leader.m.client, "/v3/cluster/member/add", {
            peerURLs: [`http://127.0.0.1:${follower.peer}`],
          });
          break;
        } catch (e) {
          if (Date.now() > addBy) throw e;
          await sleep(500);
        }
      }
      rmSync(follower.dir, { recursive: true, force: true });
      // The members now: the two survivors and the new one on the follower's ports.
      const cluster = members.filter((m) => m.proc || m === follower)
        .map((m) => `${m === follower ? "w" + m.name : m.name}=http://127.0.0.1:${m.peer}`);
      const fresh = etcdMember(
        base,
        `w${follower.name}`,
        follower.client,
        follower.peer,
        cluster.join(","),
        "existing",
        [
          "--snapshot-count",
          `${SNAPSHOT_ENTRIES}`,
        ],
      );
      members.push(fresh);
      const { st } = (await etcdLeader(members))!;
      const t0 = performance.now();
      startEtcd(fresh);
      const end = Date.now() + 120_000;
      // The new member's applied index from /metrics, not from its gateway: the gateway's own gRPC
      // connection, if first dialed before the server listens, backs off for seconds (seen: 7 s).
      while ((await etcdAppliedMetric(fresh.client)) < st.raftIndex) {
        if (Date.now() > end) throw new Error("the wiped member did not catch up in 120 s");
        await sleep(20);
      }
      const seconds = (performance.now() - t0) / 1000;
      log(`catch-up etcd: leader's db ${st.dbSize} bytes, ${seconds.toFixed(2)} s (raft index ${st.raftIndex})`);
      rates.push(catchupBytes() / 1e6 / seconds);
    }
    return median(rates);
  } finally {
    await Promise.all(members.map((m) => killHard(m.proc)));
    rmSync(base, { recursive: true, force: true });
  }
}

/** Mean of the second half of `samples` (RSS bytes), in MiB. */
function steadyMiB(samples: number[]): number | string {
  const half = samples.slice(Math.floor(samples.length / 2));
  if (half.length === 0) return "no RSS samples";
  return half.reduce((a, b) => a + b, 0) / half.length / 2 ** 20;
}

/** Samples a process's VmRSS every second while `work` runs. */
async function sampleRss(pid: () => number | undefined, work: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  void work.finally(() => (done = true));
  while (!done) {
    await sleep(1000);
    const rss = rssBytes(pid());
    if (!done && typeof rss === "number") samples.push(rss);
  }
  return samples;
}

/**
 * Steady-state RSS of the leader under the e2e write load (kv-load put, 64
 * clients, 128 B, 1,000 keys, an op count sized to last MEMORY_SECONDS from a
 * 2,000-op warm-up), compaction every 10,000 entries; VmRSS sampled every
 * second, mean of the second half. `endpoints` are raftd's or etcd's gateway.
 */
async function steadyRss(
  target: "raftd" | "gateway",
  endpoints: string,
  pid: () => number | undefined,
  who: string,
): Promise<number | string> {
  const load = (n: number) =>
    kvLoad([
      ...["-target", target, "-endpoints", endpoints, "-c", `${CLIENTS}`, "-size", `${SIZE}`],
      ...["-op", "put", "-n", `${n}`, "-keys", "1000"],
    ]);
  const warm = await load(2000);
  const n = Math.max(2000, Math.round(opsFor(warm) * MEMORY_SECONDS / SECONDS / 1000) * 1000);
  const work = load(n);
  const samples = await sampleRss(pid, work);
  const put = await work;
  log(
    `memory ${who}: ${n} puts, ${typeof put === "string" ? put : `${put.opsPerSec} ops/s`}, ` +
      `RSS samples (MiB) ${samples.map((r) => (r / 2 ** 20).toFixed(0)).join(" ")}`,
  );
  if (typeof put === "string") return put;
  return steadyMiB(samples);
}

async function recoveryAndMemoryRows(): Promise<void> {
  const rec = ONLY.has("recovery");
  const mem = ONLY.has("memory");
  const restart = rec
    ? row(`recovery: restart with ${ENTRIES.toLocaleString("en-US")} entries in the log (ms)`)
    : undefined;
  const catchup = rec
    ? row(`recovery: wiped follower catch-up by snapshot, ${CATCHUP_MIB} MiB of 1 KiB values (MB/s of values)`, 1)
    : undefined;
  const perEntryRow = mem ? row(`memory: resident bytes per log entry held (${SIZE} B entries)`) : undefined;
  const steady = mem
    ? row(`memory: steady-state leader RSS, ${MEMORY_SECONDS} s write load, compaction every 10k (MiB)`, 1)
    : undefined;
  const loadMissing = await peerMissing("load");
  const etcdMissing = await peerMissing("etcd");

  for (const rt of RUNTIMES) {
    if (restart || perEntryRow) {
      log(`recovery on ${rt}: ${ENTRIES} entries`);
      try {
        const f = await plankRestart(rt);
        if (restart) restart.plank[rt] = f.ms;
        if (perEntryRow) perEntryRow.plank[rt] = f.bytesPerEntry;
      } catch (e) {
        for (const r of [restart, perEntryRow]) if (r) r.plank[rt] = `failed: ${(e as Error).message}`;
      }
    }
    if (catchup) {
      log(`catch-up on ${rt}`);
      try {
        catchup.plank[rt] = loadMissing ? "skipped: no load generator (run.sh setup)" : await plankCatchup(rt);
      } catch (e) {
        catchup.plank[rt] = `failed: ${(e as Error).message}`;
      }
    }
    if (steady) {
      log(`steady-state RSS on ${rt}`);
      try {
        steady.plank[rt] = loadMissing ? "skipped: no load generator (run.sh setup)" : await withCluster(
          rt,
          async (c) => {
            const leader = await c.leader();
            if (!leader) throw new Error("no leader");
            return await steadyRss("raftd", c.endpoints, () => leader.proc?.pid, rt);
          },
        );
      } catch (e) {
        steady.plank[rt] = `failed: ${(e as Error).message}`;
      }
    }
  }

  const etcdSkip = etcdMissing ?? loadMissing;
  if (restart || perEntryRow) {
    if (etcdSkip) {
      for (const r of [restart, perEntryRow]) if (r) r.peer = etcdSkip;
    } else {
      log(`recovery on etcd: ${ENTRIES} entries`);
      try {
        const f = await etcdRestart();
        if (restart) restart.peer = f.ms;
        if (perEntryRow) perEntryRow.peer = f.bytesPerEntry;
      } catch (e) {
        for (const r of [restart, perEntryRow]) if (r) r.peer = `failed: ${(e as Error).message}`;
      }
    }
  }
  if (catchup) {
    log("catch-up on etcd");
    try {
      catchup.peer = etcdSkip ?? await etcdCatchup();
    } catch (e) {
      catchup.peer = `failed: ${(e as Error).message}`;
    }
  }
  if (steady) {
    log("steady-state RSS on etcd");
    if (etcdSkip) steady.peer = etcdSkip;
    else {
      const base = mkdtempSync(join(tmpdir(), "plank-compare-etcd-memory-"));
      let members: EtcdMember[] = [];
      try {
        members = await etcdCluster(base, ETCD_MEMORY, ["--snapshot-count", `${SNAPSHOT_ENTRIES}`]);
        const leader = await etcdLeader(members);
        if (!leader) throw new Error("no leader");
        const endpoints = members.map((m) => `127.0.0.1:${m.client}`).join(",");
        steady.peer = await steadyRss("gateway", endpoints, () => leader.m.proc?.pid, "etcd");
      } catch (e) {
        steady.peer = `failed: ${(e as Error).message}`;
      } finally {
        await Promise.all(members.map((m) => killHard(m.proc)));
        rmSync(base, { recursive: true, force: true });
      }
    }
  }
}

// ---------------------------------------------------------------- security modes

const RAFTD_BENCH = join(ROOT, "bench/raftd.ts");
const AUTH_MODES = ["plain", "mtls", "mtls-http", "secret"] as const;

/**
 * Writes/s and p99 with each peer-authentication mode: bench/raftd.ts (its own
 * HTTP client, 64 clients, 128 B, SECONDS) once per mode. The peer column is
 * empty: etcd runs plaintext peers here, and this client is not kv-load.
 */
async function securityRows(): Promise<void> {
  const rs = AUTH_MODES.map((a) => ({
    a,
    w: row(`security: writes/s with ${a} peers (bench/raftd.ts client, c=${CLIENTS}, ${SIZE} B)`),
    p99: row(`security: write p99 with ${a} peers (ms)`, 2),
  }));
  for (const r of rs) r.w.peer = r.p99.peer = "n/a (plaintext etcd)";
  for (const rt of RUNTIMES) {
    log(`security modes on ${rt}`);
    const { cmd, args } = runtimeCommand(rt, RAFTD_BENCH);
    const { out } = await run(cmd, [
      ...args,
      "--auth",
      AUTH_MODES.join(","),
      "--only",
      "writes",
      "--seconds",
      `${SECONDS}`,
    ]);
    for (const r of rs) {
      const m = out.match(new RegExp(`writes \\[${r.a}\\]:.*: (\\d+)/s, p50 [\\d.]+ ms, p99 ([\\d.]+) ms`));
      r.w.plank[rt] = m ? Number(m[1]) : `failed: ${out.slice(-120)}`;
      r.p99.plank[rt] = m ? Number(m[2]) : "failed";
    }
  }
}

// ---------------------------------------------------------------- soak

/** Least-squares slope of `samples` (one a second, bytes) after the first minute, in MiB per minute. */
function slopeMiBPerMin(samples: number[]): number | string {
  const tail = samples.slice(60);
  if (tail.length < 10) return "too short (needs > 70 s)";
  const n = tail.length;
  const mx = (n - 1) / 2;
  const my = tail.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  tail.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return num / den * 60 / 2 ** 20;
}

/** The leader's RSS under SOAK_MINUTES of 1 KiB puts: its slope after the first minute and its last sample. */
async function soakRss(
  target: "raftd" | "gateway",
  endpoints: string,
  pid: () => number | undefined,
  who: string,
): Promise<{ slope: number | string; last: number | string }> {
  const load = (n: number) =>
    kvLoad([
      ...["-target", target, "-endpoints", endpoints, "-c", `${CLIENTS}`, "-size", "1024"],
      ...["-op", "put", "-n", `${n}`, "-keys", "1000"],
    ]);
  const warm = await load(2000);
  // Rounds of about SECONDS each until SOAK_MINUTES have passed: an op count sized once from the warm-up would end
  // early (or late) when the machine's speed changes under the soak.
  const round = opsFor(warm);
  const end = performance.now() + SOAK_MINUTES * 60_000;
  let n = 0;
  const work = (async (): Promise<LoadFigures | string> => {
    let last: LoadFigures | string = "no load round ran";
    while (performance.now() < end) {
      last = await load(round);
      if (typeof last === "string") return last;
      n += round;
    }
    return last;
  })();
  const t0 = performance.now();
  const samples = await sampleRss(pid, work);
  const put = await work;
  const every = samples.filter((_, i) => i % 30 === 0).map((r) => (r / 2 ** 20).toFixed(0));
  log(
    `soak ${who}: ${n} puts in ${((performance.now() - t0) / 1000).toFixed(0)} s, ${
      typeof put === "string" ? put : `last round ${put.opsPerSec} ops/s`
    }, RSS every 30 s (MiB) ${every}`,
  );
  if (typeof put === "string") return { slope: put, last: put };
  const last = samples.at(-1);
  return { slope: slopeMiBPerMin(samples), last: last === undefined ? "no RSS samples" : last / 2 ** 20 };
}

async function soakRows(): Promise<void> {
  const what = `${SOAK_MINUTES} min of 1 KiB puts, snapshots every ${SOAK_SNAPSHOT_ENTRIES}`;
  const slope = row(`soak: leader RSS slope after the first minute, ${what} (MiB/min)`, 2);
  const last = row(`soak: leader RSS at the end of the soak (MiB)`, 1);
  const skip = await peerMissing("load");
  for (const rt of RUNTIMES) {
    log(`soak on ${rt}`);
    try {
      const f = skip ? { slope: skip, last: skip } : await withCluster(rt, async (c) => {
        const leader = await c.leader();
        if (!leader) throw new Error("no leader");
        return await soakRss("raftd", c.endpoints, () => leader.proc?.pid, rt);
      }, ["-snapshot-entries", `${SOAK_SNAPSHOT_ENTRIES}`]);
      slope.plank[rt] = f.slope;
      last.plank[rt] = f.last;
    } catch (e) {
      slope.plank[rt] = last.plank[rt] = `failed: ${(e as Error).message}`;
    }
  }
  const etcdSkip = (await peerMissing("etcd")) ?? skip;
  if (etcdSkip) {
    slope.peer = last.peer = etcdSkip;
    return;
  }
  log("soak on etcd");
  const base = mkdtempSync(join(tmpdir(), "plank-compare-etcd-soak-"));
  let members: EtcdMember[] = [];
  try {
    members = await etcdCluster(base, ETCD_MEMORY, ["--snapshot-count", `${SOAK_SNAPSHOT_ENTRIES}`]);
    const leader = await etcdLeader(members);
    if (!leader) throw new Error("no leader");
    const endpoints = members.map((m) => `127.0.0.1:${m.client}`).join(",");
    const f = await soakRss("gateway", endpoints, () => leader.m.proc?.pid, "etcd");
    slope.peer = f.slope;
    last.peer = f.last;
  } catch (e) {
    slope.peer = last.peer = `failed: ${(e as Error).message}`;
  } finally {
    await Promise.all(members.map((m) => killHard(m.proc)));
    rmSync(base, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- table

function fmt(f: Figure | undefined, digits: number): string {
  if (f === undefined) return "-";
  if (typeof f === "string") return f;
  return f.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(p: Figure | undefined, q: Figure): string {
  return typeof p === "number" && typeof q === "number" && q > 0 ? `${(p / q).toFixed(2)}x` : "-";
}

/** bench/multi.ts's JSON figures under `rt` with `args`, or why not. */
async function multi(rt: Runtime, args: string[]): Promise<Record<string, unknown> | string> {
  const { cmd, args: a } = runtimeCommand(rt, MULTI);
  const out = (await run(cmd, [...a, ...args, "--json"], 900_000)).out;
  const last = out.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return `failed: ${out.trim().slice(-100)}`;
  }
}

async function multiRows(): Promise<void> {
  const noPeer = "n/a (no multi-raft peer here)";
  const load: { groups: number; clients: number; writes: Row; p99: Row }[] = [];
  for (const clients of [CLIENTS, 1024]) {
    for (const groups of MULTI_GROUPS) {
      const what = `multi-raft: 3 processes x ${groups} group${groups === 1 ? "" : "s"}, c=${clients}`;
      load.push({ groups, clients, writes: row(`${what} (writes/s)`), p99: row(`${what}, p99 (ms)`, 1) });
    }
  }
  const ratio = row(`multi-raft: 16 groups / 1 group, c=${CLIENTS} (x, target >= 1.5)`, 2);
  const separate = row(`multi-raft: 16 separate single-group nodes per process, c=${CLIENTS} (writes/s)`);
  const cpu = row(`multi-raft: ${MULTI_IDLE_GROUPS} quiescent groups, busiest process (% of a core)`, 2);
  const rss = row(`multi-raft: ${MULTI_IDLE_GROUPS} quiescent groups, RSS per group (KiB)`, 1);
  const msgs = row(`multi-raft: ${MULTI_IDLE_GROUPS} quiescent groups, wire messages/s into the busiest process`, 0);
  for (const r of [...load.flatMap((l) => [l.writes, l.p99]), ratio, separate, cpu, rss, msgs]) r.peer = noPeer;
  const seconds = String(Math.min(SECONDS, 10));
  for (const rt of RUNTIMES) {
    log(`multi-raft on ${rt}`);
    const writes = new Map<string, number>();
    for (const l of load) {
      const r = await multi(rt, ["--groups", String(l.groups), "--seconds", seconds, "--inflight", String(l.clients)]);
      if (typeof r === "string") l.writes.plank[rt] = l.p99.plank[rt] = r;
      else {
        l.writes.plank[rt] = r.writesPerSec as number;
        l.p99.plank[rt] = r.p99 as number;
        writes.set(`${l.groups}/${l.clients}`, r.writesPerSec as number);
      }
    }
    const one = writes.get(`1/${CLIENTS}`), sixteen = writes.get(`16/${CLIENTS}`);
    ratio.plank[rt] = one === undefined || sixteen === undefined ? "failed" : sixteen / one;
    const sep = await multi(rt, ["--groups", "16", "--separate", "--seconds", seconds, "--inflight", String(CLIENTS)]);
    separate.plank[rt] = typeof sep === "string" ? sep : sep.writesPerSec as number;
    const idle = await multi(rt, ["--groups", String(MULTI_IDLE_GROUPS), "--seconds", "0", "--idle", "10"]);
    if (typeof idle === "string") cpu.plank[rt] = rss.plank[rt] = msgs.plank[rt] = idle;
    else {
      const procs = idle.idle as { cpu: number; rss: number; msgs: number }[];
      cpu.plank[rt] = Math.max(...procs.map((p) => p.cpu));
      rss.plank[rt] = Math.max(...procs.map((p) => p.rss)) / MULTI_IDLE_GROUPS / 1024;
      msgs.plank[rt] = Math.max(...procs.map((p) => p.msgs));
    }
  }
}

function table(): string {
  const head = ["row", ...RUNTIMES.map((rt) => `plank (${rt})`), "peer", ...RUNTIMES.map((rt) => `ratio (${rt})`)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const cells = [
      r.name,
      ...RUNTIMES.map((rt) => fmt(r.plank[rt], r.digits)),
      fmt(r.peer, r.digits),
      ...RUNTIMES.map((rt) => ratio(r.plank[rt], r.peer)),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (RUNTIMES.length === 0) throw new Error("--runtimes takes deno, bun or deno,bun");
  mkdirSync(tmpdir(), { recursive: true });
  const t0 = performance.now();
  bundleRaftd();
  if (ONLY.has("core")) await coreRows();
  if (ONLY.has("e2e")) await e2eRows();
  if (ONLY.has("failover")) await failoverRows();
  if (ONLY.has("recovery") || ONLY.has("memory")) await recoveryAndMemoryRows();
  if (ONLY.has("security")) await securityRows();
  if (ONLY.has("soak")) await soakRows();
  if (ONLY.has("multi")) await multiRows();
  console.log(table());
  console.log(
    `\nratio = plank / peer (higher is better for /s rows, lower for ms rows). ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s, peers: ${PEERS}`,
  );
}

await main();
