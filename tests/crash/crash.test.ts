/**
 * Crash safety through the real adapters (WAL with fsync, TCP on 127.0.0.1):
 * a writer with 64 proposals in flight is SIGKILLed mid-write after 50, 500
 * and 2,000 acknowledgements, then its data directory is recovered by a fresh
 * process that only reads its state back. Two topologies:
 *
 * - one node in one process;
 * - three nodes in three processes (the writer's own node forwards to the
 *   leader when it is a follower), all SIGKILLed at once.
 *
 * After recovery every acknowledged command must sit at the very position in
 * the state machine that its acknowledgement reported — so nothing
 * acknowledged was lost and nothing before it went missing or moved (the
 * recovered sequence has no holes) — each command is applied at most once,
 * and in a cluster every node recovers the same sequence. One more cycle per
 * topology restarts the writer on a recovered directory, kills it again and
 * checks both runs.
 *
 * The children run under the runtime running this file (`tests/crash/writer.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../free_port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? "deno" : "bun";
const WRITER = fileURLToPath(new URL("./writer.ts", import.meta.url).href);
const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);

/** The nodes of one test's cluster: ids, their data directories and TCP addresses. */
interface Topology {
  readonly root: string;
  readonly ids: readonly string[];
  readonly peers: Record<string, string>;
}

async function topology(size: number): Promise<Topology> {
  const root = await mkdtemp(join(tmpdir(), "plank-crash-"));
  const ids = ["a", "b", "c"].slice(0, size);
  const peers: Record<string, string> = {};
  for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
  return { root, ids, peers };
}

/** Starts `writer.ts <mode>` for node `id` under this runtime. */
function spawnNode(t: Topology, mode: "write" | "member" | "verify", id: string, prefix?: string): ChildProcess {
  const args = [mode, id, join(t.root, id), JSON.stringify(t.peers), ...(prefix ? [prefix] : [])];
  const [cmd, pre] = isDeno
    ? [(globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath(), ["run", "-A", WRITER]]
    : [process.execPath, [WRITER]];
  return spawn(cmd, [...pre, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
}

/** Resolves once the child has exited and been reaped (so its pid no longer holds the data directory). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function killAll(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(children.map(exited));
}

/** Calls `onLine` for each stdout line as it arrives; collects stderr for failure messages. */
function readLines(child: ChildProcess, onLine: (line: string) => void): { stderr: () => string } {
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
interface Ack {
  readonly value: string;
  readonly position: number;
}

/**
 * Runs the cluster with node `a` writing `prefix-N` commands and SIGKILLs
 * every process right after `acks` acknowledgements (64 proposals are still
 * in flight then); returns the acknowledgements.
 */
async function writeThenKill(t: Topology, prefix: string, acks: number): Promise<Ack[]> {
  const members = t.ids.slice(1).map((id) => spawnNode(t, "member", id));
  const writer = spawnNode(t, "write", t.ids[0]!, prefix);
  const all = [writer, ...members];
  const acked: Ack[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const onLine = (line: string): void => {
        if (acked.length >= acks || !line.startsWith("ack ")) return;
        const [, value, position] = line.split(" ");
        acked.push({ value: value!, position: Number(position) });
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

/** Recovers every node's data directory; asserts they agree and returns the applied commands, in order. */
async function recover(t: Topology): Promise<string[]> {
  const children = t.ids.map((id) => spawnNode(t, "verify", id));
  try {
    const results = await Promise.all(children.map((child) =>
      new Promise<string[]>((resolve, reject) => {
        const { stderr } = readLines(child, (line) => resolve(JSON.parse(line) as string[]));
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
 * Asserts that every acknowledged command is at the position its
 * acknowledgement reported: nothing acknowledged was lost, and nothing before
 * it disappeared or moved.
 */
function assertAcknowledgedInPlace(applied: readonly string[], acked: readonly Ack[]): void {
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
function assertEachOnce(applied: readonly string[], prefixes: readonly string[]): void {
  const pattern = new RegExp(`^(${prefixes.join("|")})-\\d+$`);
  const seen = new Set<string>();
  applied.forEach((value, i) => {
    assert.match(value, pattern, `applied[${i}] is a command of this test`);
    assert.ok(!seen.has(value), `applied[${i}] = ${value} applied twice`);
    seen.add(value);
  });
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
const PHASE_MS = 35_000;

for (const size of [1, 3]) {
  const what = size === 1 ? "one node" : "three node processes";
  for (const acks of [50, 500, 2000]) {
    test(`${runtime}, ${what}: SIGKILL after ${acks} acks keeps every acknowledged write in place, each once`, {
      timeout: 2 * PHASE_MS,
    }, async () => {
      const t = await topology(size);
      try {
        const acked = await writeThenKill(t, "w", acks);
        const applied = await recover(t);
        assertAcknowledgedInPlace(applied, acked);
        assertEachOnce(applied, ["w"]);
        assert.ok(applied.length >= acks);
      } finally {
        await rm(t.root, { recursive: true, force: true });
      }
    });
  }

  test(`${runtime}, ${what}: a restarted writer killed again keeps both runs' acknowledged writes`, {
    timeout: 4 * PHASE_MS,
  }, async () => {
    const t = await topology(size);
    try {
      const first = await writeThenKill(t, "w", 300);
      const recovered = await recover(t);
      assertAcknowledgedInPlace(recovered, first);

      const second = await writeThenKill(t, "r", 300);
      const applied = await recover(t);
      // The first run's recovered sequence, unchanged, then the second run's commands.
      assert.deepEqual(applied.slice(0, recovered.length), recovered);
      assert.ok(second.every((a) => a.position > recovered.length), "second run's commands follow the first's");
      assertAcknowledgedInPlace(applied, [...first, ...second]);
      assertEachOnce(applied, ["w", "r"]);
    } finally {
      await rm(t.root, { recursive: true, force: true });
    }
  });
}
