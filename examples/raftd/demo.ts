/**
 * A local 3-node raftd cluster to play with: `deno task demo` or
 * `bun examples/raftd/demo.ts` (add `--fresh` to start from empty data).
 *
 * Starts raftd on ports 4001-4003 as child processes of this runtime, data
 * and logs in `./.plank-demo/`, prints who leads and each node's term and
 * commit index as they change, and the curl lines to try. Ctrl-C stops
 * every child.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { raftdDenoFlags } from "./deno_flags.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url).href);
const DIR = ".plank-demo";
const PORTS = [4001, 4002, 4003];

interface Child {
  readonly port: number;
  readonly dataDir: string;
  proc: ChildProcess | undefined;
}

interface StatusLine {
  id: string;
  role: string;
  term: number;
  commit: number;
  leader: string | null;
}

function runtimeCommand(): { cmd: string; args: string[]; display: string } {
  const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
  if (typeof g.Bun !== "undefined") {
    return { cmd: process.execPath, args: [MAIN], display: "npx -y bun examples/raftd/main.ts" };
  }
  // Only npx is assumed on PATH (README's quick start): the task runs the Deno from node_modules.
  return { cmd: g.Deno!.execPath(), args: ["run", "-A", ...raftdDenoFlags(), MAIN], display: "npx -y deno task raftd" };
}

const runtime = runtimeCommand();

function flagsFor(port: number): string[] {
  return port === PORTS[0] ? ["-p", String(port)] : ["-p", String(port), "-join", `localhost:${PORTS[0]}`];
}

function start(c: Child): void {
  const log = openSync(join(DIR, `node-${c.port}.log`), "a");
  c.proc = spawn(runtime.cmd, [...runtime.args, ...flagsFor(c.port), c.dataDir], { stdio: ["ignore", log, log] });
  const proc = c.proc;
  proc.once("exit", (code, signal) => {
    if (stopping) return;
    console.log(
      `\n! node ${c.port} (pid ${proc.pid}) exited (${signal ?? `code ${code}`}). Restart it (no -join needed):\n` +
        `    ${runtime.display} -p ${c.port} ${c.dataDir} 2>>${DIR}/node-${c.port}.log &\n`,
    );
  });
}

async function status(port: number): Promise<StatusLine | undefined> {
  try {
    const res = await fetch(`http://localhost:${port}/status`, { signal: AbortSignal.timeout(500) });
    return res.ok ? await res.json() as StatusLine : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let stopping = false;

async function waitForLeader(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const s = await status(port);
    if (s?.leader) return;
    await sleep(100);
  }
}

function printHelp(children: Child[]): void {
  const pids = children.map((c) => `${c.port}: pid ${c.proc?.pid}`).join(", ");
  console.log(`
plank raftd demo: 3 nodes (${pids}), data and logs in ./${DIR}/

Live view: http://localhost:${children[0]!.port}/ui   (every node serves one)

Try, in another terminal:
  curl -XPUT localhost:4001/db/greeting -d hello        # write through node 1
  curl localhost:4002/db/greeting                       # read it on node 2 (linearizable)
  curl 'localhost:4003/db/greeting?stale=true'          # node 3's local copy
  curl -XPOST 'localhost:4002/db/greeting?prev=hello' -d bye   # compare-and-set (412 if it differs)
  curl localhost:4001/status                            # id, role, term, leader, commit, applied, members
  curl localhost:4001/metrics                           # Prometheus metrics
  kill -9 <leader pid, printed below>                   # then watch another node take over

Ctrl-C stops all three nodes.
`);
}

async function main(): Promise<void> {
  if (process.argv.includes("--fresh") && existsSync(DIR)) rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const children: Child[] = PORTS.map((port, i) => ({ port, dataDir: join(DIR, `n${i + 1}`), proc: undefined }));

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the nodes...`);
    await Promise.all(children.map((c) =>
      new Promise<void>((resolve) => {
        const p = c.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          p.kill("SIGKILL");
          resolve();
        }, 5000);
        p.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        p.kill("SIGTERM");
      })
    ));
    console.log("stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  // A new cluster needs its first node leading before the others join; a
  // restarted one needs a quorum up to elect anyone, so start them together.
  const restart = existsSync(join(children[0].dataDir, "raftd.json"));
  start(children[0]);
  if (!restart) await waitForLeader(PORTS[0]);
  for (const c of children.slice(1)) start(c);
  printHelp(children);

  let last = "";
  let lastLeader: string | null | undefined;
  while (!stopping) {
    const all = await Promise.all(PORTS.map(status));
    const leaderIdx = all.findIndex((s) => s?.role === "leader");
    const parts = all.map((s, i) =>
      s === undefined ? `${PORTS[i]}: down` : `${PORTS[i]}: ${s.role.padEnd(9)} term ${s.term} commit ${s.commit}`
    );
    const leaderText = leaderIdx < 0 ? "no leader" : `leader ${PORTS[leaderIdx]} (${all[leaderIdx]!.id})`;
    const line = `${leaderText.padEnd(28)} | ${parts.join(" | ")}`;
    if (line !== last) {
      console.log(`${new Date().toISOString().slice(11, 23)} ${line}`);
      last = line;
    }
    const leaderId = leaderIdx < 0 ? null : all[leaderIdx]!.id;
    if (leaderId !== lastLeader && leaderIdx >= 0) {
      console.log(`    -> to kill the leader: kill -9 ${children[leaderIdx].proc?.pid}`);
    }
    lastLeader = leaderId;
    await sleep(300);
  }
}

await main();
