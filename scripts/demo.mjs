#!/usr/bin/env node
// `npm run demo`: a local 3-node raftd cluster (examples/raftd/demo.ts), the
// same as `deno task demo`. Extra arguments go to demo.ts.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
// deno.json says nodeModulesDir "manual": the npm dependencies must be installed.
if (!existsSync(join(ROOT, "node_modules", "effect"))) {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const i = spawnSync(npm, ["install", "--no-audit", "--no-fund", "--silent"], { cwd: ROOT, stdio: "inherit" });
  if (i.status !== 0) {
    console.error("demo: npm install failed");
    process.exit(1);
  }
}
const local = join(ROOT, "node_modules", ".bin", "deno");
const argv = existsSync(local) ? [local] : ["npx", "-y", "deno"];
const r = spawnSync(argv[0], [
  ...argv.slice(1),
  "run",
  "-A",
  join(ROOT, "examples", "raftd", "demo.ts"),
  ...process.argv.slice(2),
], {
  cwd: ROOT,
  stdio: "inherit",
});
if (r.error) {
  console.error(`demo: cannot start deno: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
