/**
 * The follower processes of the single-group cluster benches
 * (`bench/cluster.ts`, `bench/split.ts`): each runs `bench/cluster_node.ts`
 * on the current runtime, prints `ready` once started and stops when its
 * stdin closes, so it never outlives the bench.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const deno = (globalThis as unknown as { Deno?: { execPath(): string } }).Deno;
const NODE_SCRIPT = fileURLToPath(new URL("./cluster_node.ts", import.meta.url).href);
const ROOT = fileURLToPath(new URL("..", import.meta.url).href);

/** Starts follower `id` as a child process and resolves once it printed `ready`. */
export function startFollower(
  id: string,
  dataDir: string,
  peers: Record<string, string>,
  electionTimeoutMs: number,
): Promise<ChildProcess> {
  const args = [NODE_SCRIPT, id, dataDir, JSON.stringify(peers), String(electionTimeoutMs)];
  const child = isDeno
    ? spawn(deno!.execPath(), ["run", "-A", ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] })
    : spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      out += d;
      if (out.includes("ready\n")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`node ${id} exited (${code}) before it was ready`)));
  });
}

/** Closes each follower's stdin (it stops), waits up to 3 s, then SIGKILLs what is left. */
export async function stopFollowers(children: readonly ChildProcess[]): Promise<void> {
  for (const child of children) child.stdin?.end();
  await Promise.race([
    Promise.all(children.map((c) => c.exitCode !== null ? undefined : new Promise((r) => c.once("exit", r)))),
    new Promise((r) => setTimeout(r, 3000)),
  ]);
  children.forEach((c) => c.kill("SIGKILL"));
}
