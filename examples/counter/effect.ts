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
import { layer, portsLayer, Raft } from "../../effect.ts"; // "@plank/raft/effect" when installed
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts"; // "@plank/raft/memory"

// Commands are typed and validated end to end: propose() only takes an Add.
const Add = Schema.Struct({ add: Schema.Number });
type Add = typeof Add.Type;

const hub = new MemoryHub();
const peers = { a: "a", b: "b", c: "c" };

/** One node as a Layer: its state machine, its ports, the Raft loop. */
function node(id: string) {
  const counter = { total: 0 };
  return layer({
    id,
    peers,
    command: Add,
    config: { electionTimeoutMs: 300, heartbeatMs: 50 },
    stateMachine: { apply: (c: Add) => (counter.total += c.add) },
  }).pipe(Layer.provide(portsLayer({
    logStore: new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: hub.transport(id),
  })));
}

/** Proposes ten increments through one node and reads the total back. */
const program = Effect.gen(function* () {
  const raft = yield* Raft;
  let total: unknown = 0;
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
