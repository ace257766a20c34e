/**
 * End-to-end benchmark of raftd (`examples/raftd/`): a 3-node cluster of
 * child processes of the runtime running this script (data in a temp dir,
 * WAL with fsync, peers over HTTP), driven over HTTP by a load generator in
 * this process (`fetch`, keep-alive).
 *
 * ```
 * deno run -A bench/raftd.ts [--seconds 10] [--clients 64] [--size 128] [--failovers 10]
 *                            [--election-timeout 1000ms] [--only writes,reads,failover]
 *                            [--auth plain,mtls,mtls-http,secret]
 * bun bench/raftd.ts [same flags]
 * ```
 *
 * `--auth` runs everything once per peer-authentication mode, each on a
 * fresh cluster, in this one run: `plain` (peers over the HTTP port, no
 * authentication: the loopback default), `mtls` (peers over TCP with mutual
 * TLS, the test certificates of tests/fixtures/tls), `mtls-http` (the same
 * certificates, peers over the HTTP transport's mTLS mode: HTTP/2 streams,
 * `-peer-transport http`), `secret` (peers over
 * the HTTP port with `-cluster-secret`). Default `plain`.
 *
 * 1. writes: `--clients` concurrent clients, each `PUT /db/key-N` with a
 *    `--size`-byte value on the leader, one request at a time, for
 *    `--seconds` after a 1 s warm-up → writes/s, p50/p99 ms;
 * 2. reads: the same for linearizable `GET /db/key-N` of keys written before
 *    → reads/s, p50/p99 ms;
 * 3. failover, `--failovers` times: find the leader via `/status`, SIGKILL
 *    it, and time until the first successful write through a surviving node
 *    (a new attempt every 20 ms, each with a 2 s timeout, so one attempt
 *    stuck on the dead leader does not stretch the figure); restart the
 *    killed node (no `-join`: its data dir knows the cluster) and wait until
 *    it has applied everything the leader committed. Prints each time and
 *    the median.
 *
 * Every node runs with the same `-election-timeout` (printed). All processes
 * share this machine's cores; each load phase prints the CPU the load
 * generator used and how busy the machine was, so a saturated client shows.
 * Every raftd process is SIGKILLed on exit, on an exception and on
 * Ctrl-C/SIGTERM, and the temp dir removed.
 *
 * @module
 */

import { readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import process from "node:process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cluster, freePort, type RaftdProcess, waitFor } from "../tests/raftd/harness.ts";
import { flag } from "./flags.ts";

const SECONDS = Number(flag("seconds", "10"));
const CLIENTS = Number(flag("clients", "64"));
const SIZE = Number(flag("size", "128"));
const FAILOVERS = Number(flag("failovers", "10"));
const ELECTION = flag("election-timeout", "1000ms");
const ONLY = new Set(flag("only", "writes,reads,failover").split(","));
type Auth = "plain" | "mtls" | "mtls-http" | "secret";
const AUTH = flag("auth", "plain").split(",") as Auth[];
if (!AUTH.every((a) => a === "plain" || a === "mtls" || a === "mtls-http" || a === "secret")) {
  console.error("--auth takes plain, mtls, mtls-http and/or secret");
  process.exit(2);
}
const FIXTURES = fileURLToPath(new URL("../tests/fixtures/tls/", import.meta.url).href);
if (!(SECONDS > 0) || !(CLIENTS >= 1) || !(SIZE >= 1) || !(FAILOVERS >= 0)) {
  console.error("usage: raftd.ts [--seconds S] [--clients N] [--size BYTES] [--failovers N] [--election-timeout D]");
  process.exit(2);
}
const WARMUP_MS = 1000;
/** Keys the read phase writes first when the write phase did not run. */
const READ_KEYS = 1000;
const FLAGS = ["-election-timeout", ELECTION];

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${process.versions.bun}`;
const VALUE = "v".repeat(SIZE);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ figures

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Busy and total jiffies of the whole machine (Linux), to show how loaded it was. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3]! + (cpu[4] ?? 0);
    const total = cpu.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** CPU this process and the machine used between `start()` and `stop()`, as text. */
function cpuMeter(): { stop: () => string } {
  const wall0 = performance.now();
  const own0 = process.cpuUsage();
  const m0 = machineTicks();
  return {
    stop: () => {
      const wallMs = performance.now() - wall0;
      const own = process.cpuUsage(own0);
      const ownPct = ((own.user + own.system) / 1000 / wallMs) * 100;
      const m1 = machineTicks();
      const cores = availableParallelism();
      const machine = m0 && m1
        ? `, machine ${((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)).toFixed(0)}% busy of ${cores} cores`
        : "";
      return `load generator ${ownPct.toFixed(0)}% of one core${machine}`;
    },
  };
}

// ------------------------------------------------------------------ HTTP

async function put(node: RaftdProcess, key: string, timeoutMs = 15_000): Promise<boolean> {
  try {
    const res = await fetch(`http://${node.address}/db/${key}`, {
      method: "PUT",
      body: VALUE,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer(); // drain, so the connection goes back to the pool
    return res.status === 200;
  } catch {
    return false;
  }
}

async function get(node: RaftdProcess, key: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${node.address}/db/${key}`, { signal: AbortSignal.timeout(15_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * `CLIENTS` loops, each one request at a time, for WARMUP_MS + SECONDS; counts
 * the requests started and finished inside the measured window.
 */
async function load(request: (client: number, n: number) => Promise<boolean>): Promise<string> {
  const cpu = cpuMeter();
  const start = performance.now() + WARMUP_MS;
  const end = start + SECONDS * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let n = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const ok = await request(client, n++);
      const t1 = performance.now();
      if (!ok) {
        errors++;
        await sleep(10); // don't spin on a failing node
      } else if (t0 >= start && t1 <= end) latencies.push(t1 - t0);
    }
  }));
  const sorted = Float64Array.from(latencies).sort();
  return `${Math.round(latencies.length / SECONDS)}/s, p50 ${percentile(sorted, 50).toFixed(2)} ms, ` +
    `p99 ${percentile(sorted, 99).toFixed(2)} ms (${errors} errors; ${cpu.stop()})`;
}

// ------------------------------------------------------------------ cluster

let cluster = new Cluster();
const killAll = (): void => {
  for (const n of cluster.nodes) if (n.running) n.child!.kill("SIGKILL");
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    rmSync(cluster.root, { recursive: true, force: true });
    process.exit(130);
  });
}

async function voters(node: RaftdProcess): Promise<number> {
  const s = await node.status();
  return s?.members.filter((m) => m.suffrage === "voter").length ?? 0;
}

/** Each node's flags for peer authentication `auth` (kept for its restarts). */
const authFlags = new Map<RaftdProcess, string[]>();

async function up(auth: Auth): Promise<RaftdProcess[]> {
  const nodes = [await cluster.add("n1"), await cluster.add("n2"), await cluster.add("n3")];
  const secret = join(cluster.root, "secret");
  writeFileSync(secret, "bench cluster secret, 32 bytes..");
  for (const n of nodes) {
    const tls = (f: string) => join(FIXTURES, f);
    authFlags.set(
      n,
      auth === "secret" ? ["-cluster-secret", secret] : auth === "mtls" || auth === "mtls-http"
        ? [
          ...["-peer-cert", tls(`peer-${n.name}.crt`), "-peer-key", tls(`peer-${n.name}.key`)],
          ...["-peer-ca", tls("ca.crt"), "-peer-addr", `127.0.0.1:${await freePort()}`],
          ...(auth === "mtls-http" ? ["-peer-transport", "http"] : []),
        ]
        : [],
    );
  }
  const flagsOf = (n: RaftdProcess) => [...FLAGS, ...authFlags.get(n)!, "-id", n.name];
  nodes[0]!.start(flagsOf(nodes[0]!));
  await waitFor("n1 to lead", async () => (await nodes[0]!.status())?.role === "leader" || undefined, 30_000);
  for (const n of nodes.slice(1)) n.start([...flagsOf(n), "-join", nodes[0]!.address]);
  await waitFor("three voters", async () => {
    for (const n of nodes) if ((await voters(n)) !== 3) return undefined;
    return true;
  }, 60_000);
  return nodes;
}

/** Ms from the leader's SIGKILL to the first write a survivor acknowledges; then restarts it and waits for it. */
async function failoverOnce(): Promise<number> {
  const leader = await cluster.leader();
  if (!(await put(leader, "failover"))) throw new Error(`write on leader ${leader.name} failed before the kill`);
  const survivors = cluster.nodes.filter((n) => n !== leader);
  const t0 = performance.now();
  await leader.stop("SIGKILL");
  let done: number | undefined;
  for (let k = 0; done === undefined; k++) {
    if (performance.now() - t0 > 60_000) throw new Error("no write within 60 s of the kill");
    void put(survivors[k % survivors.length]!, "failover", 2000).then((ok) => {
      if (ok && done === undefined) done = performance.now() - t0;
    });
    await sleep(20);
  }
  leader.start([...FLAGS, ...authFlags.get(leader)!]); // no -join: the data dir knows the cluster
  await waitFor(`${leader.name} to catch up`, async () => {
    const statuses = await Promise.all(cluster.nodes.map((n) => n.status()));
    const head = statuses.find((s) => s?.role === "leader");
    const back = statuses[cluster.nodes.indexOf(leader)];
    return head && back?.leader === head.id && back.applied >= head.commit ? true : undefined;
  }, 60_000);
  return done;
}

const PEERS: Record<Auth, string> = {
  plain: "peers over HTTP streams on 127.0.0.1, unauthenticated",
  mtls: "peers over TCP with mutual TLS on 127.0.0.1",
  "mtls-http": "peers over HTTP/2 streams with mutual TLS on 127.0.0.1",
  secret: "peers over HTTP streams on 127.0.0.1 with -cluster-secret",
};

async function main(auth: Auth): Promise<void> {
  const cores = availableParallelism();
  console.log(
    `raftd bench on ${runtime} [${auth}]: 3 nodes (child processes, fsync, ${PEERS[auth]}), ` +
      `-election-timeout ${ELECTION}; ${cores} cores shared by 3 raftd processes and this load generator`,
  );
  await up(auth);
  /** Keys acknowledged with 200, which the read phase reads back. */
  const written: string[] = [];
  const putKey = async (leader: RaftdProcess, key: string): Promise<boolean> => {
    const ok = await put(leader, key);
    if (ok) written.push(key);
    return ok;
  };
  if (ONLY.has("writes")) {
    const leader = await cluster.leader();
    const figures = await load((_, n) => putKey(leader, `key-${n}`));
    console.log(`writes [${auth}]: ${CLIENTS} clients, PUT /db/key-N, ${SIZE}-byte values, ${SECONDS} s: ${figures}`);
  }
  if (ONLY.has("reads")) {
    const leader = await cluster.leader();
    for (let i = 0; written.length === 0 && i < READ_KEYS; i += CLIENTS) {
      await Promise.all(
        Array.from({ length: Math.min(CLIENTS, READ_KEYS - i) }, (_, j) => putKey(leader, `key-${i + j}`)),
      );
    }
    if (written.length === 0) throw new Error("no key could be written for the read phase");
    const figures = await load((_, n) => get(leader, written[n % written.length]!));
    console.log(`reads [${auth}]: ${CLIENTS} clients, linearizable GET /db/key-N, ${SECONDS} s: ${figures}`);
  }
  if (ONLY.has("failover") && FAILOVERS > 0) {
    const times: number[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      const ms = await failoverOnce();
      times.push(ms);
      console.log(
        `failover ${i + 1}/${FAILOVERS}: SIGKILL leader -> first write through a survivor ${ms.toFixed(0)} ms`,
      );
    }
    console.log(
      `failover: median ${median(times).toFixed(0)} ms of ${FAILOVERS} ` +
        `(${times.map((t) => t.toFixed(0)).join(", ")}), -election-timeout ${ELECTION}`,
    );
  }
}

let failed = false;
for (const [i, auth] of AUTH.entries()) {
  if (i > 0) cluster = new Cluster();
  try {
    await main(auth);
  } catch (e) {
    failed = true;
    console.error(`raftd bench [${auth}] failed: ${(e as Error).message}\n${cluster.logs()}`);
  } finally {
    await cluster.cleanup();
  }
}
process.exit(failed ? 1 : 0);
