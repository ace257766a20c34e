/**
 * Does a worker per node pay? (issue 15, point 4.) The same HTTP write load
 * against the leader of a 3-node cluster (fsync, TCP on 127.0.0.1), two ways:
 *
 * - `inline`: the leader node and the HTTP server share one thread, as in
 *   raftd;
 * - `worker`: the HTTP server on the main thread, the leader node (core,
 *   log, peer sockets) in a `Worker` (`bench/split_node.ts`); requests and
 *   answers cross in one message per turn each way, bodies transferred.
 *
 * ```
 * deno run -A bench/split.ts [--rounds 2] [--ops 50000] [--clients 64] [--size 128]
 * bun bench/split.ts [--rounds 2] [--ops 50000] [--clients 64] [--size 128]
 * ```
 *
 * The load is kv-load's raftd target (`POST /db/<key>`, from
 * `../shared/peers/run.sh setup`; `PEERS_BIN` overrides where it lives),
 * a Go process, so the client does not share the runtime's threads. Each
 * round runs both ways on a fresh cluster, alternating which goes first;
 * every run prints its writes/s, p50 and p99. Followers are child
 * processes (`bench/cluster_node.ts`). The HTTP handler is minimal (no
 * routing, auth or JSON), so this isolates the thread split from raftd's
 * own per-request work.
 *
 * @module
 */

import { execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort } from "../tests/free_port.ts";
import { startFollower, stopFollowers } from "./cluster_children.ts";
import { Counter, loadStartNode, rawBytes } from "./cluster_machine.ts";
import type { SplitIn, SplitOut } from "./split_node.ts";
import { flag } from "./flags.ts";

const LEADER_ELECTION_MS = 300;
const FOLLOWER_ELECTION_MS = 10_000;

const ROUNDS = Number(flag("rounds", "2"));
const OPS = Number(flag("ops", "50000"));
const CLIENTS = Number(flag("clients", "64"));
const SIZE = Number(flag("size", "128"));
if (!(ROUNDS >= 1) || !(OPS >= 1000) || !(CLIENTS >= 1) || !(SIZE >= 0)) {
  console.error("usage: split.ts [--rounds N >= 1] [--ops N >= 1000] [--clients N >= 1] [--size BYTES >= 0]");
  process.exit(2);
}
const PEERS_BIN = process.env.PEERS_BIN ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "plank-peers");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${process.versions.bun}`;

type Mode = "inline" | "worker";
type Propose = (body: Uint8Array) => Promise<boolean>;

/** A leader node `a` that proposes: on this thread or in a worker. */
interface Leader {
  readonly propose: Propose;
  stop(): Promise<void>;
}

const startNode = await loadStartNode();

async function inlineLeader(peers: Record<string, string>, dataDir: string): Promise<Leader> {
  const node = await startNode({
    id: "a",
    peers,
    dataDir,
    stateMachine: new Counter(),
    command: rawBytes,
    config: { electionTimeoutMs: LEADER_ELECTION_MS, heartbeatMs: 100 },
  });
  const deadline = performance.now() + 15_000;
  while (node.status().role !== "leader") {
    if (performance.now() > deadline) throw new Error("no leader on a");
    await new Promise((r) => setTimeout(r, 20));
  }
  return { propose: (body) => node.propose(body).then(() => true, () => false), stop: () => node.stop() };
}

function workerLeader(peers: Record<string, string>, dataDir: string): Promise<Leader> {
  const worker = new Worker(new URL("./split_node.ts", import.meta.url).href, { type: "module" });
  const waiting = new Map<number, (ok: boolean) => void>();
  let nextId = 0;
  let ids: number[] = [];
  let bodies: Uint8Array[] = [];
  let flushQueued = false;
  let onStopped: (() => void) | undefined;
  const send = (m: SplitIn, transfer: Transferable[] = []) => worker.postMessage(m, transfer);
  const flush = () => {
    flushQueued = false;
    send({ type: "propose", ids, bodies }, bodies.map((b) => b.buffer as ArrayBuffer));
    ids = [];
    bodies = [];
  };
  return new Promise((resolve, reject) => {
    worker.onerror = (e) => reject(new Error(`worker: ${e.message}`));
    worker.onmessage = (e: MessageEvent<SplitOut>) => {
      const m = e.data;
      if (m.type === "ready") {
        resolve({
          propose: (body) =>
            new Promise((settle) => {
              const id = nextId++;
              waiting.set(id, settle);
              ids.push(id);
              bodies.push(body);
              if (!flushQueued) {
                flushQueued = true;
                queueMicrotask(flush);
              }
            }),
          stop: () =>
            new Promise<void>((done) => {
              onStopped = done;
              send({ type: "stop" });
            }).finally(() => worker.terminate()),
        });
      } else if (m.type === "done") {
        m.ids.forEach((id, i) => {
          waiting.get(id)?.(m.ok[i]!);
          waiting.delete(id);
        });
      } else if (m.type === "stopped") onStopped?.();
      else reject(new Error(`worker: ${m.message}`));
    };
    send({ type: "start", peers, dataDir, electionTimeoutMs: LEADER_ELECTION_MS });
  });
}

/** The HTTP front: `POST /db/<key>` proposes the body; 204 once committed, 503 if not. */
interface Front {
  readonly port: number;
  stop(): Promise<void>;
}

function serve(port: number, propose: Propose): Front {
  const handler = async (req: Request): Promise<Response> => {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const ok = await propose(new Uint8Array(await req.arrayBuffer()));
    return new Response(null, { status: ok ? 204 : 503 });
  };
  if (isDeno) {
    const D = (globalThis as unknown as {
      Deno: {
        serve(o: { hostname: string; port: number; onListen(): void }, h: typeof handler): {
          shutdown(): Promise<void>;
        };
      };
    }).Deno;
    const server = D.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
    return { port, stop: () => server.shutdown() };
  }
  const B = (globalThis as unknown as {
    Bun: { serve(o: { hostname: string; port: number; fetch: typeof handler }): { stop(force: boolean): void } };
  }).Bun;
  const server = B.serve({ hostname: "127.0.0.1", port, fetch: handler });
  return { port, stop: () => Promise.resolve(server.stop(true)) };
}

/** Runs kv-load once; its one line, e.g. `raftd put n=… errors=0: N ops/s p50=Xms p99=Yms`. */
function load(port: number, ops: number): Promise<string> {
  const args = ["-target", "raftd", "-endpoints", `127.0.0.1:${port}`, "-op", "put"];
  args.push("-c", `${CLIENTS}`, "-size", `${SIZE}`, "-n", `${ops}`, "-keys", "1000");
  return new Promise((resolve, reject) =>
    execFile(join(PEERS_BIN, "kv-load"), args, { timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kv-load: ${err.message} ${stderr}`));
      else resolve(stdout.trim().split("\n").at(-1) ?? "");
    })
  );
}

async function runOnce(mode: Mode): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "plank-bench-split-"));
  const children: ChildProcess[] = [];
  let leader: Leader | undefined;
  let front: Front | undefined;
  try {
    const peers: Record<string, string> = {};
    for (const id of ["a", "b", "c"]) peers[id] = `127.0.0.1:${await freePort()}`;
    for (const id of ["b", "c"]) {
      children.push(await startFollower(id, join(root, id), peers, FOLLOWER_ELECTION_MS));
    }
    leader = mode === "inline"
      ? await inlineLeader(peers, join(root, "a"))
      : await workerLeader(peers, join(root, "a"));
    front = serve(await freePort(), leader.propose);
    await load(front.port, 2000); // warm-up
    const line = await load(front.port, OPS);
    const m = line.match(/errors=(\d+): (\d+) ops\/s p50=([\d.]+)ms p99=([\d.]+)ms/);
    return m
      ? `${m[2]} writes/s, p50 ${m[3]} ms, p99 ${m[4]} ms${m[1] !== "0" ? `, ${m[1]} errors` : ""}`
      : `unparsed: ${line}`;
  } finally {
    await front?.stop().catch(() => {});
    await leader?.stop().catch(() => {});
    await stopFollowers(children);
    await rm(root, { recursive: true, force: true });
  }
}

console.log(
  `${runtime}: 3 nodes (fsync, TCP 127.0.0.1, 3 processes + kv-load on ${availableParallelism()} cores), ` +
    `HTTP POST to the leader, c=${CLIENTS}, ${SIZE} B, ${OPS} writes per run`,
);
for (let round = 0; round < ROUNDS; round++) {
  const order: Mode[] = round % 2 === 0 ? ["inline", "worker"] : ["worker", "inline"];
  for (const mode of order) console.log(`  round ${round + 1} ${mode.padEnd(6)}: ${await runOnce(mode)}`);
}
process.exit(0);
