import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Effect, Layer, Schema } from "effect";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { layer, portsLayer, Raft, schemaCodec } from "../../effect.ts";
import { createNode, type RaftEvent } from "../../mod.ts";
import { testConfig, waitFor } from "./testkit.ts";

const Command = Schema.Struct({ op: Schema.Literals(["add", "sub"]), amount: Schema.Number });
type Command = typeof Command.Type;

describe("the public API", () => {
  test("a Schema command codec types and validates commands end to end", async () => {
    const hub = new MemoryHub();
    let total = 0;
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      command: schemaCodec(Command),
      stateMachine: {
        apply(c: Command): number {
          total += c.op === "add" ? c.amount : -c.amount;
          return total;
        },
      },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: hub.transport("a"),
      config: testConfig,
    });
    try {
      await waitFor(() => node.status().role === "leader");
      assert.equal(await node.propose({ op: "add", amount: 5 }), 5);
      assert.equal(await node.propose({ op: "sub", amount: 2 }), 3);
      // An invalid command never reaches the log.
      await assert.rejects(node.propose({ op: "mul", amount: 1 } as unknown as Command));
    } finally {
      await node.stop();
    }
  });

  test("subscribers see role, leader, term and commit events", async () => {
    const hub = new MemoryHub();
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: { apply: (n: number) => n },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: hub.transport("a"),
      config: testConfig,
    });
    const events: RaftEvent[] = [];
    const unsubscribe = node.subscribe((e) => events.push(e));
    try {
      await waitFor(() => node.status().role === "leader");
      await node.propose(1);
      assert.ok(events.some((e) => e.type === "role" && e.role === "leader"));
      assert.ok(events.some((e) => e.type === "leader" && e.leader === "a"));
      assert.ok(events.some((e) => e.type === "term" && e.term >= 1));
      assert.ok(events.some((e) => e.type === "commit"));
      unsubscribe();
      const seen = events.length;
      await node.propose(2);
      assert.equal(events.length, seen, "no events after unsubscribe");
    } finally {
      await node.stop();
    }
  });

  test("a state machine error fails only that proposal", async () => {
    const hub = new MemoryHub();
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: {
        apply(n: number): number {
          if (n < 0) throw new RangeError("negative");
          return n * 2;
        },
      },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: hub.transport("a"),
      config: testConfig,
    });
    try {
      await waitFor(() => node.status().role === "leader");
      await assert.rejects(node.propose(-1), RangeError);
      assert.equal(await node.propose(4), 8);
    } finally {
      await node.stop();
    }
  });

  test("the Effect API: layer(spec) provides the Raft service over Layers of stores and transport", async () => {
    const hub = new MemoryHub();
    const services = portsLayer({
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: hub.transport("solo"),
    });
    const nodeLayer = layer({
      id: "solo",
      peers: { solo: "solo" },
      command: Schema.String, // a Schema directly: the layer builds the codec
      stateMachine: { apply: (s: string) => s.toUpperCase() },
      config: testConfig,
    }).pipe(Layer.provide(services));
    const program = Effect.gen(function* () {
      const node = yield* Raft;
      yield* Effect.promise(() => waitFor(() => Effect.runSync(node.status).role === "leader"));
      const result = yield* node.propose("hello");
      const index = yield* node.readIndex;
      return { result, index };
    });
    const { result, index } = await Effect.runPromise(Effect.scoped(Effect.provide(program, nodeLayer)));
    assert.equal(result, "HELLO");
    assert.ok(index >= 2);
  });
});
