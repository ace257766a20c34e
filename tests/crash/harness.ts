/**
 * What the crash tests share: child processes under the runtime running the
 * test, their stdout lines, and the checks on what a recovery found.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort } from "../free_port.ts";
import { fileURLToPath } from "node:url";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);

/** This runtime's name. */
export const runtime: "deno" | "bun" = isDeno ? "deno" : "bun";

/** Starts the program `script` with `args` under this runtime, from the repository's root. */
export function spawnChild(script: string, args: readonly string[]): ChildProcess {
  const [cmd, pre] = isDeno
    ? [(globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath(), ["run", "-A", script]]
    : [process.execPath, [script]];
  return spawn(cmd, [...pre, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
}

/** Resolves once the child has exited and been reaped (so its pid no longer holds the data directory). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** SIGKILLs every child still running and waits until each is reaped. */
export async function killAll(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(children.map(exited));
}

/** Calls `onLine` for each stdout line as it arrives; collects stderr for failure messages. */
export function readLines(child: ChildProcess, onLine: (line: string) => void): { stderr: () => string } {
  let pending = "";
  let err = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (err += chunk));
  return { stderr: () => err };
}

/** An acknowledged command and the 1-based position the state machine gave it. */
export interface Ack {
  /** The command. */
  readonly value: string;
  /** Its 1-based place in the state machine. */
  readonly position: number;
}

/**
 * Asserts that every acknowledged command is at the position its
 * acknowledgement reported: nothing acknowledged was lost, and nothing before
 * it disappeared or moved.
 */
export function assertAcknowledgedInPlace(applied: readonly string[], acked: readonly Ack[]): void {
  const wrong = acked.filter((a) => applied[a.position - 1] !== a.value);
  const shown = wrong.slice(0, 5).map((a) => `${a.value}@${a.position} is ${applied[a.position - 1]}`);
  assert.deepEqual(shown, [], `${wrong.length} of ${acked.length} acknowledged commands lost or moved`);
}

/**
 * Asserts that `applied` holds only commands of the given runs (`prefix-N`),
 * each at most once. Concurrent proposals carry no order among themselves, so
 * their order is checked through the positions in the acknowledgements
 * instead ({@link assertAcknowledgedInPlace}).
 */
export function assertEachOnce(applied: readonly string[], prefixes: readonly string[]): void {
  const pattern = new RegExp(`^(${prefixes.join("|")})-\\d+$`);
  const seen = new Set<string>();
  applied.forEach((value, i) => {
    assert.match(value, pattern, `applied[${i}] is a command of this test`);
    assert.ok(!seen.has(value), `applied[${i}] = ${value} applied twice`);
    seen.add(value);
  });
}

/** The nodes of one test's cluster: ids, their data directories and TCP addresses. */
export interface Topology {
  /** The directory holding every node's data directory. */
  readonly root: string;
  /** The node ids, the writer's first. */
  readonly ids: readonly string[];
  /** Every node's TCP address. */
  readonly peers: Record<string, string>;
}

/** A fresh topology of `size` nodes (a, b, c), each on a free port. */
export async function topology(size: number): Promise<Topology> {
  const root = await mkdtemp(join(tmpdir(), "plank-crash-"));
  const ids = ["a", "b", "c"].slice(0, size);
  const peers: Record<string, string> = {};
  for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
  return { root, ids, peers };
}

/** Starts one node of a topology: `write` (with its prefix), `member` or `verify`. */
export type SpawnNode = (mode: "write" | "member" | "verify", id: string, prefix?: string) => ChildProcess;

/**
 * Runs the cluster with the first node writing `prefix-N` commands and
 * SIGKILLs every process right after `acks` acknowledgements (the writer's
 * `ack …` lines, read by `parse`; proposals are still in flight then);
 * returns the acknowledgements.
 */
export async function writeThenKill<A>(
  t: Topology,
  spawnNode: SpawnNode,
  prefix: string,
  acks: number,
  parse: (fields: readonly string[]) => A,
): Promise<A[]> {
  const members = t.ids.slice(1).map((id) => spawnNode("member", id));
  const writer = spawnNode("write", t.ids[0]!, prefix);
  const all = [writer, ...members];
  const acked: A[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const onLine = (line: string): void => {
        if (acked.length >= acks || !line.startsWith("ack ")) return;
        acked.push(parse(line.split(" ").slice(1)));
        if (acked.length === acks) {
          for (const c of all) c.kill("SIGKILL");
          resolve();
        }
      };
      const stderrs = all.map((c) => readLines(c, c === writer ? onLine : () => {}).stderr);
      for (const c of all) {
        c.once("exit", (code, signal) => {
          if (acked.length < acks) {
            const logs = stderrs.map((s) => s()).join("\n");
            reject(new Error(`a node exited (${code ?? signal}) after ${acked.length} acks: ${logs}`));
          }
        });
      }
    });
  } finally {
    await killAll(all);
  }
  return acked;
}

/**
 * Recovers every node's data directory (each verifier prints one JSON line);
 * asserts they agree and returns what they recovered.
 */
export async function recover<T>(t: Topology, spawnNode: SpawnNode): Promise<T> {
  const children = t.ids.map((id) => spawnNode("verify", id));
  try {
    const results = await Promise.all(children.map((child) =>
      new Promise<T>((resolve, reject) => {
        const { stderr } = readLines(child, (line) => resolve(JSON.parse(line) as T));
        child.once("exit", (code) => reject(new Error(`verify exited (${code}) before printing: ${stderr()}`)));
      })
    ));
    for (let i = 1; i < results.length; i++) {
      assert.deepEqual(results[i], results[0], `node ${t.ids[i]} recovered another sequence than ${t.ids[0]}`);
    }
    return results[0]!;
  } finally {
    await killAll(children);
  }
}

/**
 * The time one phase (a write-then-kill or a recovery) may take. A phase
 * starts up to three fresh runtime processes, each spending about half a
 * second of CPU loading the adapter before its node elects anyone: about
 * 2.5 s on two busy cores, more under the parallel suite, where 15 s for a
 * whole four-phase test ran out (CI: "test timed out after 15000ms"). The
 * children bound their own waits (a leader within 10 s, a read within 30 s),
 * so a phase's budget sits above those: a stuck child then fails with its own
 * message, not the test's timeout.
 */
export const PHASE_MS = 35_000;
