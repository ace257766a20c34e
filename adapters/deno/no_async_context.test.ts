// First import, as a program using it would: effect must not have been evaluated yet.
import { asyncContextDetached } from "./no_async_context.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { Effect } from "effect";

const onDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

test("after no_async_context, effect fibers capture no AsyncResource on Deno (a no-op elsewhere)", async () => {
  let captured = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === "effect/Fiber") captured++;
    },
  }).enable();
  try {
    // Every suspension of a fiber, and every fork, would capture one (effect/src/internal/effect.ts).
    await Effect.runPromise(Effect.gen(function* () {
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow;
      yield* Effect.forkChild(Effect.yieldNow);
    }));
  } finally {
    hook.disable();
  }
  if (onDeno) {
    assert.equal(asyncContextDetached(), true);
    assert.equal(captured, 0);
  } else {
    assert.equal(asyncContextDetached(), false);
  }
  assert.equal(
    typeof (globalThis as { process?: { getBuiltinModule?: unknown } }).process?.getBuiltinModule,
    "function",
  );
});

test("node:async_hooks itself keeps AsyncResource (only effect's lookup was answered without it)", async () => {
  const { AsyncResource } = await import("node:async_hooks");
  assert.equal(typeof AsyncResource, "function");
  const mod = (globalThis as { process: { getBuiltinModule(id: string): { AsyncResource?: unknown } } }).process
    .getBuiltinModule("node:async_hooks");
  assert.equal(typeof mod.AsyncResource, "function");
});
