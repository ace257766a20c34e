/**
 * Interrupting a proposal (issue 13): before it is handed to the leader it
 * is cancelled and never applied; after, it may still commit, and then its
 * outcome is logged and counted — never silently dropped. The Promise API
 * does the same through an `AbortSignal`.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Cause, Context, Effect, Exit, Fiber, Layer, Logger, Metric } from "effect";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { layer, portsLayer, Raft } from "../../effect.ts";
import { createNode, type LogRecord, OutcomeUnknown, ProposalCancelled } from "../../mod.ts";
import { testConfig, waitFor } from "./testkit.ts";

interface Line {
  readonly level: string;
  readonly message: string;
}

/** A sync that waits, once armed, until the test opens it; `entered` resolves when a sync waits. */
function gatedSync() {
  let armed = false;
  let open: () => void = () => {};
  let entered: () => void = () => {};
  const reached = new Promise<void>((r) => (entered = r));
  const opened = new Promise<void>((r) => (open = r));
  const store = new MemoryLogStore({
    beforeSync: () => {
      if (!armed) return Promise.resolve();
      entered();
      return opened;
    },
  });
  return { store, arm: () => void (armed = true), reached, open: () => open() };
}

function observed() {
  const lines: Line[] = [];
  const registry: Metric.MetricRegistry = new Map();
  const logger = Logger.make((o) => {
    lines.push({ level: o.logLevel, message: Array.isArray(o.message) ? o.message.join(" ") : String(o.message) });
  });
  const count = (name: string, attribute?: [string, string]) =>
    Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry))
      .filter((m) => m.id === name && (!attribute || m.attributes?.[attribute[0]] === attribute[1]))
      .reduce((n, m) => n + Number((m.state as { count: number }).count), 0);
  const provide = <A, E>(program: Effect.Effect<A, E>) =>
    program.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(Metric.MetricRegistry, registry));
  return { lines, count, provide };
}

function node(id: string, peers: Record<string, string>, hub: MemoryHub, applied: number[], log?: MemoryLogStore) {
  return layer({
    id,
    peers,
    config: testConfig,
    stateMachine: { apply: (n: number) => void applied.push(n) },
  }).pipe(Layer.provide(portsLayer({
    logStore: log ?? new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: hub.transport(id),
  })));
}

describe("interrupting a proposal", () => {
  test("before it reaches a leader, it is cancelled and never applied", { timeout: 30_000 }, async () => {
    const hub = new MemoryHub();
    const peers = { a: "a", b: "b", c: "c" };
    const applied = { a: [] as number[], b: [] as number[], c: [] as number[] };
    const { count, provide } = observed();
    await Effect.runPromise(provide(Effect.scoped(Effect.gen(function* () {
      const a = Context.get(yield* Layer.build(node("a", peers, hub, applied.a)), Raft);
      // Alone, a cannot elect anyone: the proposal waits on a for a leader, and the timeout interrupts it.
      const exit = yield* Effect.exit(Effect.timeout(a.propose(1), "100 millis"));
      assert.ok(Exit.isFailure(exit) && Cause.hasFails(exit.cause), String(exit));
      const reason = exit.cause.reasons.find(Cause.isFailReason);
      assert.ok(reason && Cause.isTimeoutError(reason.error), String(exit.cause));
      // Now b and c come up, a leader is elected, and a proposes again.
      yield* Layer.build(node("b", peers, hub, applied.b));
      yield* Layer.build(node("c", peers, hub, applied.c));
      yield* a.propose(2);
      yield* Effect.promise(() => waitFor(() => Object.values(applied).every((l) => l.includes(2)), 5000, "applied"));
    }))));
    for (const [id, list] of Object.entries(applied)) assert.deepEqual(list, [2], `${id} never applied the first`);
    assert.equal(count("plank_proposals_cancelled_total"), 1);
  });

  test("after it reached the leader, it may still commit: its outcome is logged and counted", async () => {
    const hub = new MemoryHub();
    const applied: number[] = [];
    const gate = gatedSync();
    const { lines, count, provide } = observed();
    await Effect.runPromise(provide(Effect.scoped(Effect.gen(function* () {
      const solo = Context.get(yield* Layer.build(node("solo", { solo: "solo" }, hub, applied, gate.store)), Raft);
      yield* Effect.promise(() => waitFor(() => Effect.runSync(solo.status).role === "leader"));
      yield* solo.propose(1);
      gate.arm();
      const fiber = yield* Effect.forkChild(solo.propose(2));
      yield* Effect.promise(() => gate.reached); // appended and being written: handed over
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)));
      assert.ok(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), String(exit));
      gate.open();
      yield* Effect.promise(() => waitFor(() => applied.includes(2), 5000, "applied"));
      yield* Effect.promise(() => waitFor(() => count("plank_proposals_abandoned_total") === 1, 5000, "counted"));
    }))));
    assert.deepEqual(applied, [1, 2], "it committed");
    assert.equal(count("plank_proposals_abandoned_total", ["outcome", "applied"]), 1);
    assert.ok(lines.some((l) => l.level === "Warn" && /whose caller gave up was applied at index \d+/.test(l.message)));
  });

  test("proposes timed out at 0 ms are each either cancelled, or applied and reported", async () => {
    const hub = new MemoryHub();
    const applied: number[] = [];
    const { lines, count, provide } = observed();
    // A disk slower than a 0 ms timer: the timeouts win, some before the loop takes the proposal, some after.
    const slow = new MemoryLogStore({ beforeSync: () => new Promise((r) => setTimeout(r, 2)) });
    let timedOut = 0;
    await Effect.runPromise(provide(Effect.scoped(Effect.gen(function* () {
      const solo = Context.get(yield* Layer.build(node("solo", { solo: "solo" }, hub, applied, slow)), Raft);
      yield* Effect.promise(() => waitFor(() => Effect.runSync(solo.status).role === "leader"));
      for (let i = 1; i <= 20; i++) {
        const exit = yield* Effect.exit(Effect.timeout(solo.propose(i), 0));
        if (Exit.isFailure(exit)) timedOut++;
      }
      yield* solo.propose(100); // after every earlier one in the log
    }))));
    const reported = lines.filter((l) => /whose caller gave up was applied/.test(l.message)).length;
    const cancelled = count("plank_proposals_cancelled_total");
    assert.ok(timedOut > 0, "some timed out");
    assert.equal(applied.length - 1, 20 - timedOut + reported, "every applied one answered or reported");
    assert.equal(cancelled + reported, timedOut, "every timed-out one cancelled or reported");
  });
});

describe("aborting a proposal of the Promise API", () => {
  test("aborted before it reaches a leader it is cancelled; after, it fails with OutcomeUnknown and is logged", {
    timeout: 30_000,
  }, async () => {
    const hub = new MemoryHub();
    const peers = { a: "a", b: "b", c: "c" };
    const records: LogRecord[] = [];
    const applied = new Map<string, number[]>();
    const nodes = await Promise.all(
      Object.keys(peers).map((id) => {
        applied.set(id, []);
        return createNode({
          id,
          peers,
          stateMachine: { apply: (n: number) => void applied.get(id)!.push(n) },
          logStore: new MemoryLogStore(),
          snapshotStore: new MemorySnapshotStore(),
          transport: hub.transport(id),
          config: testConfig,
          requestTimeoutMs: 1000,
          logger: (r) => void records.push(r),
        });
      }),
    );
    try {
      // No leader yet: the first election is a few timeouts away.
      const early = new AbortController();
      const first = nodes[0]!.propose(1, { signal: early.signal });
      early.abort();
      await assert.rejects(first, ProposalCancelled);
      await assert.rejects(nodes[0]!.propose(1, { signal: early.signal }), ProposalCancelled, "already aborted");
      await waitFor(() => nodes.some((n) => n.status().role === "leader"));
      const follower = await waitFor(
        () => nodes.find((n) => n.status().role === "follower" && n.status().leader !== undefined),
        4000,
        "a follower that knows the leader",
      );
      // Forwarded to the leader (handed over), but the leader never hears it: its outcome stays unknown.
      let forwarded = false;
      hub.drop = (m) => m.type === "Propose" && m.from === follower.id && (forwarded = true);
      const late = new AbortController();
      const second = follower.propose(2, { signal: late.signal });
      // Abort only once the follower has sent it (a fixed sleep lost that race on a busy machine:
      // aborted before the loop took it, it was cancelled instead).
      await waitFor(() => forwarded, 10_000, "the proposal forwarded to the leader");
      late.abort();
      await assert.rejects(second, OutcomeUnknown);
      const said = (re: RegExp) => records.find((r) => r.annotations.node === follower.id && re.test(r.message));
      assert.ok(said(/caller gave up after it was handed to the leader: it may still commit/));
      // Its request timeout ends it: the outcome is reported, though nobody waits for it.
      const line = await waitFor(() => said(/whose caller gave up failed: outcome unknown/), 5000, "reported");
      assert.equal(line.level, "warn");
      assert.equal(line.annotations.node, follower.id);
      const abandoned = follower.metrics().find((m) => m.name === "plank_proposals_abandoned_total");
      assert.ok(abandoned && abandoned.type === "counter" && abandoned.value === 1);
      assert.equal(abandoned.attributes.outcome, "OutcomeUnknown");
      hub.drop = undefined;
      await nodes[0]!.propose(3);
      await waitFor(() => [...applied.values()].every((l) => l.includes(3)), 5000, "applied");
      for (const [id, list] of applied) assert.deepEqual(list, [3], `${id} applied only the last`);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});
