/**
 * Many Raft groups per process: three host processes of the same runtime
 * (this one hosts `a` and runs the clients; `b` and `c` are children running
 * this file with `--child`), `--groups` groups hosted by all three, real
 * multi-group logs (one fsync per iteration) and one TCP transport per
 * process on 127.0.0.1.
 *
 * ```
 * deno run -A bench/multi.ts [--groups 16] [--seconds 5] [--inflight 64] [--idle 5] [--no-gc] [--separate] [--json]
 *   [--stagger MS (default: the election timeout)] [--transfers N (default 256)] [--no-quiesce] [--no-coalesce]
 *   [--secret] [--trace MS]
 * bun bench/multi.ts [...the same flags]
 * ```
 *
 * Start: every group is added in bulk (one host call each, queued at once);
 * group `g` is seeded to the process at `g mod 3` ({@link seedAt}): that
 * process adds its groups first and the others add theirs one election
 * timeout later, so the seeded process's election timer fires first and the
 * groups elect without a storm of split votes. Then leaders are balanced:
 * each process hands the groups it leads to `g mod 3` (leadership transfer,
 * at most `--transfers` at once) until every group is led there. The startup
 * line gives both times.
 *
 * Load: `--inflight` clients in process `a`, each proposing 128-byte writes
 * to the group of a random key out of 10^6 through `a`'s host, which
 * forwards to the group's leader. Prints writes/s and p50/p99 in ms.
 *
 * `--idle S`: waits for every group to quiesce, then measures over S seconds
 * of no load, in every process: CPU (% of one core), RSS (and the JS heap in
 * use), and messages received from the wire per second (the transport's
 * delivered count), and the group messages they carried (a coalesced
 * message counts each).
 * With `--no-quiesce` every group stays active (heartbeating): the
 * measurement starts once leaders are balanced.
 *
 * `--no-coalesce`: every group's heartbeats and answers leave as their own
 * messages (`HostOptions.coalesceHeartbeats` off), to compare.
 *
 * `--secret`: the transports run in shared-secret mode (a handshake, every
 * frame MACed), as a deployment without mTLS would.
 *
 * `--separate`: the same number of groups, but each a separate single-group
 * node: its own host, multi-group log (own fsync) and TCP transport (own
 * port and connections), still three processes: what sharing buys.
 *
 * `--trace MS`: every process prints to stderr every MS ms its groups' roles
 * (`?`: no leader known), how many are quiescent and led by their seed
 * process, messages received, RSS, fsyncs, the longest its event loop was
 * late and its balancing transfers not yet settled (where a slow startup
 * stands).
 *
 * The idle window starts with a full garbage collection in every process
 * (its CPU time is printed, `gcMs` in the JSON, not counted in the window):
 * the setup (elections, balancing, this file's status polls) leaves hundreds
 * of MiB of garbage, which the engine collects in one full collection some
 * seconds after the allocation stops (V8's memory reducer, JSC's idle
 * collection), 0.5–1.5 s of CPU for 10,000 groups: inside the window or not
 * by chance, it made the figure swing between 1.5 % and 10 % of a core.
 * `--no-gc`: no collection first, to see it.
 *
 * `--json`: one JSON line with the figures last (bench/compare.ts reads it).
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../tests/free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { membershipOf } from "../core/membership.ts";
import type { GroupId, NodeId } from "../core/types.ts";
import type { DurableFs } from "../adapters/storage/fs.ts";
import { MultiGroupLog } from "../adapters/storage/multi_log.ts";
import { type HostGroup, HostLoop, type MultiGroupLogPort } from "../effects/host/host_loop.ts";
import type { TransportStats } from "../adapters/transport/transport.ts";
import { groupOfKey } from "../examples/raftd/groups.ts";

const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const args = deno ? deno.args : process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const groupCount = Number(arg("groups", "16"));
const separate = args.includes("--separate");
const groups: GroupId[] = Array.from({ length: groupCount }, (_, i) => i + 1);
const ids = ["a", "b", "c"];
const config = { electionTimeoutMs: 1000, heartbeatMs: 100, quiesce: !args.includes("--no-quiesce") };
const coalesceHeartbeats = !args.includes("--no-coalesce");
/** A fixed 256-bit secret for `--secret` (a benchmark's, not a deployment's). */
const secret = args.includes("--secret") ? new Uint8Array(32).fill(7) : undefined;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The process group `g` is seeded to and balanced onto. */
function seedAt(g: GroupId): NodeId {
  return ids[g % ids.length]!;
}

/** Counters of a process: CPU time, and its logs' fsyncs and time spent in them. */
interface Counters {
  cpuMs: number;
  syncs: number;
  syncMs: number;
}

/** One process's hosts: one for every group, or (`--separate`) one per group. */
interface Process {
  readonly hostOf: (g: GroupId) => HostLoop;
  readonly stats: () => TransportStats[];
  readonly counters: () => Counters;
  /** Every host's {@link HostLoop.coalescing} counts, summed. */
  readonly coalescing: () => { out: number; in: number; messagesIn: number };
  stop(): Promise<void>;
}

/** `peers` per host: one address per process (shared), or one per process and group (separate). */
type Book = Record<NodeId, string[]>;

async function startProcess(id: NodeId, book: Book, dir: string): Promise<Process> {
  const fs: DurableFs = deno
    ? new (await import("../adapters/deno/fs.ts")).DenoFs()
    : new (await import("../adapters/bun/fs.ts")).BunFs();
  const Tcp = deno
    ? (await import("../adapters/deno/tcp.ts")).DenoTcpTransport
    : (await import("../adapters/bun/tcp.ts")).BunTcpTransport;
  const hostCount = separate ? groupCount : 1;
  const hosts: HostLoop[] = [];
  const stats: TransportStats[] = [];
  const sync = { syncs: 0, syncMs: 0 };
  for (let h = 0; h < hostCount; h++) {
    const peers = new Map(ids.map((p) => [p, book[p]![h]!] as const));
    const transport = new Tcp({ clusterId: `bench-multi-${h}`, self: id, listen: peers.get(id)!, secret });
    await transport.start();
    stats.push(transport.stats);
    const log = counted(await MultiGroupLog.open(fs, join(dir, id, String(h))), sync);
    hosts.push(await HostLoop.start(log, transport, { id, peers, config, coalesceHeartbeats }));
  }
  const hostOf = (g: GroupId) => hosts[separate ? g - 1 : 0]!;
  // Seeded start: this process's groups now, the others' one election timeout later.
  const add = (gs: GroupId[]) =>
    Promise.all(gs.map((g) => hostOf(g).addGroup(g, membershipOf(ids), { apply: (e) => e.index })));
  await add(groups.filter((g) => seedAt(g) === id));
  setTimeout(
    () => void add(groups.filter((g) => seedAt(g) !== id)),
    Number(arg("stagger", String(config.electionTimeoutMs))),
  );
  if (args.includes("--trace")) {
    const t0 = performance.now();
    // The longest the event loop was late for a 50 ms timer since the last line: a stall here is
    // silence to the peers' failure detectors.
    let lag = 0, last = performance.now();
    setInterval(() => {
      const t = performance.now();
      lag = Math.max(lag, t - last - 50);
      last = t;
    }, 50).unref?.();
    setInterval(() => {
      const roles: Record<string, number> = {};
      let q = 0, seeded = 0;
      for (const g of groups) {
        const s = hostOf(g).status(g);
        const k = s ? s.role + (s.leader === undefined ? "?" : "") : "none";
        roles[k] = (roles[k] ?? 0) + 1;
        if (s?.quiescent) q++;
        if (s?.leader === seedAt(g)) seeded++;
      }
      const st = stats.reduce((n, x) => n + x.delivered, 0);
      const c = process.cpuUsage();
      console.error(
        `[${id} ${((performance.now() - t0) / 1000).toFixed(1)}s cpu ${((c.user + c.system) / 1e6).toFixed(1)}s] ` +
          `${JSON.stringify(roles)} quiescent ${q} seeded ${seeded} delivered ${st} rss ${
            (process.memoryUsage().rss / 2 ** 20).toFixed(0)
          }M syncs ${sync.syncs} ${sync.syncMs.toFixed(0)}ms max lag ${lag.toFixed(0)}ms transfers ${transfersPending}`,
      );
      lag = 0;
    }, Number(arg("trace", "5000"))).unref?.();
  }
  const counters = () => {
    const c = process.cpuUsage();
    return { cpuMs: (c.user + c.system) / 1000, ...sync };
  };
  const coalescing = () => {
    const sum = { out: 0, in: 0, messagesIn: 0 };
    for (const h of hosts) {
      const c = h.coalescing();
      sum.out += c.out;
      sum.in += c.in;
      sum.messagesIn += c.messagesIn;
    }
    return sum;
  };
  return {
    hostOf,
    stats: () => stats,
    counters,
    coalescing,
    stop: () => Promise.all(hosts.map((h) => h.stop())).then(() => {}),
  };
}

/** `log` counting its fsyncs and the time they take into `into`. */
function counted(log: MultiGroupLogPort, into: { syncs: number; syncMs: number }): MultiGroupLogPort {
  return {
    load: () => log.load(),
    write: (ops) => log.write(ops),
    pinning: (behind, max) => log.pinning(behind, max),
    close: () => log.close(),
    sync: async () => {
      const t = performance.now();
      await log.sync();
      into.syncs++;
      into.syncMs += performance.now() - t;
    },
  };
}

/** Leadership transfers one process runs at once while balancing (`--transfers`). */
const TRANSFERS = Number(arg("transfers", "256"));
/** Transfers this process asked for that have not settled yet (`--trace`). */
let transfersPending = 0;

/**
 * Hands every group this process leads to its seed process, until none is
 * left to hand: at most {@link TRANSFERS} at a time, as an operator's
 * rebalancer would — each transfer is an election, and thousands at once on
 * a loaded machine outlast the election timeout and unseat other leaders.
 */
async function balance(p: Process, id: NodeId, until: () => boolean): Promise<void> {
  while (!until()) {
    const moves: Promise<unknown>[] = [];
    for (const g of groups) {
      if (moves.length >= TRANSFERS) break;
      const s = p.hostOf(g).status(g);
      if (s?.role === "leader" && seedAt(g) !== id) {
        transfersPending++;
        moves.push(
          p.hostOf(g).group(g)!.transferLeadership(seedAt(g)).catch(() => {}).finally(() => transfersPending--),
        );
      }
    }
    await Promise.all(moves);
    await sleep(100);
  }
}

/**
 * A full garbage collection now, and the CPU it took (ms); undefined where
 * the runtime offers none (`--no-gc`, or a runtime that is neither Bun nor
 * V8). Bun has `Bun.gc`; V8 exposes `gc()` to a new context once the flag
 * is set, so the parent process needs no `--v8-flags` from its caller.
 */
async function collectGarbage(): Promise<number | undefined> {
  if (args.includes("--no-gc")) return undefined;
  let gc: (() => void) | undefined;
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) gc = () => bun.gc(true);
  else {
    const { setFlagsFromString } = await import("node:v8");
    const { runInNewContext } = await import("node:vm");
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as (() => void) | undefined;
  }
  if (gc === undefined) return undefined;
  const c0 = process.cpuUsage();
  gc();
  const c1 = process.cpuUsage(c0);
  return (c1.user + c1.system) / 1000;
}

/**
 * CPU (% of a core), RSS, JS heap in use, messages received per second and
 * the group messages they carried, over `seconds`; and the CPU (ms) of the
 * full garbage collection before the window (see the module doc).
 */
async function idleFigures(
  p: Process,
  seconds: number,
): Promise<{ cpu: number; rss: number; heap: number; msgs: number; groupMsgs: number; gcMs: number | undefined }> {
  // The setup's garbage (elections, balancing, the status polls) is collected before the window, not in it
  // by chance: the engine does one costly full collection some seconds after the allocation stops.
  const gcMs = await collectGarbage();
  const delivered = () => p.stats().reduce((n, s) => n + s.delivered, 0);
  const m0 = delivered();
  // A wire message is one group message, but a coalesced one as many as it carries.
  const groupMessages = () => {
    const c = p.coalescing();
    return delivered() - c.messagesIn + c.in;
  };
  const g0 = groupMessages();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = process.cpuUsage(c0);
  const ms = performance.now() - w0;
  return {
    cpu: (c1.user + c1.system) / 1000 / ms * 100,
    rss: process.memoryUsage().rss,
    heap: process.memoryUsage().heapUsed,
    msgs: (delivered() - m0) / (ms / 1000),
    groupMsgs: (groupMessages() - g0) / (ms / 1000),
    gcMs,
  };
}

/** Idle as the run intends it: every group quiescent, or (`--no-quiesce`) at once. */
const allQuiescent = (p: Process) => !config.quiesce || groups.every((g) => p.hostOf(g).status(g)?.quiescent === true);

const child = args.indexOf("--child");
if (child >= 0) {
  const id = args[child + 1]!;
  const p = await startProcess(id, JSON.parse(arg("book", "{}")), arg("dir", ""));
  let stopping = false;
  const balanced = () => groups.every((g) => p.hostOf(g).status(g)?.leader === seedAt(g));
  void balance(p, id, () => stopping || balanced());
  const exit = () => {
    stopping = true;
    void p.stop().then(() => process.exit(0));
  };
  let buffered = "";
  process.stdin.on("data", (d: Uint8Array) => {
    buffered += new TextDecoder().decode(d);
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (line === "counters") console.log(JSON.stringify(p.counters()));
      const idle = /^idle (\d+(?:\.\d+)?)$/.exec(line);
      if (idle) {
        void (async () => {
          while (!allQuiescent(p)) await sleep(50);
          console.log(JSON.stringify(await idleFigures(p, Number(idle[1]))));
        })();
      }
    }
  });
  process.stdin.on("end", exit);
  process.stdin.on("close", exit);
  console.log("ready");
} else {
  const seconds = Number(arg("seconds", "5"));
  const inflight = Number(arg("inflight", "64"));
  const idle = Number(arg("idle", "0"));
  const json = args.includes("--json");
  const dir = await mkdtemp(join(tmpdir(), "plank-bench-multi-"));
  const book: Book = {};
  // freePort can hand out a port twice (each is free when asked): every listener needs its own.
  const taken = new Set<number>();
  for (const id of ids) {
    book[id] = [];
    for (let h = 0; h < (separate ? groupCount : 1); h++) {
      let port = await freePort();
      while (taken.has(port)) port = await freePort();
      taken.add(port);
      book[id]!.push(`127.0.0.1:${port}`);
    }
  }
  const self = deno ? deno.execPath() : process.execPath;
  const file = new URL(import.meta.url).pathname;
  const children: ChildProcess[] = [];
  const lines = new Map<ChildProcess, (line: string) => void>();
  const t0 = performance.now();
  for (const id of ["b", "c"]) {
    const rest = [file, "--child", id, "--book", JSON.stringify(book), "--dir", dir, "--groups", String(groupCount)];
    if (separate) rest.push("--separate");
    // The children run the same configuration (quiescence and coalescing are per process).
    for (const flag of ["--no-quiesce", "--no-coalesce", "--secret", "--no-gc"]) {
      if (args.includes(flag)) rest.push(flag);
    }
    if (args.includes("--trace")) rest.push("--trace", arg("trace", "5000"));
    const p = spawn(self, deno ? ["run", "-A", ...rest] : rest, { stdio: ["pipe", "pipe", "inherit"] });
    children.push(p);
    let out = "";
    p.stdout!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      for (let i = out.indexOf("\n"); i >= 0; i = out.indexOf("\n")) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        lines.get(p)?.(line);
      }
    });
    await new Promise<void>((resolve) => lines.set(p, () => resolve()));
  }
  const nextLine = (p: ChildProcess) => new Promise<string>((resolve) => lines.set(p, resolve));
  const host = await startProcess("a", book, dir);
  const figures: Record<string, unknown> = {
    runtime: deno ? `deno ${deno.version.deno}` : `bun ${process.versions.bun}`,
    groups: groupCount,
    clients: inflight,
    separate,
    quiesce: config.quiesce,
    coalesceHeartbeats,
    secret: secret !== undefined,
  };
  try {
    while (groups.some((g) => host.hostOf(g).status(g)?.leader === undefined)) await sleep(20);
    const handles = new Map<GroupId, HostGroup>(groups.map((g) => [g, host.hostOf(g).group(g)!]));
    const elected = performance.now() - t0;
    const balanced = () => groups.every((g) => host.hostOf(g).status(g)?.leader === seedAt(g));
    await balance(host, "a", balanced);
    const ready = performance.now() - t0;
    const leaders = new Map<NodeId, number>();
    for (const g of groups) {
      const l = host.hostOf(g).status(g)!.leader!;
      leaders.set(l, (leaders.get(l) ?? 0) + 1);
    }
    Object.assign(figures, { electedMs: elected, balancedMs: ready, leaders: Object.fromEntries(leaders) });
    console.log(
      `${figures.runtime} 3 processes x ${groupCount} ${separate ? "separate single-group nodes" : "groups"}: ` +
        `all elected ${(elected / 1000).toFixed(1)} s, balanced ${(ready / 1000).toFixed(1)} s after start ` +
        `(leaders ${JSON.stringify(Object.fromEntries(leaders))})`,
    );
    if (seconds > 0) {
      const payload = new Uint8Array(128);
      const latencies: number[] = [];
      let stop = false;
      let measuring = false;
      let errors = 0;
      const client = async () => {
        while (!stop) {
          const key = `key-${Math.floor(Math.random() * 1_000_000)}`;
          const g = groupOfKey(key, groupCount);
          const t = performance.now();
          try {
            await handles.get(g)!.propose(payload);
            if (measuring) latencies.push(performance.now() - t);
          } catch {
            // A leader change under load (on a starved machine): counted, the client goes on.
            if (measuring) errors++;
          }
        }
      };
      const counters = async () => {
        const answers = children.map((p) => nextLine(p));
        for (const p of children) p.stdin!.write("counters\n");
        return [host.counters(), ...(await Promise.all(answers)).map((l) => JSON.parse(l) as Counters)];
      };
      const running = Array.from({ length: inflight }, client);
      await sleep(1000);
      measuring = true;
      const before = await counters();
      const m0 = performance.now();
      await sleep(seconds * 1000);
      measuring = false;
      const elapsed = (performance.now() - m0) / 1000;
      const after = await counters();
      const done = latencies.length;
      stop = true;
      await Promise.all(running);
      latencies.sort((x, y) => x - y);
      const pct = (p: number) => latencies[Math.min(done - 1, Math.floor(done * p))]!;
      // Per process over the window: CPU (% of a core), fsyncs/s, and % of the time inside an fsync.
      const load = after.map((c, i) => ({
        cpu: (c.cpuMs - before[i]!.cpuMs) / (elapsed * 10),
        syncsPerSec: (c.syncs - before[i]!.syncs) / elapsed,
        inSync: (c.syncMs - before[i]!.syncMs) / (elapsed * 10),
      }));
      Object.assign(figures, { writesPerSec: done / elapsed, p50: pct(0.5), p99: pct(0.99), errors, load });
      console.log(
        `  ${inflight} clients: ${(done / elapsed).toFixed(0)} writes/s, p50 ${pct(0.5).toFixed(1)} ms, ` +
          `p99 ${pct(0.99).toFixed(1)} ms, ${errors} errors; ` +
          load.map((l, i) =>
            `${ids[i]} ${l.cpu.toFixed(0)}% CPU, ${l.syncsPerSec.toFixed(0)} fsyncs/s, ${l.inSync.toFixed(0)}% in fsync`
          ).join("; "),
      );
    }
    if (idle > 0) {
      const answers = children.map((p) => nextLine(p));
      for (const p of children) p.stdin!.write(`idle ${idle}\n`);
      while (!allQuiescent(host)) await sleep(50);
      const mine = await idleFigures(host, idle);
      const all = [mine, ...(await Promise.all(answers)).map((l) => JSON.parse(l) as typeof mine)];
      figures.idle = all;
      const fmt = (f: typeof mine, id: string) =>
        `${id} ${f.cpu.toFixed(2)}% of a core, RSS ${(f.rss / 2 ** 20).toFixed(1)} MiB ` +
        `(${(f.rss / groupCount / 1024).toFixed(1)} KiB per group; JS heap ${(f.heap / 2 ** 20).toFixed(1)} MiB), ` +
        `${f.msgs.toFixed(0)} msgs/s in (${f.groupMsgs.toFixed(0)} group msgs/s)` +
        (f.gcMs === undefined ? "" : `, after a full GC of the setup's garbage (${f.gcMs.toFixed(0)} ms CPU)`);
      const what = `${config.quiesce ? "quiescent" : "active (no quiescence)"}, ${
        coalesceHeartbeats ? "coalesced" : "not coalesced"
      }${secret ? ", shared secret" : ""}`;
      console.log(`  idle, ${what}, over ${idle} s: ${all.map((f, i) => fmt(f, ids[i]!)).join("; ")}`);
    }
  } finally {
    await host.stop();
    for (const p of children) p.stdin!.end();
    await Promise.all(children.map((p) => new Promise((r) => p.once("exit", r))));
    await rm(dir, { recursive: true, force: true });
  }
  if (json) console.log(JSON.stringify(figures));
}
