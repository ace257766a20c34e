// Black-box tests of raftd's command line: help, bad flags, a locked data directory.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { FAST_FLAGS, freePort, raftdCommand, RaftdProcess, tempDir, waitFor } from "./harness.ts";

function raftd(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const [cmd, ...rest] = raftdCommand();
  const r = spawnSync(cmd, [...rest, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("raftd command line (black box)", () => {
  const root = tempDir("raftd-cli-");
  const nodes: RaftdProcess[] = [];
  after(async () => {
    for (const n of nodes) await n.stop("SIGKILL").catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  test("--help documents every flag and exits 0", { timeout: 30_000 }, () => {
    const r = raftd(["--help"]);
    assert.equal(r.status, 0);
    for (const flag of ["-p", "-h", "-join", "-v", "-debug", "-trace", "-election-timeout", "-max-value"]) {
      assert.ok(r.stdout.includes(flag), `help mentions ${flag}`);
    }
  });

  test("bad flags and values: one-line error, usage, exit code 2", { timeout: 30_000 }, () => {
    for (const args of [["-bogus", "d"], ["-p", "notaport", "d"], ["-join", "nohostport", "d"], []]) {
      const r = raftd(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      const [first, ...rest] = r.stderr.split("\n");
      assert.match(first, /^raftd: /);
      assert.ok(rest.join("\n").includes("usage: raftd"), "usage follows the error");
    }
  });

  test("a second raftd on a data directory in use is refused", { timeout: 30_000 }, async () => {
    const dir = join(root, "n1");
    const first = new RaftdProcess("n1", await freePort(), dir);
    nodes.push(first);
    first.start(FAST_FLAGS);
    await waitFor("n1 up", async () => (await first.status()) ? true : undefined);
    const r = raftd(["-h", "127.0.0.1", "-p", String(await freePort()), dir]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot open/);
    assert.ok(first.running);
  });
});
