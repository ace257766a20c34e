import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type NodeStatus, type PeerProgress, RaftRejected } from "../../mod.ts";
import { HttpError } from "./http.ts";
import { KvStore } from "./kv.ts";
import { type KvNode, RaftdNodeService } from "./service.ts";

type Status = { -readonly [K in keyof NodeStatus]?: NodeStatus[K] };
type Step = (status: Status) => Promise<void>;

/** A leader "n1" of {n1, n2, n3} whose transfers are scripted: each call runs the next step (the last repeats). */
function scripted(steps: Step[], o: { requestTimeoutMs?: number; target?: Partial<PeerProgress> } = {}) {
  const progress = (p: Partial<PeerProgress>): PeerProgress => ({
    match: 5,
    next: 6,
    state: "replicate",
    learner: false,
    active: true,
    ...p,
  });
  const status: Status = {
    id: "n1",
    role: "leader",
    leader: "n1",
    commit: 5,
    membership: { voters: ["n1", "n2", "n3"], learners: [], outgoing: undefined },
    progress: new Map([["n2", progress(o.target ?? {})], ["n3", progress({})]]),
  };
  let calls = 0;
  const node = {
    id: "n1",
    status: () => status as NodeStatus,
    transferLeadership: (_to: string) => steps[Math.min(calls++, steps.length - 1)]!(status),
  } as unknown as KvNode;
  const service = new RaftdNodeService({
    node,
    kv: new KvStore(),
    address: "localhost:1",
    cluster: "c",
    addressOf: (id) => `${id}.local:1`,
    requestTimeoutMs: o.requestTimeoutMs ?? 5000,
    electionTimeoutMs: 100,
  });
  return { status, service, calls: () => calls };
}

const abandoned: Step = () => Promise.reject(new RaftRejected("timeout", "n1"));
/** The core handed over (the leader stepped down for `to`'s campaign), which `winner` then wins. */
const handOver = (winner: string): Step => (s) => {
  s.role = "follower";
  s.leader = undefined;
  setTimeout(() => (s.leader = winner), 30);
  return Promise.resolve();
};
const handedOver = handOver("n2");
const is503 = (e: unknown) => e instanceof HttpError && e.status === 503;

describe("raftd /transfer over the node", () => {
  test("an abandoned transfer to an active, caught-up target is tried again", async () => {
    const t = scripted([abandoned, abandoned, handedOver]);
    await t.service.transfer("n2");
    assert.equal(t.calls(), 3);
  });

  test("at most three tries: each refuses writes while it lasts", async () => {
    const t = scripted([abandoned]);
    await assert.rejects(t.service.transfer("n2"), is503);
    assert.equal(t.calls(), 3);
  });

  test("no try again while the target lags: writes flow until it holds the commit index", async () => {
    const t = scripted([abandoned, handedOver], { target: { match: 3 } });
    const done = t.service.transfer("n2");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(t.calls(), 1, "waits for the target");
    t.status.progress = new Map([...t.status.progress!, ["n2", { ...t.status.progress!.get("n2")!, match: 5 }]]);
    await done;
    assert.equal(t.calls(), 2);
  });

  test("an inactive target ends it at once", async () => {
    const t = scripted([abandoned], { target: { active: false } });
    const started = Date.now();
    await assert.rejects(t.service.transfer("n2"), is503);
    assert.equal(t.calls(), 1);
    assert.ok(Date.now() - started < 2000, "not held until the request timeout");
  });

  test("an abandoned transfer whose target then wins succeeds without another try", async () => {
    const t = scripted([(s) => {
      // TimeoutNow went out; the target's campaign outlasted the leader's transfer timer.
      s.role = "follower";
      s.leader = undefined;
      setTimeout(() => (s.leader = "n2"), 50);
      return abandoned(s);
    }]);
    await t.service.transfer("n2");
    assert.equal(t.calls(), 1);
  });

  test("no try that the request timeout would cut short", async () => {
    const t = scripted([abandoned], { requestTimeoutMs: 110 });
    await assert.rejects(t.service.transfer("n2"), is503);
    assert.equal(t.calls(), 1);
  });

  test("another node winning is said", async () => {
    const t = scripted([(s) => {
      s.role = "follower";
      s.leader = "n3";
      return abandoned(s);
    }]);
    await assert.rejects(t.service.transfer("n2"), (e) => is503(e) && /leadership went to n3, not n2/.test(String(e)));
    assert.equal(t.calls(), 1);
  });

  test("a hand-over is a success only once the target leads", async () => {
    const t = scripted([handOver("n3")]);
    await assert.rejects(t.service.transfer("n2"), (e) => is503(e) && /leadership went to n3, not n2/.test(String(e)));
    assert.equal(t.calls(), 1);
  });

  test("a refusal other than a timeout is not retried", async () => {
    const t = scripted([() => Promise.reject(new RaftRejected("not-leader", "n3"))]);
    await assert.rejects(t.service.transfer("n2"));
    assert.equal(t.calls(), 1);
  });

  test("a voter only of the outgoing configuration, or a learner, is refused before any try", async () => {
    const t = scripted([handedOver]);
    t.status.membership = { voters: ["n1", "n2"], learners: ["n4"], outgoing: ["n1", "n2", "n3"] };
    for (const to of ["n3", "n4"]) {
      await assert.rejects(t.service.transfer(to), (e) => e instanceof HttpError && e.status === 409);
    }
    await assert.rejects(t.service.transfer("n9"), (e) => e instanceof HttpError && e.status === 404);
    assert.equal(t.calls(), 0);
  });
});
