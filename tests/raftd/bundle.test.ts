// raftd built as one module (scripts/bundle_raftd.mjs, what the bench runs) behaves as its source: it starts, takes a
// joining member over the peer transport, forwards a write and stops cleanly on SIGTERM.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cluster, FAST_FLAGS, freePort, RaftdProcess, waitFor, waitForVoters } from "./harness.ts";

const SCRIPT = fileURLToPath(new URL("../../scripts/bundle_raftd.mjs", import.meta.url).href);
const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";

describe("raftd bundled", () => {
  const cluster = new Cluster();
  after(() => cluster.cleanup());

  test(
    `the ${runtime} bundle forms a cluster, forwards a write and stops on SIGTERM`,
    { timeout: 90_000 },
    async () => {
      const out = join(cluster.root, "bundle");
      const built = spawnSync("node", [SCRIPT, runtime, "--out", out], { encoding: "utf8", timeout: 60_000 });
      assert.equal(built.status, 0, built.stderr);
      const entry = join(out, `${runtime}.js`);
      assert.ok(existsSync(entry), `${entry} written`);
      assert.equal(built.stdout.trim(), entry);

      const add = async (name: string) => {
        const node = new RaftdProcess(name, await freePort(), join(cluster.root, name), entry);
        cluster.nodes.push(node);
        return node;
      };
      const a = await add("a");
      const b = await add("b");
      a.start([...FAST_FLAGS, "-id", "a"]);
      await waitFor("a leads", async () => (await a.status())?.role === "leader" || undefined);
      b.start([...FAST_FLAGS, "-id", "b", "-join", a.address]);
      await waitForVoters([a], 2);
      const put = await b.request("PUT", "/db/greeting", "hello");
      assert.equal(put.status, 200, `${put.text}\n${cluster.logs()}`);
      const got = await a.request("GET", "/db/greeting");
      assert.deepEqual([got.status, got.text], [200, "hello"]);
      assert.equal(await b.stop("SIGTERM"), 0, cluster.logs());
      assert.equal(await a.stop("SIGTERM"), 0, cluster.logs());
    },
  );
});
