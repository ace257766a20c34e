// The operator's calls of the library: status() (last index, applied, last contact, pid), barrier(),
// waitForLeader(), and recovery after permanent quorum loss (forceNewCluster).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createNode, forceNewCluster, RaftRejected, RecoveryRefused } from "../../mod.ts";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { KvMachine, startCluster, testConfig, waitFor, waitForLeader } from "./testkit.ts";

describe("operations API", () => {
  test("status() has the last index, the applied index, each peer's last contact and the pid", async () => {
    const cluster = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(cluster);
      await leader.node!.propose({ key: "k", value: "v" });
      const s = await waitFor(
        () => {
          const s = leader.node!.status();
          return s.lastContact.size === 2 && s.applied === s.lastIndex && s;
        },
        4000,
        "contact with both followers",
      );
      assert.ok(s.lastIndex >= 2, "the no-op and the proposal");
      assert.equal(s.pid, (globalThis as { process?: { pid?: number } }).process?.pid);
      for (const at of s.lastContact.values()) assert.ok(Date.now() - at < 2000, "recent");
      const follower = cluster.members.find((m) => m !== leader)!;
      const fs = follower.node!.status();
      assert.ok(fs.lastContact.has(leader.id), "a follower has heard from its leader");
    } finally {
      await cluster.stopAll();
    }
  });

  test("waitForLeader() resolves with the leader once elected, and times out as RaftRejected(timeout)", async () => {
    const cluster = await startCluster(["a", "b", "c"]);
    try {
      const id = await cluster.members[1]!.node!.waitForLeader(5000);
      assert.equal(id, (await waitForLeader(cluster)).id);
    } finally {
      await cluster.stopAll();
    }
    // A node alone in a three-node cluster never gets a leader.
    const lonely = await startCluster(["a", "b", "c"]);
    await Promise.all(lonely.members.slice(1).map((m) => m.node!.stop()));
    try {
      await assert.rejects(
        lonely.members[0]!.node!.waitForLeader(300),
        (e) => e instanceof RaftRejected && e.reason === "timeout",
      );
    } finally {
      await lonely.stopAll();
    }
  });

  test("barrier(): everything committed before it is applied here when it resolves", async () => {
    const cluster = await startCluster(["a", "b", "c"]);
    try {
      const leader = await waitForLeader(cluster);
      const follower = cluster.members.find((m) => m !== leader)!;
      const writes = Array.from({ length: 20 }, (_, i) => leader.node!.propose({ key: `k${i}`, value: `${i}` }));
      await Promise.all(writes);
      const committed = leader.node!.status().commit;
      const index = await follower.node!.barrier();
      assert.ok(index >= committed);
      assert.equal(follower.machine.data.get("k19"), "19");
    } finally {
      await cluster.stopAll();
    }
  });

  test("forceNewCluster: a survivor of a lost quorum becomes a one-member cluster with all it held; new members join", async () => {
    const peers = ["a", "b", "c"];
    const cluster = await startCluster(peers);
    const survivor = cluster.members[0]!;
    const acknowledged: string[] = [];
    try {
      await waitForLeader(cluster);
      for (let i = 0; i < 30; i++) {
        await survivor.node!.propose({ key: `k${i}`, value: `v${i}` });
        acknowledged.push(`k${i}`);
      }
    } finally {
      await cluster.stopAll();
    }
    // b and c are gone for good; a alone can elect no one: it is refused while it still has company.
    const forced = await forceNewCluster({ id: "a", logStore: survivor.log, snapshotStore: survivor.snapshots, peers });
    assert.deepEqual([...forced.previous.voters].sort(), ["a", "b", "c"]);
    await assert.rejects(
      forceNewCluster({ id: "a", logStore: survivor.log, snapshotStore: survivor.snapshots, peers }),
      RecoveryRefused,
      "a second recovery is refused: it is already alone",
    );

    const hub = new MemoryHub();
    const machine = new KvMachine();
    const a = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: machine,
      logStore: survivor.log,
      snapshotStore: survivor.snapshots,
      transport: hub.transport("a"),
      config: testConfig,
    });
    const fresh = new KvMachine();
    const d = await createNode({
      id: "d",
      peers: { a: "a", d: "d" },
      join: true,
      stateMachine: fresh,
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: hub.transport("d"),
      config: testConfig,
    });
    try {
      assert.equal(await a.waitForLeader(3000), "a");
      assert.deepEqual(a.status().membership.voters, ["a"]);
      await a.barrier();
      for (const key of acknowledged) assert.ok(machine.data.has(key), `${key} survived`);
      await a.addVoter("d", "d");
      await a.propose({ key: "after", value: "recovery" });
      await waitFor(() => fresh.data.get("after") === "recovery", 4000, "d to catch up");
      for (const key of acknowledged) assert.ok(fresh.data.has(key), `${key} reached the new member`);
      assert.deepEqual([...a.status().membership.voters].sort(), ["a", "d"]);
    } finally {
      await Promise.all([a.stop(), d.stop()]);
    }
  });

  test("forceNewCluster refuses stores with no log, and a node the configuration does not list", async () => {
    await assert.rejects(
      forceNewCluster({ id: "a", logStore: new MemoryLogStore(), snapshotStore: new MemorySnapshotStore() }),
      RecoveryRefused,
    );
    const cluster = await startCluster(["a", "b", "c"]);
    try {
      await (await waitForLeader(cluster)).node!.propose({ key: "k", value: "v" });
    } finally {
      await cluster.stopAll();
    }
    const m = cluster.members[0]!;
    await assert.rejects(
      forceNewCluster({ id: "z", logStore: m.log, snapshotStore: m.snapshots, peers: ["a", "b", "c"] }),
      RecoveryRefused,
    );
  });
});
