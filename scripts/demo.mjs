#!/usr/bin/env node
// `npm run demo`: same as `deno task demo` (a local 3-node raftd cluster).
// Until examples/raftd/demo.ts exists it only says so.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
if (!existsSync(join(ROOT, "examples", "raftd", "demo.ts"))) {
  console.log("demo: not yet (coming with raftd: examples/raftd/demo.ts)");
  process.exit(0);
}
const local = join(ROOT, "node_modules", ".bin", "deno");
const argv = existsSync(local) ? [local] : ["npx", "-y", "deno"];
const r = spawnSync(argv[0], [
  ...argv.slice(1),
  "task",
  "demo",
  ...process.argv.slice(2),
], {
  cwd: ROOT,
  stdio: "inherit",
});
process.exit(r.status ?? 1);
