// The packages: what `npm pack` would publish (TypeScript sources for Bun and Deno, a JavaScript build
// for Node), that the build runs on Node, and that a service outside the repository can use the library.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);
const T = { timeout: 120_000 };

function run(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 110_000, env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const SERVICE = (from: string) => `
import { createNode } from "${from}";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "${
  from.replace(/mod\.(ts|js)$/, "adapters/memory/mod.$1")
}";
const counter = { total: 0 };
const node = await createNode({ id: "a", peers: { a: "a" }, stateMachine: { apply: (n) => (counter.total += n) },
  logStore: new MemoryLogStore(), snapshotStore: new MemorySnapshotStore(), transport: new MemoryHub().transport("a"),
  config: { electionTimeoutMs: 150, heartbeatMs: 30 } });
await node.waitForLeader(3000);
await node.propose(41);
console.log("total", await node.propose(1));
await node.stop();
`;

describe("packages", () => {
  test("npm pack: sources and the Node build, no tests, no data directories", T, () => {
    const r = run("npm", ["pack", "--dry-run", "--json", "--silent"], ROOT);
    assert.equal(r.status, 0, r.out);
    const files: string[] = JSON.parse(r.out.slice(r.out.indexOf("["), r.out.lastIndexOf("]") + 1))[0].files.map(
      (f: { path: string }) => f.path,
    );
    for (const f of ["mod.ts", "core/mod.ts", "adapters/bun/mod.ts", "dist/mod.js", "dist/mod.d.ts", "LICENSE"]) {
      assert.ok(files.includes(f), `${f} is published`);
    }
    const stray = files.filter((f) => /\.test\.ts$|^tests\/|^bench\/|^examples\/|^node\d|\/wal\//.test(f));
    assert.deepEqual(stray, []);
  });

  test("the Node build runs a node (createNode, memory adapters)", T, () => {
    const build = run(join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.npm.json"], ROOT);
    assert.equal(build.status, 0, build.out);
    const dir = mkdtempSync(join(tmpdir(), "plank-node-"));
    try {
      writeFileSync(join(dir, "service.mjs"), SERVICE(join(ROOT, "dist", "mod.js")));
      const r = run("node", ["service.mjs"], dir);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /total 42/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a service outside the repository: Deno with an import map naming effect, Bun as is", T, () => {
    const dir = mkdtempSync(join(tmpdir(), "plank-outside-"));
    try {
      writeFileSync(join(dir, "service.ts"), SERVICE(join(ROOT, "mod.ts")));
      // What README "Using plank from your own project" says: Deno resolves `effect` through an import map.
      writeFileSync(join(dir, "deno.json"), JSON.stringify({ imports: { effect: "npm:effect@^4.1.0" } }));
      const deno = run(
        join(ROOT, "node_modules/.bin/deno"),
        ["run", "-A", "--node-modules-dir=none", "service.ts"],
        dir,
      );
      const bun = run(join(ROOT, "node_modules/.bin/bun"), ["service.ts"], dir);
      assert.equal(bun.status, 0, bun.out);
      assert.match(bun.out, /total 42/);
      assert.match(deno.out, /total 42/, deno.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
