#!/usr/bin/env node
// Static checks: type-check (Deno, and tsc for the Bun adapter), lint, format,
// doc-lint of the pure entry points, and a JSR publish dry run.
// Prints each step; stops at the first failing step and names it.
//
// Usage: node scripts/check.mjs

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Entry points that `deno doc --lint` must pass. Only pure (non-Effect-typed)
 * modules: deno 2.9.6 reports `private-type-ref` for types from `effect`
 * even when imported. Drop `mod.ts` once it exports Effect-typed APIs.
 */
const DOC_LINT_ENTRY_POINTS = ["core/mod.ts", "mod.ts"];

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

for (const [name, argv] of steps) {
  console.log(`\n=== check: ${name} ===`);
  console.log(`$ ${argv.join(" ")}`);
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
