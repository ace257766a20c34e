/**
 * One clock: every wait in the interpreter goes through Effect's `Clock`, so
 * `TestClock` drives a whole cluster — elections, heartbeats, and request
 * timeouts — through the public Effect API, with no real time passing.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Context, Effect, Exit, Fiber, Layer } from "effect";
import { TestClock } from "effect/testing";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { layer, portsLayer, Raft } from "../../effect.ts";
import { OutcomeUnknown } from "../../mod.ts";

const ids = ["a", "b", "c"];
const peers = Object.fromEntries(ids.map((id) => [id, id]));
const config = { electionTimeoutMs: 1000, heartbeatMs: 100 };

function node(hub: MemoryHub, id: string, total: { value: number }) {
  return layer({
    id,
    peers,
    config,
    requestTimeoutMs: 5000,
    stateMachine: { apply: (n: number) => (total.value += n) },
  }).pipe(Layer.provide(portsLayer({
    logStore: new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: hub.transport(id),
  })));
}

/** Advances virtual time in small steps until `done` holds (letting the fibers run in between). */
function advanceUntil(done: () => boolean, maxMs: number): Effect.Effect<boolean> {
  return Effect.gen(function* () {
    for (let t = 0; t < maxMs && !done(); t += 50) {
      yield* TestClock.adjust(50);
      yield* Effect.yieldNow;
    }
    return done();
  });
}

describe("TestClock drives the interpreter", () => {
  test("a 3-node cluster elects, commits, and times a request out, all in virtual time", async () => {
    const hub = new MemoryHub();
    const totals = ids.map(() => ({ value: 0 }));
    const wallStart = performance.now();
    const program = Effect.gen(function* () {
      const contexts = yield* Effect.all(ids.map((id, i) => Layer.build(node(hub, id, totals[i]!))));
      const nodes = contexts.map((ctx) => Context.get(ctx, Raft));
      const roles = () => nodes.map((n) => Effect.runSync(n.status).role);
      assert.ok(yield* advanceUntil(() => roles().includes("leader"), 20_000), "a leader in virtual time");
      const leader = nodes[roles().indexOf("leader")]!;
      for (let i = 1; i <= 10; i++) {
        const fiber = yield* Effect.forkChild(leader.propose(i));
        yield* advanceUntil(() => fiber.pollUnsafe() !== undefined, 5000);
        assert.equal(yield* Fiber.join(fiber), (i * (i + 1)) / 2);
      }
      // A follower whose forwarded proposal is lost on the way waits for its timeout — virtual time.
      const follower = nodes.find((n) => Effect.runSync(n.status).role === "follower")!;
      hub.drop = (m) => m.type === "Propose";
      const lost = yield* Effect.forkChild(Effect.exit(follower.propose(100)));
      yield* advanceUntil(() => false, 4900);
      assert.equal(lost.pollUnsafe(), undefined, "still waiting before requestTimeoutMs of virtual time");
      yield* advanceUntil(() => lost.pollUnsafe() !== undefined, 1000);
      const exit = yield* Fiber.join(lost);
      assert.ok(Exit.isFailure(exit));
      const error = exit.cause.reasons.find((r) => r._tag === "Fail");
      assert.ok(error && error._tag === "Fail" && error.error instanceof OutcomeUnknown, String(exit.cause));
    });
    await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(TestClock.layer())));
    assert.equal(totals[0]!.value, 55);
    assert.ok(performance.now() - wallStart < 20_000, "virtual, not wall, time");
  });
});
