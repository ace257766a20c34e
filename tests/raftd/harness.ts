/**
 * Black-box harness for raftd: spawns real raftd processes of the runtime
 * running the tests (Deno or Bun) on free ports in temporary data
 * directories, and talks to them over HTTP only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { freePort } from "../free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../examples/raftd/main.ts", import.meta.url).href);

/** The command that runs raftd (`entry`: its source unless given) on this runtime: `deno run -A …` or `bun …`. */
export function raftdCommand(entry: string = MAIN): string[] {
  const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
  if (typeof g.Bun !== "undefined") return [process.execPath, entry];
  if (typeof g.Deno !== "undefined") return [g.Deno.execPath(), "run", "-A", entry];
  throw new Error("run the raftd tests under Deno or Bun");
}

/** A port nobody listens on right now (re-exported for the raftd tests). */
export { freePort };

/** A temporary directory, removed by {@link Cluster.cleanup}. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `fetch` trusting `ca` (PEM) on this runtime: Deno's HTTP client, Bun's `tls` option. */
export function fetchTrusting(ca: string): (url: string, init: RequestInit) => Promise<Response> {
  const g = globalThis as { Deno?: { createHttpClient(o: { caCerts: string[] }): unknown } };
  if (g.Deno !== undefined) {
    const client = g.Deno.createHttpClient({ caCerts: [ca] });
    return (url, init) => fetch(url, { ...init, client } as RequestInit);
  }
  return (url, init) => fetch(url, { ...init, tls: { ca: [ca] } } as RequestInit);
}

/** One raftd process (the data dir and port survive restarts). */
export class RaftdProcess {
  child: ChildProcess | undefined;
  output = "";
  exited: Promise<number | null> = Promise.resolve(null);
  /** Talk HTTPS to it, trusting this CA (PEM), when it serves `-cert`/`-key`. */
  https: { readonly ca: string } | undefined;
  #fetch: ((url: string, init: RequestInit) => Promise<Response>) | undefined;

  /**
   * @param entry the module to run: raftd's source unless given (a bundle of
   * it, `scripts/bundle_raftd.mjs`, in its test)
   */
  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    readonly entry: string = MAIN,
  ) {}

  /** `host:port` of this node. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Start (or restart) with the given extra flags. `fileSizeLimitKiB` runs
   * it under `ulimit -f` (with SIGXFSZ ignored), so that a write past that
   * size fails with EFBIG, as on a full disk: a real I/O failure from outside.
   */
  start(flags: string[], options: { fileSizeLimitKiB?: number } = {}): void {
    const [cmd, ...args] = raftdCommand(this.entry);
    const argv = [...args, "-h", "127.0.0.1", "-p", String(this.port), ...flags, this.dataDir];
    const limit = options.fileSizeLimitKiB;
    const [file, fileArgs] = limit === undefined
      ? [cmd, argv]
      : ["bash", ["-c", `ulimit -f ${limit} && trap '' XFSZ && exec "$0" "$@"`, cmd, ...argv]];
    const child = spawn(file, fileArgs, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    this.child = child;
    const keep = (b: Uint8Array) => {
      this.output = (this.output + new TextDecoder().decode(b)).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Its pid. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Send a signal and wait for the exit (resolves with the exit code, null when killed by the signal). */
  async stop(signal: "SIGKILL" | "SIGTERM" | "SIGINT"): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null;
    // process.kill rather than child.kill: Deno's node:child_process reports a
    // child it signalled as killed by the signal even when it exited cleanly.
    process.kill(this.child!.pid!, signal);
    return await this.exited;
  }

  /** HTTP request to this node. */
  async request(
    method: string,
    path: string,
    body?: string | Uint8Array,
    headers?: Record<string, string>,
  ): Promise<{ status: number; text: string; headers: Headers }> {
    this.#fetch ??= this.https ? fetchTrusting(this.https.ca) : (url, init) => fetch(url, init);
    const res = await this.#fetch(`${this.https ? "https" : "http"}://${this.address}${path}`, {
      method,
      body: body as BodyInit | undefined,
      headers,
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  /** `GET /status`, or undefined if it does not answer. */
  async status(): Promise<Status | undefined> {
    try {
      const r = await this.request("GET", "/status");
      return r.status === 200 ? JSON.parse(r.text) as Status : undefined;
    } catch {
      return undefined;
    }
  }
}

/** What `/status` returns. */
export interface Status {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commit: number;
  applied: number;
  members: { id: string; address: string; suffrage: string; peer?: string }[];
  cluster: string;
  /** Under `-groups N`: every group of keys. */
  groups?: {
    group: number;
    role: string;
    term: number;
    leader: string | null;
    commit: number;
    applied: number;
    quiescent: boolean;
    snapshotIndex: number;
    members: { id: string; suffrage: string }[];
  }[];
}

/** Poll `f` until it returns a value other than undefined (or time runs out: then throw with `what`). */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once every one of `nodes` sees `count` voters. */
export function waitForVoters(nodes: RaftdProcess[], count: number, timeoutMs = 40_000): Promise<true> {
  return waitFor(`${count} voters seen by every node`, async () => {
    for (const n of nodes) {
      const s = await n.status();
      if (s === undefined || s.members.filter((m) => m.suffrage === "voter").length !== count) return undefined;
    }
    return true;
  }, timeoutMs);
}

/** Flags that keep the suite fast: short elections and request timeouts. */
export const FAST_FLAGS: string[] = ["-election-timeout", "300ms", "-request-timeout", "3s"];

/** A set of raftd processes and their directories; `cleanup` kills and removes everything. */
export class Cluster {
  readonly nodes: RaftdProcess[] = [];
  readonly root: string = tempDir("raftd-test-");

  /** Add (not start) a node on a free port. */
  async add(name: string): Promise<RaftdProcess> {
    const node = new RaftdProcess(name, await freePort(), join(this.root, name));
    this.nodes.push(node);
    return node;
  }

  /** The node every running node agrees is the leader, once they do. */
  leader(): Promise<RaftdProcess> {
    return waitFor("an agreed leader", async () => {
      const running = this.nodes.filter((n) => n.running);
      const statuses = await Promise.all(running.map((n) => n.status()));
      const leaders = statuses.filter((s) => s?.role === "leader");
      if (leaders.length !== 1) return undefined;
      const id = leaders[0]!.id;
      if (!statuses.every((s) => s?.leader === id)) return undefined;
      return running[statuses.indexOf(leaders[0])];
    });
  }

  /** Logs of every node, for failure messages. */
  logs(): string {
    return this.nodes.map((n) => `---- ${n.name} (port ${n.port})\n${n.output.slice(-3000)}`).join("\n");
  }

  /** Kill every process and remove the data. */
  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop("SIGKILL").catch(() => {})));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * Every write acknowledged with 200 (key → value), and the check that a node
 * reads them all back. A 503 that says `x-raftd-outcome: not-applied` (an
 * election or a leadership transfer under way: nothing happened) is retried,
 * as raftd tells clients to, for up to `retryMs`; so is a write's 504
 * (`unknown`: the leader changed before answering), since putting the same
 * value again is idempotent. Any other answer fails.
 */
export class AckedWrites {
  /** key → the value last acknowledged. */
  readonly acked: Map<string, string> = new Map();
  /**
   * @param cluster whose logs a failure shows
   * @param retryMs how long a not-applied 503 is retried
   */
  constructor(private readonly cluster: Cluster, private readonly retryMs = 15_000) {}

  async #retrying(node: RaftdProcess, method: string, path: string, body?: string) {
    const deadline = Date.now() + this.retryMs;
    for (;;) {
      const r = await node.request(method, path, body);
      const outcome = r.headers.get("x-raftd-outcome");
      const retry = (r.status === 503 && (method === "GET" || outcome === "not-applied")) ||
        (r.status === 504 && method === "PUT" && outcome === "unknown");
      if (!retry || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** `PUT /db/key` on `node`, asserting 200, and remember it. */
  async write(node: RaftdProcess, key: string, value: string): Promise<void> {
    const r = await this.#retrying(node, "PUT", `/db/${key}`, value);
    assert.equal(r.status, 200, `PUT ${key} on ${node.name}: ${r.status} ${r.text}\n${this.cluster.logs()}`);
    this.acked.set(key, value);
  }

  /** Every acknowledged write reads back from `node` (linearizable reads). */
  async assertAll(node: RaftdProcess): Promise<void> {
    for (const [key, value] of this.acked) {
      const r = await this.#retrying(node, "GET", `/db/${key}`);
      assert.equal(r.status, 200, `GET ${key} on ${node.name}: ${r.status} ${r.text}`);
      assert.equal(r.text, value, `value of ${key} on ${node.name}`);
    }
  }
}

/**
 * Adds n1, n2, n3 to `cluster` and forms them: n1 founds the cluster (with
 * `founderFlags` too), the others `-join` it, all with `everyFlags`; resolves once all three see
 * three voters (or throws with every node's log).
 */
export async function formThree(
  cluster: Cluster,
  founderFlags: string[] = [],
  everyFlags: string[] = [],
): Promise<RaftdProcess[]> {
  const nodes = [await cluster.add("n1"), await cluster.add("n2"), await cluster.add("n3")];
  const [n1, n2, n3] = nodes as [RaftdProcess, RaftdProcess, RaftdProcess];
  n1.start([...FAST_FLAGS, ...everyFlags, "-id", "n1", ...founderFlags]);
  await waitFor("n1 to lead", async () => (await n1.status())?.role === "leader" || undefined);
  n2.start([...FAST_FLAGS, ...everyFlags, "-id", "n2", "-join", n1.address]);
  n3.start([...FAST_FLAGS, ...everyFlags, "-id", "n3", "-join", n1.address]);
  await waitForVoters(nodes, 3).catch((e) => {
    throw new Error(`${e}\n${cluster.logs()}`);
  });
  return nodes;
}
