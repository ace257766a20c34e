import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type NodeStatus, RaftRejected } from "../../mod.ts";
import { HttpError } from "./http.ts";
import { KvStore } from "./kv.ts";
import { type KvNode, RaftdNodeService } from "./service.ts";

/** A node whose transfers are scripted: each call runs the next step; status is whatever the test set. */
function scriptedNode(steps: ((node: { status: Partial<NodeStatus> }) => Promise<void>)[]) {
  const node = {
    calls: 0,
    status: {
      id: "n1",
      role: "leader",
      leader: "n1",
      membership: { voters: ["n1", "n2", "n3"], learners: [], outgoing: undefined },
    } as Partial<NodeStatus>,
  };
  const kvNode = {
    id: "n1",
    status: () => node.status as NodeStatus,
    transferLeadership: (_to: string) => {
      const step = steps[Math.min(node.calls++, steps.length - 1)];
      return step(node);
    },
  } as unknown as KvNode;
  return { node, service: (requestTimeoutMs: number) => service(kvNode, requestTimeoutMs) };
}

function service(node: KvNode, requestTimeoutMs: number): RaftdNodeService {
  return new RaftdNodeService({
    node,
    kv: new KvStore(),
    address: "localhost:1",
    cluster: "c",
    addressOf: (id) => `${id}.local:1`,
    requestTimeoutMs,
  });
}

const abandoned = () => Promise.reject(new RaftRejected("timeout", "n1"));

describe("raftd /transfer over the node", () => {
  test("an abandoned transfer is tried again while the request timeout allows", async () => {
    const { node, service: make } = scriptedNode([abandoned, abandoned, () => Promise.resolve()]);
    await make(5000).transfer("n2");
    assert.equal(node.calls, 3);
  });

  test("an abandoned transfer whose target then wins succeeds without another try", async () => {
    const { node, service: make } = scriptedNode([(n) => {
      // TimeoutNow went out; the target's campaign outlasted the leader's transfer timer.
      n.status = { ...n.status, role: "follower", leader: undefined };
      setTimeout(() => (n.status = { ...n.status, leader: "n2" }), 50);
      return abandoned();
    }]);
    await make(5000).transfer("n2");
    assert.equal(node.calls, 1);
  });

  test("past the request timeout the abandoned transfer is a 503", async () => {
    const { node, service: make } = scriptedNode([abandoned]);
    const started = Date.now();
    await assert.rejects(make(200).transfer("n2"), (e) => e instanceof HttpError && e.status === 503);
    assert.ok(Date.now() - started >= 200, "kept trying until the deadline");
    assert.ok(node.calls >= 2, `tried again (${node.calls} calls)`);
  });

  test("another node winning the election ends it with that node's refusal", async () => {
    const { node, service: make } = scriptedNode([(n) => {
      n.status = { ...n.status, role: "follower", leader: "n3" };
      return abandoned();
    }]);
    await assert.rejects(make(5000).transfer("n2"), (e) => e instanceof HttpError && e.status === 503);
    assert.equal(node.calls, 1);
  });

  test("a refusal other than a timeout is not retried", async () => {
    const { node, service: make } = scriptedNode([() => Promise.reject(new RaftRejected("not-leader", "n3"))]);
    await assert.rejects(make(5000).transfer("n2"));
    assert.equal(node.calls, 1);
  });
});
