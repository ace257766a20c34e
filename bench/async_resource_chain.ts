/**
 * Minimal reproduction of issue 15's live-heap creep on Deno (upstream cause, Deno 2.9.6 + effect 4.1.0).
 *
 * Deno's `AsyncResource.runInAsyncScope` enters the resource itself into the async context it runs `fn` under
 * (`enterAsyncResource(this)`: a new context mapping whose entry maps to the resource through an `AsyncVariable`'s
 * WeakMap, for `executionAsyncResource()`), and every `new AsyncResource()` keeps the context current at its
 * construction (`#snapshot`). So a resource created inside another's `runInAsyncScope` retains that one, which
 * retains the one it was created in, and so on: an unbounded chain. Node keeps the executing resource on a separate
 * stack, not in the captured context, so there the chain does not form; Bun's heap stays flat too.
 *
 * effect 4.1 does exactly this for every fiber: on each suspension `FiberImpl.evaluate` captures
 * `new AsyncResource("effect/Fiber")` while it is still inside the `runInAsyncScope` of the resource it was resumed
 * with (`effect/src/internal/effect.ts`, `captureAsyncContext`). A fiber that lives for the whole process (a raft
 * node's loop) therefore retains one AsyncResource, and two plain objects, per suspension, forever.
 *
 *   deno run -A --v8-flags=--expose-gc bench/async_resource_chain.ts nested|flat|fiber|fiber-off [--n 200000]
 *   bun --expose-gc bench/async_resource_chain.ts nested|flat|fiber|fiber-off [--n 200000]
 *
 * - `nested`: `r = r.runInAsyncScope(() => new AsyncResource("x"))`, N times (each one destroyed after use):
 *   grows on Deno (~460 B per step), flat on Bun.
 * - `flat`: the same resources created and run one after another, not nested: flat everywhere (the control that
 *   issue 15 had tried).
 * - `fiber`: one effect fiber suspending N times (`Effect.yieldNow`): grows on Deno.
 * - `fiber-off`: the same with plank's workaround (`adapters/deno/no_async_context.ts`) installed before effect loads: flat.
 *
 * Prints the used heap after a full GC every N/10 steps and the growth per 10^5 steps.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({
  args: (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2),
  allowPositionals: true,
  options: { n: { type: "string", default: "200000" } },
});
const mode = positionals[0] ?? "nested";
const N = Number(values.n);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc (Deno) or --expose-gc (Bun)");
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const samples: [number, number][] = [];
const sample = (i: number) => {
  const h = heap();
  samples.push([i, h]);
  console.log(`${mode} step=${i} heapUsedAfterGC=${(h / 2 ** 20).toFixed(2)}MiB`);
};

if (mode === "fiber-off") await import("../adapters/deno/no_async_context.ts");
const { AsyncResource } = await import("node:async_hooks");

if (mode === "nested" || mode === "flat") {
  let r = new AsyncResource("x");
  sample(0);
  for (let i = 1; i <= N; i++) {
    const prev = r;
    r = mode === "nested" ? prev.runInAsyncScope(() => new AsyncResource("x")) : new AsyncResource("x");
    if (mode === "flat") prev.runInAsyncScope(() => {});
    prev.emitDestroy();
    if (i % (N / 10) === 0) sample(i);
  }
} else if (mode === "fiber" || mode === "fiber-off") {
  const { Effect } = await import("effect");
  sample(0);
  await Effect.runPromise(Effect.gen(function* () {
    for (let i = 1; i <= N; i++) {
      yield* Effect.yieldNow;
      if (i % (N / 10) === 0) sample(i);
    }
  }));
} else throw new Error(`unknown mode ${mode}`);

const [i0, h0] = samples[1];
const [i1, h1] = samples.at(-1)!;
console.log(`${mode}: ${((h1 - h0) / (i1 - i0) * 1e5 / 2 ** 20).toFixed(2)} MiB per 10^5 steps`);
