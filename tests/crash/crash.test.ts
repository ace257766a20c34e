/**
 * Crash safety through the real adapters: a single-node cluster writing with
 * 64 proposals in flight is SIGKILLed mid-write (after 50, 500 and 2,000
 * acknowledgements), then recovered from its data directory. Every
 * acknowledged value must be there, and the applied commands must be exactly
 * the proposals in order up to some point — no holes, duplicates or
 * reordering. One more cycle restarts the writer on a recovered directory,
 * kills it again and checks both runs.
 *
 * The children run under the runtime running this file (`tests/crash/writer.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? "deno" : "bun";
const WRITER = fileURLToPath(new URL("./writer.ts", import.meta.url).href);
const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts the writer under this runtime. */
function spawnWriter(args: string[]): ChildProcess {
  const [cmd, pre] = isDeno
    ? [(globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath(), ["run", "-A", WRITER]]
    : [process.execPath, [WRITER]];
  return spawn(cmd, [...pre, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
}

/** Resolves once the child has exited and been reaped (so its pid no longer holds the data directory). */
function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await exited(child);
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

/** Runs the writer with `prefix`, SIGKILLs it right after `acks` acknowledgements; returns the acknowledged values. */
async function writeThenKill(dir: string, port: number, prefix: string, acks: number): Promise<string[]> {
  const child = spawnWriter(["write", dir, String(port), prefix]);
  const acked: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const { stderr } = readLines(child, (line) => {
        if (acked.length >= acks || !line.startsWith("ack ")) return;
        acked.push(line.slice(4));
        if (acked.length === acks) {
          // Kill at once, mid-write: 64 proposals are still in flight.
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.once("exit", (code, signal) => {
        if (acked.length < acks) {
          reject(new Error(`writer exited (${code ?? signal}) after ${acked.length} acks: ${stderr()}`));
        }
      });
    });
  } finally {
    await kill(child);
  }
  return acked;
}

/** Recovers the data directory and returns the applied commands, in order. */
async function verify(dir: string, port: number): Promise<string[]> {
  const child = spawnWriter(["verify", dir, String(port)]);
  try {
    const lines: string[] = [];
    const { stderr } = readLines(child, (line) => lines.push(line));
    const code = await exited(child);
    assert.equal(code, 0, `verify failed: ${stderr()}`);
    assert.equal(lines.length, 1, `verify printed ${lines.length} lines`);
    return JSON.parse(lines[0]!) as string[];
  } finally {
    await kill(child);
  }
}

/**
 * Asserts that `applied` holds only this run's commands (`prefix-N`), each at
 * most once, and returns how many. Concurrent proposals carry no order among
 * themselves (one refused before the first election is retried later), so the
 * order is not checked — durability is: see {@link assertAllPresent}.
 */
function assertEachOnce(applied: string[], prefix: string): number {
  const seen = new Set<string>();
  applied.forEach((value, i) => {
    assert.match(value, new RegExp(`^${prefix}-\\d+$`), `applied[${i}] is a command of this run`);
    assert.ok(!seen.has(value), `applied[${i}] = ${value} applied twice`);
    seen.add(value);
  });
  return applied.length;
}

function assertAllPresent(applied: string[], acked: string[]): void {
  const set = new Set(applied);
  const lost = acked.filter((v) => !set.has(v));
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged values lost`);
}

for (const acks of [50, 500, 2000]) {
  test(`${runtime}: SIGKILL after ${acks} acks loses no acknowledged write and applies each command at most once`, {
    timeout: 15_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "plank-crash-"));
    try {
      const port = await freePort();
      const acked = await writeThenKill(dir, port, "w", acks);
      const applied = await verify(dir, port);
      assertAllPresent(applied, acked);
      assert.ok(assertEachOnce(applied, "w") >= acks);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test(`${runtime}: a restarted writer killed again keeps both runs' acknowledged writes`, {
  timeout: 15_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "plank-crash-"));
  try {
    const port = await freePort();
    const first = await writeThenKill(dir, port, "w", 300);
    const recovered = await verify(dir, port);
    const k = assertEachOnce(recovered, "w");
    assertAllPresent(recovered, first);

    const second = await writeThenKill(dir, port, "r2", 300);
    const applied = await verify(dir, port);
    // The first run's recovered prefix, unchanged, then the second run's commands, each once.
    assert.deepEqual(applied.slice(0, k), recovered);
    assert.ok(assertEachOnce(applied.slice(k), "r2") >= second.length);
    assertAllPresent(applied, [...first, ...second]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
