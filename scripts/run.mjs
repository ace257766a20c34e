#!/usr/bin/env node
// `node scripts/run.mjs FILE [args...]`: run a TypeScript program of this
// repository under the Deno from node_modules, installing the npm
// dependencies first if they are missing (once, with progress shown: the
// first install takes about a minute). `deno task demo` and `deno task raftd`
// go through here, so neither re-runs npm install nor stays silent.
//
// Signals: SIGINT/SIGTERM are passed to the program once; the program (raftd,
// the demo) stops gracefully and this script exits with its exit code. A
// Ctrl-C in a terminal reaches every process of the foreground group, so the
// program may see the same signal twice: raftd treats a repeat within two
// seconds as the same request.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const [file, ...args] = process.argv.slice(2);
if (file === undefined) {
  console.error("usage: node scripts/run.mjs FILE [args...]");
  process.exit(2);
}

// deno.json says nodeModulesDir "manual": the npm dependencies must be installed.
if (!existsSync(join(ROOT, "node_modules", "effect")) || !existsSync(join(ROOT, "node_modules", ".bin", "deno"))) {
  console.error("plank: installing the npm dependencies (first run only, about a minute)...");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const i = spawnSync(npm, ["install", "--no-audit", "--no-fund"], { cwd: ROOT, stdio: ["ignore", 2, 2] });
  if (i.status !== 0) {
    console.error("plank: npm install failed");
    process.exit(1);
  }
}

const deno = join(ROOT, "node_modules", ".bin", process.platform === "win32" ? "deno.cmd" : "deno");
// raftd's Deno flags (a bounded V8 heap: see the file's "why") live in one JSON file that the TS launchers read too.
const denoFlags = JSON.parse(readFileSync(join(ROOT, "examples", "raftd", "deno_flags.json"), "utf8")).args;
const child = spawn(deno, ["run", "-A", ...denoFlags, resolve(ROOT, file), ...args], { stdio: "inherit" });
let forwarded = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (forwarded) return;
    forwarded = true;
    child.kill(signal);
  });
}
child.on("error", (e) => {
  console.error(`plank: cannot start deno: ${e.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
