import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { createNode, type NodeId, OutcomeUnknown, type TransportPort } from "../../mod.ts";
import { KvMachine, startCluster, testConfig, waitFor, waitForLeader } from "./testkit.ts";

/** A hub transport that records every address book the node hands it. */
function recording(hub: MemoryHub, id: NodeId): { transport: TransportPort; books: Map<NodeId, string>[] } {
  const inner = hub.transport(id);
  const books: Map<NodeId, string>[] = [];
  return {
    books,
    transport: {
      ...inner,
      setPeers: (peers) => {
        books.push(new Map(peers));
        inner.setPeers(peers);
      },
    },
  };
}

const sorted = (m: ReadonlyMap<NodeId, string>): [NodeId, string][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

describe("request timeouts", () => {
  test("a forwarded proposal whose answer is lost fails with OutcomeUnknown, though it was applied", async () => {
    const c = await startCluster(["a", "b", "c"], { requestTimeoutMs: 300 });
    try {
      const leader = await waitForLeader(c);
      const follower = c.members.find((m) => m !== leader)!;
      c.hub.drop = (m) => m.type === "ProposeResponse";
      await assert.rejects(follower.node!.propose({ key: "lost", value: "1" }), (e: unknown) => {
        assert.ok(e instanceof OutcomeUnknown);
        assert.equal(e._tag, "OutcomeUnknown");
        assert.match(e.message, /may or may not have been applied/);
        return true;
      });
      // The outcome really was unknown to the caller: the leader did commit it.
      c.hub.drop = undefined;
      await waitFor(() => leader.machine.data.get("lost") === "1", 4000, "the lost proposal applied on the leader");
      // And the node keeps working.
      assert.equal(await follower.node!.propose({ key: "after", value: "2" }), undefined);
    } finally {
      await c.stopAll();
    }
  });

  test("a proposal forwarded to a leader that dies fails with OutcomeUnknown once the leader changes, not at the timeout", async () => {
    const c = await startCluster(["a", "b", "c"], { requestTimeoutMs: 60_000 });
    try {
      const leader = await waitForLeader(c);
      const follower = c.members.find((m) => m !== leader)!;
      c.hub.drop = (m) => m.type === "ProposeResponse"; // the answer never comes back
      const pending = follower.node!.propose({ key: "orphan", value: "1" });
      const started = Date.now();
      await leader.node!.stop(); // a new election follows
      await assert.rejects(pending, (e: unknown) => e instanceof OutcomeUnknown && /leader changed/.test(e.message));
      assert.ok(Date.now() - started < 30_000, "failed at the leader change, long before the 60 s timeout");
      c.hub.drop = undefined;
    } finally {
      await c.stopAll();
    }
  });

  test("a forwarded read whose answer is lost fails with OutcomeUnknown", async () => {
    const c = await startCluster(["a", "b", "c"], { requestTimeoutMs: 300 });
    try {
      const leader = await waitForLeader(c);
      const follower = c.members.find((m) => m !== leader)!;
      c.hub.drop = (m) => m.type === "ReadIndexResponse";
      await assert.rejects(follower.node!.readIndex(), OutcomeUnknown);
      c.hub.drop = undefined;
      assert.ok((await follower.node!.readIndex()) >= 1);
    } finally {
      await c.stopAll();
    }
  });
});

describe("the address book", () => {
  test("merges initial peers, addVoter/addLearner addresses and setPeerAddress; the transport always gets all of it", async () => {
    const hub = new MemoryHub();
    const { transport, books } = recording(hub, "a");
    const node = await createNode({
      id: "a",
      peers: { a: "a:1", b: "b:1", c: "c:1" },
      stateMachine: new KvMachine(),
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport,
      config: testConfig,
    });
    try {
      assert.deepEqual(sorted(books.at(-1)!), [["b", "b:1"], ["c", "c:1"]], "initial book, self excluded");
      node.setPeerAddress("x", "x:1");
      assert.deepEqual(sorted(books.at(-1)!), [["b", "b:1"], ["c", "c:1"], ["x", "x:1"]]);
      // A learner's address added through the membership change does not erase the others.
      void node.addLearner("d", "d:1").catch(() => {}); // no quorum: the outcome does not matter here
      assert.deepEqual(sorted(books.at(-1)!), [["b", "b:1"], ["c", "c:1"], ["d", "d:1"], ["x", "x:1"]]);
      // setPeers merges unless told to replace.
      node.setPeers({ b: "b:2", e: "e:1" });
      assert.deepEqual(sorted(books.at(-1)!), [["b", "b:2"], ["c", "c:1"], ["d", "d:1"], ["e", "e:1"], ["x", "x:1"]]);
      assert.equal(node.peerAddresses().get("a"), "a:1", "the book keeps this node's own address");
      node.setPeers(new Map([["a", "a:1"], ["c", "c:9"]]), { replace: true });
      assert.deepEqual(sorted(books.at(-1)!), [["c", "c:9"]]);
      assert.deepEqual(sorted(node.peerAddresses()), [["a", "a:1"], ["c", "c:9"]]);
    } finally {
      await node.stop();
    }
  });
});

describe("status", () => {
  test("the leader reports each peer's progress; a learner is marked and can be seen catching up", async () => {
    const c = await startCluster(["a", "b", "c"]);
    let joiner: Awaited<ReturnType<typeof createNode<KvMachine>>> | undefined;
    try {
      const leader = await waitForLeader(c);
      for (let i = 0; i < 20; i++) await leader.node!.propose({ key: `k${i}`, value: String(i) });
      for (const m of c.members) {
        if (m !== leader) assert.equal(m.node!.status().progress, undefined, "only the leader has progress");
      }
      const commit = leader.node!.status().commit;
      const progress = await waitFor(() => {
        const p = leader.node!.status().progress!;
        return [...p.values()].every((x) => x.match >= commit) ? p : undefined;
      });
      assert.deepEqual([...progress.keys()].sort(), c.members.filter((m) => m !== leader).map((m) => m.id).sort());
      for (const p of progress.values()) {
        assert.equal(p.state, "replicate");
        assert.equal(p.learner, false);
        assert.ok(p.next > p.match);
      }

      joiner = await createNode({
        id: "d",
        peers: { d: "d", ...Object.fromEntries(c.members.map((m) => [m.id, m.id])) },
        join: true,
        stateMachine: new KvMachine(),
        logStore: new MemoryLogStore(),
        snapshotStore: new MemorySnapshotStore(),
        transport: c.hub.transport("d"),
        config: testConfig,
      });
      await leader.node!.addLearner("d", "d");
      const target = leader.node!.status().commit;
      const caughtUp = await waitFor(
        () => {
          const d = leader.node!.status().progress?.get("d");
          return d !== undefined && d.match >= target ? d : undefined;
        },
        4000,
        "the learner catching up",
      );
      assert.equal(caughtUp.learner, true);
      await leader.node!.promote("d");
      assert.equal(leader.node!.status().progress?.get("d")?.learner, false);
    } finally {
      await joiner?.stop();
      await c.stopAll();
    }
  });
});
