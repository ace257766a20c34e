// Black-box test of recovery after permanent quorum loss: three raftd nodes, two destroyed for good,
// the survivor recovered with -force-new-cluster keeps every write it acknowledged, and new members join.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { Cluster, FAST_FLAGS, formThree, type RaftdProcess, waitFor, waitForVoters } from "./harness.ts";

const T = { timeout: 120_000 };

describe("raftd -force-new-cluster (black box)", () => {
  const cluster = new Cluster();
  let n1: RaftdProcess, n2: RaftdProcess, n3: RaftdProcess;
  const acked = new Map<string, string>();

  before(async () => {
    [n1, n2, n3] = await formThree(cluster);
  });

  after(async () => {
    await cluster.cleanup();
  });

  test("every write the survivor acknowledged survives; it is refused while the others live", T, async () => {
    for (let i = 0; i < 40; i++) {
      const r = await n1.request("PUT", `/db/k${i}`, `v${i}`);
      assert.equal(r.status, 200, r.text);
      acked.set(`k${i}`, `v${i}`);
    }
    // With the other members alive, the quorum is not lost: refused, and nothing changes.
    assert.equal(await n1.stop("SIGTERM"), 0);
    n1.start([...FAST_FLAGS, "-force-new-cluster"]);
    assert.equal(await n1.exited, 1);
    assert.match(n1.output, /the cluster is not lost; refused/);
    n1.start(FAST_FLAGS);
    await waitForVoters([n1, n2, n3], 3);

    // n2 and n3 are destroyed for good.
    for (const n of [n2, n3]) {
      await n.stop("SIGKILL");
      rmSync(n.dataDir, { recursive: true, force: true });
    }
    // Without a quorum a write cannot commit; its answer says whether it might have been applied.
    const w = await n1.request("PUT", "/db/lost", "?");
    assert.ok(w.status === 503 || w.status === 504, `${w.status} ${w.text}`);
    const outcome = w.headers.get("x-raftd-outcome");
    if (w.status === 504) {
      assert.equal(outcome, "unknown");
      assert.equal(w.headers.has("retry-after"), false);
    } else {
      assert.equal(outcome, "not-applied");
      assert.ok(w.headers.has("retry-after"));
    }

    assert.equal(await n1.stop("SIGTERM"), 0);
    n1.start([...FAST_FLAGS, "-force-new-cluster"]);
    const s = await waitFor("n1 to lead alone", async () => {
      const s = await n1.status();
      return s?.role === "leader" ? s : undefined;
    }, 30_000).catch((e) => {
      throw new Error(`${e}\n${n1.output}`);
    });
    assert.match(n1.output, /FORCED A NEW CLUSTER/);
    assert.deepEqual(s.members.map((m) => m.id), ["n1"]);
    for (const [k, v] of acked) {
      const r = await n1.request("GET", `/db/${k}`);
      assert.equal(r.status, 200, `${k}: ${r.status} ${r.text}`);
      assert.equal(r.text, v);
    }
  });

  test("new members join the recovered cluster, and a second -force-new-cluster is refused", T, async () => {
    const n4 = await cluster.add("n4");
    const n5 = await cluster.add("n5");
    n4.start([...FAST_FLAGS, "-id", "n4", "-join", n1.address]);
    n5.start([...FAST_FLAGS, "-id", "n5", "-join", n1.address]);
    await waitForVoters([n1, n4, n5], 3).catch((e) => {
      throw new Error(`${e}\n${cluster.logs()}`);
    });
    assert.equal((await n4.request("PUT", "/db/after", "recovery")).status, 200);
    for (const [k, v] of [...acked, ["after", "recovery"]]) {
      assert.equal((await n5.request("GET", `/db/${k}`)).text, v, k);
    }
    // The flag left on a command line: the cluster has members that answer again.
    assert.equal(await n1.stop("SIGTERM"), 0);
    n1.output = "";
    n1.start([...FAST_FLAGS, "-force-new-cluster"]);
    assert.equal(await n1.exited, 1);
    assert.match(n1.output, /the cluster is not lost; refused/);
  });
});
