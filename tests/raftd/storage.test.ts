// Black-box tests of raftd's data directory: a damaged or missing identity,
// a start that cannot listen, and a write failure from outside (a file size
// limit, as a full disk would fail writes) that must end the process.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Cluster, FAST_FLAGS, type RaftdProcess, waitFor, waitForVoters } from "./harness.ts";

const T = { timeout: 90_000 };

describe("raftd data directory (black box)", () => {
  const cluster = new Cluster();
  after(() => cluster.cleanup());

  /** Starts a single-node cluster, writes a key, and stops it cleanly. */
  async function formed(name: string): Promise<RaftdProcess> {
    const n = await cluster.add(name);
    n.start(FAST_FLAGS);
    await waitFor(`${name} to lead`, async () => (await n.status())?.role === "leader" || undefined);
    assert.equal((await n.request("PUT", "/db/k", "v")).status, 200);
    assert.equal(await n.stop("SIGTERM"), 0, n.output);
    return n;
  }

  /** Starts `n` and expects it to refuse: exit code 1 and a line on stderr matching `why`. */
  async function refuses(n: RaftdProcess, why: RegExp): Promise<void> {
    n.output = "";
    n.start(FAST_FLAGS);
    assert.equal(await n.exited, 1, n.output);
    assert.match(n.output, why);
  }

  test("a flipped byte in raftd.json (the cluster id changed) is refused, naming the file", T, async () => {
    const n = await formed("flip");
    const file = join(n.dataDir, "raftd.json");
    const good = readFileSync(file, "utf8");
    const cluster = (JSON.parse(good) as { cluster: string }).cluster;
    const flipped = cluster.slice(0, -1) + (cluster.endsWith("0") ? "1" : "0");
    writeFileSync(file, good.replace(`"cluster": "${cluster}"`, `"cluster": "${flipped}"`));
    await refuses(n, /raftd\.json: checksum mismatch/);
    writeFileSync(file, good.replace('"checksum"', '"checksun"'));
    await refuses(n, /raftd\.json: no checksum/);
    writeFileSync(file, good);
    n.start(FAST_FLAGS);
    await waitFor("restart with the good file", async () => (await n.status())?.role === "leader" || undefined);
    assert.equal((await n.request("GET", "/db/k")).text, "v");
    await n.stop("SIGTERM");
  });

  test("a deleted raftd.json beside a log is refused: no new cluster over the old log", T, async () => {
    const n = await formed("noid");
    rmSync(join(n.dataDir, "raftd.json"));
    await refuses(n, /raftd\.json: missing, but the data directory holds a log/);
    assert.ok(!existsSync(join(n.dataDir, "raftd.json")), "nothing was written");
  });

  test("a deleted log beside raftd.json is refused", T, async () => {
    const n = await formed("nolog");
    rmSync(join(n.dataDir, "wal"), { recursive: true });
    await refuses(n, /its log .* is missing/);
  });

  test("a start that cannot listen writes nothing to a new data directory", T, async () => {
    const n = await cluster.add("busy");
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(n.port, "127.0.0.1", resolve));
    try {
      await refuses(n, /cannot listen/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const left = existsSync(n.dataDir) ? readdirSync(n.dataDir) : [];
    assert.deepEqual(left, [], "no identity, no log");
    // The port free again, the same directory starts a cluster.
    n.start(FAST_FLAGS);
    await waitFor("busy to lead", async () => (await n.status())?.role === "leader" || undefined);
    await n.stop("SIGTERM");
  });

  test(
    "a write that fails (file size limit, as a full disk) ends the follower's process non-zero; restarted, it catches up",
    {
      timeout: 120_000,
    },
    async () => {
      const n1 = await cluster.add("w1");
      const n2 = await cluster.add("w2");
      const n3 = await cluster.add("w3");
      n1.start(FAST_FLAGS);
      await waitFor("w1 to lead", async () => (await n1.status())?.role === "leader" || undefined);
      n2.start([...FAST_FLAGS, "-join", n1.address]);
      n3.start([...FAST_FLAGS, "-join", n1.address], { fileSizeLimitKiB: 256 });
      await waitForVoters([n1, n2, n3], 3);
      const leader = await cluster.leader();
      const value = "x".repeat(2048);
      const acked: string[] = [];
      for (let i = 0; i < 400 && n3.running; i++) {
        const r = await leader.request("PUT", `/db/k${i}`, value);
        assert.equal(r.status, 200, `${r.status} ${r.text}\n${cluster.logs()}`);
        acked.push(`k${i}`);
      }
      const code = await n3.exited;
      assert.ok(code !== 0 && code !== null, `w3 exited with ${code}\n${n3.output}`);
      const fatal = n3.output.split("\n").filter((l) => l.startsWith("raftd: fatal"));
      assert.equal(fatal.length, 1, n3.output);
      assert.match(fatal[0]!, /^raftd: fatal: storage .*(File too large|EFBIG).*; exiting$/);
      // The other two go on; restarted without the limit, w3 recovers from its files and catches up.
      for (let i = 0; i < 20; i++) {
        assert.equal((await leader.request("PUT", `/db/after${i}`, "y")).status, 200);
        acked.push(`after${i}`);
      }
      n3.start(FAST_FLAGS);
      await waitFor("w3 to catch up", async () => {
        const [s, l] = [await n3.status(), await leader.status()];
        return s !== undefined && l !== undefined && s.applied >= l.commit || undefined;
      }, 40_000);
      for (const key of acked) {
        const r = await n3.request("GET", `/db/${key}?stale=true`);
        assert.equal(r.status, 200, `${key} on w3: ${r.status}`);
      }
    },
  );
});
