#!/usr/bin/env node
// Static checks: type-check (Deno, and tsc for the Bun adapter), lint, format,
// doc-lint of the entry points, and a JSR publish dry run.
// Prints each step; stops at the first failing step and names it.
//
// Usage: node scripts/check.mjs

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Entry points that `deno doc --lint` must pass, checked together (a type
 * one of them exports counts as public for the others). Only entry points
 * whose signatures carry no `effect` types: deno 2.9.6 reports
 * `private-type-ref` for types from `effect` even when imported.
 */
const DOC_LINT_ENTRY_POINTS = [
  "core/mod.ts",
  "mod.ts",
  "adapters/memory/mod.ts",
  "adapters/deno/mod.ts",
  "adapters/deno/no_async_context.ts",
  "adapters/bun/mod.ts",
  "testing.ts",
];

/**
 * Entry points with effect-typed signatures (`@plank/raft/effect`): doc-lint
 * them too, but forgive exactly that deno bug — `private-type-ref` to one of
 * effect's own types. Anything else (a missing JSDoc, an unexported plank
 * type) fails the step.
 */
const EFFECT_DOC_LINT_ENTRY_POINTS = ["effect.ts"];
const EFFECT_TYPES = new Set(["Effect", "Layer", "Service", "Scope", "Codec", "AnySpan", "Tracer"]);

/** Runs `deno doc --lint` on the effect-typed entry points; returns an exit status. */
function effectDocLint(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  if (r.error) throw r.error;
  const out = `${r.stdout}\n${r.stderr}`;
  const errors = out.split("\n").filter((line) => /^error\[[a-z-]+\]/.test(line));
  const real = errors.filter((line) => {
    const m = /^error\[private-type-ref\]: public type '.*' references private type '([A-Za-z]+)'/.exec(line);
    return !(m && EFFECT_TYPES.has(m[1]));
  });
  console.log(`${errors.length - real.length} private-type-ref to effect's types forgiven (deno 2.9 doc-lint bug)`);
  if (real.length === 0) return 0;
  // Show the full report so the offending lines have their locations.
  console.error(out);
  console.error(`${real.length} doc-lint error(s) other than references to effect's types:`);
  for (const line of real) console.error(`  ${line}`);
  return 1;
}

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));

function tool(name) {
  const local = join(
    ROOT,
    "node_modules",
    ".bin",
    process.platform === "win32" ? `${name}.cmd` : name,
  );
  return existsSync(local) ? [local] : ["npx", "-y", name];
}

const deno = tool("deno");
const steps = [
  // `deno check .` checks every .ts file under the root except the
  // exclusions in deno.json (node_modules).
  ["deno check", [...deno, "check", "."]],
  ["deno lint", [...deno, "lint"]],
  ["deno fmt --check", [...deno, "fmt", "--check"]],
  ["deno doc --lint", [...deno, "doc", "--lint", ...DOC_LINT_ENTRY_POINTS]],
  [
    "deno doc --lint (effect entry)",
    [...deno, "doc", "--lint", ...EFFECT_DOC_LINT_ENTRY_POINTS, ...DOC_LINT_ENTRY_POINTS],
    effectDocLint,
  ],
  ["deno publish --dry-run", [
    ...deno,
    "publish",
    "--dry-run",
    "--allow-dirty",
  ]],
  ["tsc (Bun adapter)", [
    ...tool("tsc"),
    "--noEmit",
    "-p",
    "tsconfig.bun.json",
  ]],
];

for (const [name, argv, run] of steps) {
  console.log(`\n=== check: ${name} ===`);
  console.log(`$ ${argv.join(" ")}`);
  if (run) {
    let status;
    try {
      status = run(argv);
    } catch (e) {
      console.error(`check.mjs: FAILED step "${name}": cannot start ${argv[0]}: ${e.message}`);
      process.exit(1);
    }
    if (status !== 0) {
      console.error(`check.mjs: FAILED step "${name}"`);
      process.exit(1);
    }
    continue;
  }
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.error) {
    console.error(
      `check.mjs: FAILED step "${name}": cannot start ${argv[0]}: ${r.error.message}`,
    );
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(
      `check.mjs: FAILED step "${name}" (exit ${r.status ?? r.signal})`,
    );
    process.exit(1);
  }
}
console.log("\ncheck.mjs: all checks passed");
