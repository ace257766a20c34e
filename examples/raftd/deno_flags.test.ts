import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { raftdDenoFlags } from "./deno_flags.ts";

const DENO = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url).href);

describe("raftd's Deno flags", () => {
  test("bound V8's heap growth: a heap-growing-percent below V8's own factor of up to 4x", () => {
    const flags = raftdDenoFlags();
    const growing = flags.join(" ").match(/--heap-growing-percent=(\d+)/);
    assert.ok(growing, `no --heap-growing-percent in ${flags.join(" ")}`);
    assert.ok(Number(growing[1]) > 0 && Number(growing[1]) < 300);
  });

  test("this repository's Deno accepts them (it refuses a V8 flag it does not know)", () => {
    const dir = mkdtempSync(join(tmpdir(), "plank-deno-flags-"));
    try {
      const script = join(dir, "ok.ts");
      writeFileSync(script, 'console.log("started");\n');
      const ok = spawnSync(DENO, ["run", ...raftdDenoFlags(), script], { encoding: "utf8" });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), "started");
      // The check above means something only if a wrong flag fails the same way.
      const bad = spawnSync(DENO, ["run", "--v8-flags=--heap-growing-percnt=50", script], { encoding: "utf8" });
      assert.notEqual(bad.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
