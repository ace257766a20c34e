#!/usr/bin/env node
// Runs the test suite (`**/*.test.ts`, written with node:test) on Deno and on
// Bun, streams both runners' output, and ends with exactly one summary line:
//
//   N passed, M failed
//
// summed over both runtimes. Exits non-zero if any runner failed.
//
// Usage: node scripts/test.mjs [--deno-only | --bun-only] [filter ...]
//   A filter is a file, a directory, or a substring of a test file's path.
//
// Counting: both numbers count *leaf* tests (a `describe` block is not a
// test). Bun reports leaves itself (` N pass` / ` N fail`). Deno's summary
// (`ok | 1 passed (3 steps) | 0 failed`) counts describe blocks as tests and
// nested tests as steps, so the Deno count comes from its JUnit report
// (`--junit-path`), where a testcase named `a > b` is a child of `a`.
// If a runner exits non-zero without reporting a failed test (e.g. a module
// failed to load), one failure is counted for it.

import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const SKIP_DIRS = new Set(["node_modules", "coverage", "tmp"]);
const BUN_TIMEOUT_MS = 120_000;

function usage(msg) {
  if (msg) console.error(`test.mjs: ${msg}`);
  console.error(
    "usage: node scripts/test.mjs [--deno-only | --bun-only] [filter ...]",
  );
  process.exit(2);
}

// ---- arguments --------------------------------------------------------------

let runDeno = true;
let runBun = true;
const filters = [];
for (const arg of process.argv.slice(2)) {
  if (arg === "--deno-only") runBun = false;
  else if (arg === "--bun-only") runDeno = false;
  else if (arg === "-h" || arg === "--help") usage();
  else if (arg.startsWith("-")) usage(`unknown option ${arg}`);
  else filters.push(arg);
}
if (!runDeno && !runBun) usage("--deno-only and --bun-only exclude each other");

// ---- test file discovery ----------------------------------------------------

function walk(dir, out) {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (ent.isDirectory()) {
      if (ent.name.startsWith(".") || SKIP_DIRS.has(ent.name)) continue;
      walk(join(dir, ent.name), out);
    } else if (ent.isFile() && ent.name.endsWith(".test.ts")) {
      out.push(join(dir, ent.name));
    }
  }
  return out;
}

const toRel = (abs) => "./" + relative(ROOT, abs).split(sep).join("/");

let files;
if (filters.length === 0) {
  files = walk(ROOT, []);
} else {
  const all = walk(ROOT, []);
  const picked = new Set();
  for (const f of filters) {
    const p = resolve(process.cwd(), f);
    if (existsSync(p) && statSync(p).isDirectory()) {
      for (const x of walk(p, [])) picked.add(x);
    } else if (existsSync(p) && statSync(p).isFile()) {
      picked.add(p);
    } else {
      const matches = all.filter((x) => toRel(x).includes(f));
      if (matches.length === 0) {
        usage(`filter ${JSON.stringify(f)} matches no *.test.ts file`);
      }
      for (const x of matches) picked.add(x);
    }
  }
  files = [...picked];
}
files = files.map(toRel).sort();
if (files.length === 0) usage("no *.test.ts files found");

// ---- running ----------------------------------------------------------------

function tool(name) {
  const local = join(
    ROOT,
    "node_modules",
    ".bin",
    process.platform === "win32" ? `${name}.cmd` : name,
  );
  return existsSync(local) ? [local] : ["npx", "-y", name];
}

// deno-lint-ignore no-control-regex
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");

/** Runs a command, tees its output, resolves to { code, output }. */
function run(argv, extraEnv) {
  return new Promise((done) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...extraEnv },
    });
    let output = "";
    child.stdout.on("data", (d) => {
      process.stdout.write(d);
      output += d;
    });
    child.stderr.on("data", (d) => {
      process.stderr.write(d);
      output += d;
    });
    child.on("error", (err) => {
      console.error(`test.mjs: cannot start ${argv[0]}: ${err.message}`);
      done({ code: 127, output });
    });
    child.on(
      "close",
      (code, signal) => done({ code: code ?? (signal ? 128 : 1), output: stripAnsi(output) }),
    );
  });
}

const unescapeXml = (s) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(
    /&apos;/g,
    "'",
  ).replace(/&amp;/g, "&");

/** Leaf counts from a Deno JUnit report, or null if it can't be read. */
function denoJunitCounts(path) {
  let xml;
  try {
    xml = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const cases = [];
  const re = /<testcase\s+name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const status = /<(failure|error)\b/.test(body) ? "fail" : /<skipped\b/.test(body) ? "skip" : "pass";
    const file = m[0].match(/classname="([^"]*)"/)?.[1];
    // The failure's message, kept short: CI keeps only the tail of the output, where it is repeated.
    const message = body.match(/<(?:failure|error)\b[^>]*\bmessage="([^"]*)"/)?.[1];
    cases.push({
      name: unescapeXml(m[1]),
      status,
      file: file && unescapeXml(file),
      why: message && unescapeXml(message).replace(/\s+/g, " ").slice(0, 400),
    });
  }
  const names = cases.map((c) => c.name);
  let passed = 0;
  let failed = 0;
  const failures = [];
  for (const c of cases) {
    const isParent = names.some((n) => n.startsWith(c.name + " > "));
    if (isParent) continue;
    if (c.status === "pass") passed++;
    else if (c.status === "fail") {
      failed++;
      // Nested cases name Deno's node:test shim as their class; the top-level case names the file.
      const root = cases.find((r) => r.name === c.name.split(" > ")[0] && r.file?.startsWith("./"));
      const why = c.why ? ` (${c.why})` : "";
      failures.push((root ? `${root.file}: ${c.name}` : c.name) + why);
    }
  }
  return { passed, failed, failures };
}

/** Fallback: Deno's summary line `ok | 3 passed (2 steps) | 0 failed (5 ignored)`. */
function denoSummaryCounts(output) {
  const m = output.match(
    /^(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/m,
  );
  if (!m) return null;
  return {
    passed: Number(m[1]) + Number(m[2] ?? 0),
    failed: Number(m[3]) + Number(m[4] ?? 0),
  };
}

async function denoRun() {
  const junit = join(tmpdir(), `plank-deno-junit-${process.pid}.xml`);
  rmSync(junit, { force: true });
  const { code, output } = await run(
    [
      ...tool("deno"),
      "test",
      "-A",
      "--parallel",
      `--junit-path=${junit}`,
      ...files,
    ],
    {},
  );
  const counts = denoJunitCounts(junit) ?? denoSummaryCounts(output) ??
    { passed: 0, failed: 0 };
  rmSync(junit, { force: true });
  return { name: "deno", code, ...counts };
}

async function bunRun() {
  const { code, output } = await run(
    [...tool("bun"), "test", "--timeout", String(BUN_TIMEOUT_MS), ...files],
    {},
  );
  const num = (word) => {
    const m = output.match(new RegExp(`^\\s*(\\d+) ${word}\\s*$`, "m"));
    return m ? Number(m[1]) : 0;
  };
  // Each failure with the last error line Bun printed before it (its reason).
  const failures = [];
  let why;
  for (const line of output.split("\n")) {
    const failed = line.match(/^\(fail\) (.*?)(?: \[[\d.]+m?s\])?$/);
    if (failed) {
      failures.push(failed[1] + (why ? ` (${why.slice(0, 400)})` : ""));
      why = undefined;
    } else if (/^(?:error: |\w*Error\b)/.test(line)) why = line.trim();
    else if (/^\(pass\) /.test(line)) why = undefined;
  }
  return { name: "bun", code, passed: num("pass"), failed: num("fail"), failures };
}

console.log(`test.mjs: ${files.length} test file(s): ${files.join(" ")}`);
const results = [];
if (runDeno) {
  console.log("\n=== deno test ===");
  results.push(await denoRun());
}
if (runBun) {
  console.log("\n=== bun test ===");
  results.push(await bunRun());
}

let passed = 0;
let failed = 0;
let ok = true;
console.log("");
for (const r of results) {
  if (r.code !== 0) {
    ok = false;
    if (r.failed === 0) r.failed = 1; // runner failed without reporting a failed test
  }
  if (r.failed > 0) ok = false;
  passed += r.passed;
  failed += r.failed;
  // Named again here because CI keeps only the tail of the output.
  for (const f of r.failures ?? []) console.log(`test.mjs: ${r.name}: FAILED ${f}`);
  console.log(
    `test.mjs: ${r.name}: ${r.passed} passed, ${r.failed} failed (exit ${r.code})`,
  );
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(ok ? 0 : 1);
