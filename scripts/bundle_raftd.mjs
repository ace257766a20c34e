#!/usr/bin/env node
// `node scripts/bundle_raftd.mjs [deno] [bun] [--out DIR]`: raftd as one
// pre-built module per runtime, DIR/deno.js (`deno bundle`) and DIR/bun.js
// (`bun build --target bun`), from the runtimes in node_modules; DIR is
// build/raftd unless given. Prints each file's path.
//
// Why: raftd from source loads ~400 modules at every start (180-225 ms of a
// ~275 ms start to a listening port, measured on both runtimes); one bundled
// module starts in about half (BENCHMARKS.md). Run it like the source:
//   deno run -A --v8-flags=--heap-growing-percent=50 build/raftd/deno.js [flags] DATA_DIR
//   bun build/raftd/bun.js [flags] DATA_DIR
// A bundle is a copy of the code at the time it was built: rebuild after
// every change (`deno task raftd:bundle`); the bench builds its own each run.

import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const MAIN = join(ROOT, "examples", "raftd", "main.ts");
const argv = process.argv.slice(2);
const outAt = argv.indexOf("--out");
const OUT = outAt >= 0 && argv[outAt + 1] ? resolve(argv[outAt + 1]) : join(ROOT, "build", "raftd");
const wanted = outAt >= 0 ? argv.filter((_, i) => i !== outAt && i !== outAt + 1) : argv;
const runtimes = wanted.length > 0 ? wanted : ["deno", "bun"];
for (const rt of runtimes) {
  if (rt !== "deno" && rt !== "bun") {
    console.error(`usage: node scripts/bundle_raftd.mjs [deno] [bun] [--out DIR] (not ${JSON.stringify(rt)})`);
    process.exit(2);
  }
}
mkdirSync(OUT, { recursive: true });
for (const rt of runtimes) {
  const bin = join(ROOT, "node_modules", ".bin", rt);
  const out = join(OUT, `${rt}.js`);
  const args = rt === "deno"
    ? ["bundle", "--quiet", "--platform", "deno", "-o", out, MAIN]
    : ["build", "--target", "bun", "--outfile", out, MAIN];
  const r = spawnSync(bin, args, { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) {
    console.error(`plank: bundling raftd for ${rt} failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(1);
  }
  console.log(out);
}
