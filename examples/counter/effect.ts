/**
 * A replicated counter with the Effect API: three nodes as `Raft`
 * services, Schema-typed commands, in-memory ports (swap in your own Layers
 * for files and sockets). Runs on Deno and Bun:
 *
 *   npx -y deno run -A examples/counter/effect.ts
 *   npx -y bun examples/counter/effect.ts
 *
 * @module
 */

import { Effect, Layer, Schema } from "effect";
import { layer, portsLayer, raftService } from "../../effect.ts"; // "@plank/raft/effect" when installed
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts"; // "@plank/raft/memory"

// Commands are typed and validated end to end: propose() only takes an Add, and returns a number.
const Add = Schema.Struct({ add: Schema.Number });
const Counter = raftService<typeof Add.Type, number>("examples/Counter");

const hub = new MemoryHub();
const peers = { a: "a", b: "b", c: "c" };

/** One node as a Layer: its state machine, its ports, the Raft loop. */
function node(id: string) {
  const counter = { total: 0 };
  return layer(Counter, {
    id,
    peers,
    command: Add,
    config: { electionTimeoutMs: 300, heartbeatMs: 50 },
    stateMachine: { apply: (c) => (counter.total += c.add) }, // c: Add
  }).pipe(Layer.provide(portsLayer({
    logStore: new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: hub.transport(id),
  })));
}

/** Proposes ten increments through one node and reads the total back. */
const program = Effect.gen(function* () {
  const raft = yield* Counter;
  let total = 0;
  for (let i = 1; i <= 10; i++) total = yield* raft.propose({ add: i });
  const status = yield* raft.status;
  return { total, leader: status.leader };
});

// Build all three nodes in one scope; closing it stops them cleanly.
const result = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const [a] = yield* Effect.all([Layer.build(node("a")), Layer.build(node("b")), Layer.build(node("c"))]);
  return yield* Effect.provideContext(program, a!);
})));
console.log(`total after 10 increments: ${result.total}; leader: ${result.leader}`); // 55
