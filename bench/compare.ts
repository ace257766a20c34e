/**
 * bench/compare: plank side by side with its peers (etcd/raft and etcd 3.4),
 * in one session, printed as one markdown table with the ratio plank / peer.
 *
 *   deno run -A bench/compare.ts [--runtimes deno,bun] [--seconds 10] [--failovers 10] [--only core,e2e,failover]
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
 * write, median; etcd restarted by the peers' etcd-cluster.sh), memory (leader
 * RSS after the write load). Recovery is printed as not measured yet.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

type Runtime = "deno" | "bun";

const ROOT = fileURLToPath(new URL("..", import.meta.url).href);
const RAFTD = join(ROOT, "examples/raftd/main.ts");
const CORE = join(ROOT, "bench/core.ts");
const PEERS = process.env.PLANK_PEERS ?? join(ROOT, "../shared/peers/run.sh");
const PEERS_BIN = process.env.PEERS_BIN ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "plank-peers");

function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  return args[i].includes("=") ? args[i].slice(args[i].indexOf("=") + 1) : args[i + 1] ?? fallback;
}

const CURRENT: Runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
const RUNTIMES = flag("runtimes", CURRENT).split(",").filter((r): r is Runtime => r === "deno" || r === "bun");
const SECONDS = Number(flag("seconds", "10"));
const FAILOVERS = Number(flag("failovers", "10"));
const ONLY = new Set(flag("only", "core,e2e,failover,memory").split(","));
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
    return { cmd, args: ["run", "-A", script] };
  }
  return { cmd: CURRENT === "bun" ? process.execPath : existsSync(local) ? local : "bun", args: [script] };
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
  constructor(readonly rt: Runtime, readonly base: string, ports: number[]) {
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

let nextPort = 4701;
function ports(): number[] {
  const p = [nextPort, nextPort + 1, nextPort + 2];
  nextPort += 10;
  return p;
}

async function withCluster<T>(rt: Runtime, body: (c: Cluster) => Promise<T>): Promise<T> {
  const base = mkdtempSync(join(tmpdir(), `plank-compare-${rt}-`));
  const c = new Cluster(rt, base, ports());
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
  const mem = ONLY.has("memory")
    ? row("memory: leader RSS after the write load, snapshots every 10k (MiB)", 1)
    : undefined;
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
        if (mem) {
          const leader = await c.leader();
          const rss = rssBytes(leader?.proc?.pid);
          mem.plank[rt] = typeof rss === "number" ? rss / 2 ** 20 : rss;
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
  if (mem) mem.peer = "not measured yet (run.sh etcd stops etcd before RSS can be read)";
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

// ---------------------------------------------------------------- table

function fmt(f: Figure | undefined, digits: number): string {
  if (f === undefined) return "-";
  if (typeof f === "string") return f;
  return f.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(p: Figure | undefined, q: Figure): string {
  return typeof p === "number" && typeof q === "number" && q > 0 ? `${(p / q).toFixed(2)}x` : "-";
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
  if (ONLY.has("core")) await coreRows();
  if (ONLY.has("e2e")) await e2eRows();
  if (ONLY.has("failover")) await failoverRows();
  const rec = row("recovery: restart with 10^6 entries (s); snapshot catch-up (MB/s)");
  for (const rt of RUNTIMES) rec.plank[rt] = "not measured yet";
  console.log(table());
  console.log(
    `\nratio = plank / peer (higher is better for /s rows, lower for ms rows). ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s, peers: ${PEERS}`,
  );
}

await main();
