/**
 * A free TCP port on 127.0.0.1 for the listeners of a test or a bench, held for
 * this process: node:net and node:fs, so the same module serves Deno and Bun.
 *
 * Asking the OS for port 0 and releasing it races twice: the OS hands the same
 * ephemeral range to every `listen(0)` and every outgoing connection's source
 * port, so between the probe and the real bind (a spawned raftd takes hundreds
 * of milliseconds) another test's socket could take it. So ports come from
 * below Linux's default ephemeral range (32768–60999), where the OS assigns
 * nothing by itself, and each one is claimed by an exclusive lock file naming
 * the claiming process, which test files running in parallel (Deno's workers,
 * Bun, other runs) all respect; a lock whose process is gone is taken over.
 *
 * @module
 */

import { createServer } from "node:net";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const LOW = 20_000;
const HIGH = 32_000;
const LOCKS = join(tmpdir(), "plank-test-ports");
const held: string[] = [];
let hooked = false;

/** Whether the process `pid` still runs (a lock of a dead one is stale). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Claims `port` for this process with an exclusive lock file; false if another live process holds it. */
function claim(port: number): boolean {
  const path = join(LOCKS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.push(path);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      let owner = NaN;
      try {
        owner = Number(readFileSync(path, "utf8"));
      } catch { /* removed meanwhile: try again */ }
      // A lock being written has no pid yet: treat it as held.
      if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

/** Whether nothing listens on `port` of 127.0.0.1 now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A port on 127.0.0.1 nobody listens on, claimed for this process (no other
 * test is handed it); with `count`, the first of that many consecutive ones
 * (a raftd with `-groups` and mTLS listens on its peer port + 1 as well).
 */
export async function freePort(count = 1): Promise<number> {
  mkdirSync(LOCKS, { recursive: true });
  if (!hooked) {
    hooked = true;
    const release = () => {
      for (const path of held.splice(0)) rmSync(path, { force: true });
    };
    process.once("exit", release);
    // Deno's test runner ends without node:process's "exit"; its own "unload" fires.
    (globalThis as { addEventListener?: (type: string, f: () => void) => void }).addEventListener?.("unload", release);
  }
  const span = HIGH - LOW - count;
  const start = Math.floor(Math.random() * span);
  next: for (let i = 0; i < span; i += count) {
    const first = LOW + (start + i) % span;
    // A port is claimed for good even when something else listens there, so it is not probed again.
    for (let port = first; port < first + count; port++) {
      if (!claim(port) || !(await bindable(port))) continue next;
    }
    return first;
  }
  throw new Error(`no free port in ${LOW}-${HIGH}`);
}
