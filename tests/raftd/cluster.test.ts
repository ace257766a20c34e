// Black-box tests of raftd: real processes of this runtime, real ports, real
// files, real SIGKILL. Only the command line and the HTTP API are used.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { AckedWrites, Cluster, FAST_FLAGS, type RaftdProcess, waitFor, waitForVoters } from "./harness.ts";

const T = { timeout: 60_000 };

describe("raftd cluster (black box)", () => {
  const cluster = new Cluster();
  let n1: RaftdProcess, n2: RaftdProcess, n3: RaftdProcess;
  /** Every write that was acknowledged with 200: key → value. */
  const writes = new AckedWrites(cluster);
  const acked = writes.acked;
  const write = (node: RaftdProcess, key: string, value: string) => writes.write(node, key, value);
  const assertAllAcked = (node: RaftdProcess) => writes.assertAll(node);

  before(async () => {
    n1 = await cluster.add("n1");
    n2 = await cluster.add("n2");
    n3 = await cluster.add("n3");
  });

  after(async () => {
    await cluster.cleanup();
  });

  test("three nodes form a cluster with -join", T, async () => {
    n1.start(FAST_FLAGS);
    await waitFor("n1 to lead", async () => (await n1.status())?.role === "leader" || undefined);
    n2.start([...FAST_FLAGS, "-join", n1.address]);
    n3.start([...FAST_FLAGS, "-join", n1.address]);
    try {
      await waitForVoters([n1, n2, n3], 3);
    } catch (e) {
      throw new Error(`${e}\n${cluster.logs()}`);
    }
    const s = (await n2.status())!;
    assert.deepEqual(s.members.map((m) => m.address).sort(), [n1.address, n2.address, n3.address].sort());
    for (const f of ["id", "role", "term", "leader", "commit", "applied", "members"]) assert.ok(f in s, f);
  });

  test("writes sent to any node are read back alike from every node", T, async () => {
    for (const [i, n] of [n1, n2, n3].entries()) await write(n, `key${i}`, `value from ${n.name}`);
    await write(n3, "shared", "first");
    await write(n2, "shared", "second");
    for (const n of [n1, n2, n3]) await assertAllAcked(n);
    const stale = await waitFor("stale read to catch up", async () => {
      const r = await n3.request("GET", "/db/shared?stale=true");
      return r.text === "second" ? r : undefined;
    });
    assert.equal(stale.status, 200);
  });

  test("compare-and-set and delete through a follower", T, async () => {
    const leader = await cluster.leader();
    const follower = [n1, n2, n3].find((n) => n !== leader)!;
    await write(follower, "cas", "a");
    assert.equal((await follower.request("POST", "/db/cas?prev=b", "c")).status, 412);
    assert.equal((await follower.request("POST", "/db/cas?prev=a", "c")).status, 200);
    acked.set("cas", "c");
    await write(leader, "gone", "x");
    assert.equal((await follower.request("DELETE", "/db/gone")).status, 200);
    acked.delete("gone");
    for (const n of [n1, n2, n3]) assert.equal((await n.request("GET", "/db/gone")).status, 404);
  });

  test("bad input gets a 4xx with a one-line reason and the node keeps serving", T, async () => {
    const n = n2;
    const cases: [string, string, string | Uint8Array | undefined, number][] = [
      ["PUT", "/db/", "v", 400],
      ["PUT", `/db/${"k".repeat(1025)}`, "v", 400],
      ["PUT", "/db/bad%01key", "v", 400],
      ["PUT", "/db/..%2F..%2Fetc%2Fpasswd", "v", 400],
      ["PUT", "/db/%ZZ", "v", 400],
      ["PUT", "/db/big", new Uint8Array(1024 * 1024 + 1), 413],
      ["GET", "/db/k?bogus=1", undefined, 400],
      ["GET", "/db/k?stale=perhaps", undefined, 400],
      ["POST", "/join", "{not json", 400],
      ["POST", "/join", JSON.stringify({ id: "x" }), 400],
      ["POST", "/transfer", undefined, 400],
      ["GET", "/db/never-set", undefined, 404],
      ["GET", "/no/such/endpoint", undefined, 404],
      ["DELETE", "/members/nobody", undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await n.request(method, path, body);
      assert.equal(r.status, status, `${method} ${path.slice(0, 40)}: ${r.text}`);
      assert.equal(r.text.trimEnd().split("\n").length, 1, `one line for ${method} ${path.slice(0, 40)}`);
    }
    for (
      const [method, path, allow] of [["PATCH", "/db/k", "GET"], ["POST", "/status", "GET"], ["GET", "/join", "POST"]]
    ) {
      const r = await n.request(method, path, method === "GET" ? undefined : "x");
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.ok(r.headers.get("allow")?.includes(allow), `Allow on ${method} ${path}`);
    }
    assert.ok(n.running);
    await write(n, "after-bad-input", "still fine");
    const metrics = await n.request("GET", "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^plank_term\{node="[^"]+",group="0"\} \d+$/m);
    assert.match(metrics.text, /^raftd_errors_total\{status="413"\} 1$/m);
  });

  test("leadership transfer and member removal, asked of a follower", T, async () => {
    const leader = await cluster.leader();
    const [follower, target] = [n1, n2, n3].filter((n) => n !== leader);
    const targetId = (await target.status())!.id;
    const r = await follower.request("POST", `/transfer?to=${targetId}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(await cluster.leader(), target);

    const n4 = await cluster.add("n4");
    n4.start([...FAST_FLAGS, "-join", follower.address]);
    const id4 = await waitFor("n4 to become a voter", async () => {
      const s = await target.status();
      const m = s?.members.find((m) => m.address === n4.address && m.suffrage === "voter");
      return m?.id;
    }, 40_000);
    await assertAllAcked(n4);
    const del = await follower.request("DELETE", `/members/${id4}`);
    assert.equal(del.status, 200, del.text);
    const members = (await target.status())!.members.map((m) => m.id);
    assert.ok(!members.includes(id4), "n4 removed");
    assert.equal(members.length, 3);
    await n4.stop("SIGKILL");
  });

  test("SIGKILL of the leader: another node takes over and serves writes", T, async () => {
    const old = await cluster.leader();
    const oldId = (await old.status())!.id;
    assert.equal(await old.stop("SIGKILL"), null);
    const next = await cluster.leader();
    assert.notEqual(next, old);
    const survivor = [n1, n2, n3].find((n) => n !== old && n !== next)!;
    await write(survivor, "after-kill", "new leader");
    // Leadership cannot go to the dead node: refused (503, nothing applied), and the leader stays.
    const moved = await next.request("POST", `/transfer?to=${oldId}`);
    assert.equal(moved.status, 503, moved.text);
    assert.equal(moved.headers.get("x-raftd-outcome"), "not-applied");
    assert.equal(await cluster.leader(), next);
    await write(next, "after-kill-2", "also");
    for (const n of [next, survivor]) await assertAllAcked(n);

    // Restart without -join: it finds its cluster from its data directory and catches up.
    old.start(FAST_FLAGS);
    await waitFor(`${old.name} to catch up`, async () => {
      const r = await old.request("GET", "/db/after-kill-2?stale=true");
      return r.status === 200 || undefined;
    });
    await write(old, "from-restarted", "yes");
    for (const n of [n1, n2, n3]) await assertAllAcked(n);
  });

  test("SIGTERM stops a node cleanly and releases its data directory", T, async () => {
    const node = (await cluster.leader()) === n3 ? n1 : n3;
    assert.ok(node.running, `${node.name} should be running\n${cluster.logs()}`);
    assert.equal(await node.stop("SIGTERM"), 0, `exit code after SIGTERM\n${node.output}`);
    node.start(FAST_FLAGS);
    await waitFor(`${node.name} back`, async () => (await node.status())?.leader ? true : undefined);
    await assertAllAcked(node);
  });

  test(
    "without a quorum: a write's outcome is unknown (504), a read is 503 with Retry-After, stale reads served",
    T,
    async () => {
      const leader = await cluster.leader();
      const [a, b] = [n1, n2, n3].filter((n) => n !== leader);
      await a.stop("SIGKILL");
      await b.stop("SIGKILL");
      // Appended by the leader but not committed: it may yet commit, so nobody may say it did not happen.
      const r = await leader.request("PUT", "/db/no-quorum", "x");
      assert.equal(r.status, 504, r.text);
      assert.equal(r.headers.get("x-raftd-outcome"), "unknown");

      const read = await leader.request("GET", "/db/key0");
      assert.equal(read.status, 503, read.text);
      assert.ok(read.headers.has("retry-after"));
      assert.equal((await leader.request("GET", "/db/key0?stale=true")).status, 200);
    },
  );
});
