/**
 * Typed end to end (issue 13): with a Schema, a command's input type is the
 * Schema's `Type` and the result type the state machine's, in both APIs; a
 * wrong command does not compile (the `@ts-expect-error` lines below fail the
 * type check — `deno check`, `tsc` — if it ever does); the Effect API's
 * errors are exactly typed: codec failures are `CommandCodecError`, what
 * `apply` throws an `ApplyFailure`, the rest `RaftError`.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Effect, Layer, Schema } from "effect";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import {
  ApplyFailure,
  CommandCodecError,
  layer,
  portsLayer,
  type ProposeError,
  Raft,
  raftService,
  schemaCodec,
} from "../../effect.ts";
import { createNode, type RaftError } from "../../mod.ts";
import { testConfig, waitFor } from "./testkit.ts";

const Add = Schema.Struct({ add: Schema.Number });
type Add = typeof Add.Type;
/** A counter node: `{ add }` in, the new total out. */
const Counter = raftService<Add, number>("test/Counter");

const solo = { id: "solo", peers: { solo: "solo" }, config: testConfig };
const ports = () =>
  portsLayer({
    logStore: new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: new MemoryHub().transport("solo"),
  });

/** Exactly equal types, or a compile error where it is used with `true`. */
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe("typed end to end", () => {
  test("Effect API: a typed key gives propose the Schema's Type and the state machine's result", async () => {
    let total = 0;
    const counter = layer(Counter, {
      ...solo,
      command: Add,
      stateMachine: { apply: (c) => (total += c.add) }, // c: Add, inferred from the key
    }).pipe(Layer.provide(ports()));
    const program = Effect.gen(function* () {
      const node = yield* Counter;
      yield* Effect.promise(() => waitFor(() => Effect.runSync(node.status).role === "leader"));
      const first: number = yield* node.propose({ add: 2 });
      const second: number = yield* node.propose({ add: 3 });
      return [first, second];
    });
    assert.deepEqual(await Effect.runPromise(Effect.scoped(Effect.provide(program, counter))), [2, 5]);
  });

  test("Effect API: codec failures are CommandCodecError, apply's throws ApplyFailure, each its own tag", async () => {
    const node = layer({
      ...solo,
      command: Add,
      stateMachine: {
        apply: (c: Add) => {
          if (c.add < 0) throw new RangeError("negative");
          return c.add;
        },
      },
    }).pipe(Layer.provide(ports()));
    const program = Effect.gen(function* () {
      const raft = yield* Raft; // the default key: untyped, still validated by the Schema
      yield* Effect.promise(() => waitFor(() => Effect.runSync(raft.status).role === "leader"));
      const tagOf = (e: Effect.Effect<unknown, ProposeError>) => e.pipe(Effect.flip, Effect.map((error) => error._tag));
      const bad = yield* raft.propose({ add: "x" }).pipe(Effect.flip);
      const negative = yield* raft.propose({ add: -1 }).pipe(Effect.flip);
      return { bad, negative, tags: [yield* tagOf(raft.propose(null)), yield* tagOf(raft.propose({ add: -2 }))] };
    });
    const { bad, negative, tags } = await Effect.runPromise(Effect.scoped(Effect.provide(program, node)));
    assert.ok(bad instanceof CommandCodecError && bad.phase === "encode", String(bad));
    assert.ok(negative instanceof ApplyFailure && negative.cause instanceof RangeError, String(negative));
    assert.equal(typeof negative.index, "number");
    assert.deepEqual(tags, ["CommandCodecError", "ApplyFailure"]);
  });

  test("Promise API: a Schema codec types propose and its result; apply's throws reach the caller as thrown", async () => {
    let sum = 0;
    const node = await createNode({
      ...solo,
      command: schemaCodec(Add),
      stateMachine: {
        apply: (c) => { // c: Add, inferred from the codec
          if (c.add < 0) throw new RangeError("negative");
          return (sum += c.add);
        },
      },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("solo"),
    });
    try {
      await waitFor(() => node.status().role === "leader");
      const total: number = await node.propose({ add: 4 });
      assert.equal(total, 4);
      await assert.rejects(node.propose({ add: -1 }), RangeError);
      await assert.rejects(node.propose({ add: "x" } as unknown as Add), CommandCodecError);
      assert.equal(await node.read(() => sum), 4);
    } finally {
      await node.stop();
    }
  });
});

/** Compile-time checks: never run, type-checked with the rest. */
export function typeChecks(): void {
  Effect.gen(function* () {
    const counter = yield* Counter;
    // @ts-expect-error a string is not a number
    yield* counter.propose({ add: "x" });
    // @ts-expect-error a command without its field
    yield* counter.propose({});
    // @ts-expect-error not a command at all
    yield* counter.propose(5);
    // @ts-expect-error the result is the state machine's: a number
    const wrong: string = yield* counter.propose({ add: 1 });
    void wrong;
    // The error channel is exactly ProposeError: RaftError, CommandCodecError, ApplyFailure.
    const exact: Equal<Effect.Error<ReturnType<typeof counter.propose>>, ProposeError> = true;
    const raftOnly: Equal<Effect.Error<typeof counter.readIndex>, RaftError> = true;
    void [exact, raftOnly];
  });
  const key = { ...solo };
  // @ts-expect-error the Schema must encode the key's command type
  layer(Counter, { ...key, command: Schema.String, stateMachine: { apply: (s: string) => s.length } });
  // @ts-expect-error the state machine must return the key's result type
  layer(Counter, { ...key, command: Add, stateMachine: { apply: (c) => String(c.add) } });
  // @ts-expect-error the state machine must take the key's command type
  layer(Counter, { ...key, stateMachine: { apply: (n: number) => n } });
  void (async () => {
    const node = await createNode({
      ...key,
      command: schemaCodec(Add),
      stateMachine: { apply: (c) => c.add * 2 },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("solo"),
    });
    // @ts-expect-error a string is not a number
    await node.propose({ add: "x" });
    // @ts-expect-error the result is a number
    const s: string = await node.propose({ add: 1 });
    void s;
    await createNode({
      ...key,
      command: schemaCodec(Add),
      // @ts-expect-error the Schema and the state machine disagree on the command
      stateMachine: { apply: (n: number) => n },
      logStore: new MemoryLogStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("solo"),
    });
  });
}
