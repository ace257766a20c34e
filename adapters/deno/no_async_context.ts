/**
 * Side-effect module: on Deno, keeps effect from capturing a
 * `node:async_hooks` `AsyncResource` at every fiber suspension. Import it
 * before anything that imports `effect`:
 *
 * ```ts
 * import "@plank/raft/deno/no-async-context"; // first import of the program
 * import { startNode } from "@plank/raft/deno";
 * ```
 *
 * Why: effect 4.1 creates `new AsyncResource("effect/Fiber")` each time a
 * fiber suspends, while still inside the `runInAsyncScope` of the resource it
 * was resumed with. Deno 2.9's `runInAsyncScope` enters the resource itself
 * into the async context, and each new resource keeps the context it was
 * created in, so every resource retains the previous one: a fiber that lives
 * as long as the process (a node's loop, its timers' parent, each peer
 * stream) retains one resource and two objects per suspension, about 460 B,
 * forever. Under steady writes that was raftd's ~3 MB/min live-heap creep
 * (issue 15). Reproduction: `bench/async_resource_chain.ts`. Bun and Node do
 * not chain, so this module does nothing there.
 *
 * What it costs: effect then runs on Deno as it does where `node:async_hooks`
 * is absent (browsers): an `AsyncLocalStorage` store set outside a fiber is
 * not seen by code that fiber runs after its first suspension. plank itself
 * uses no `AsyncLocalStorage`.
 *
 * How: effect looks the class up once, when its module is evaluated, through
 * `process.getBuiltinModule("node:async_hooks")` (no other package here
 * calls it). This module answers the first such lookup without
 * `AsyncResource` and puts the original function back at once; static
 * `import ... from "node:async_hooks"` is untouched. Imported after effect
 * was evaluated, it cannot help: {@link asyncContextDetached} then stays
 * false, and the first later lookup (anyone's) gets the copy.
 *
 * @module
 */

type GetBuiltinModule = (id: string) => unknown;

let detached = false;
let installed = false;

/** Whether effect's module evaluation looked up `AsyncResource` while this module hid it (so effect runs without it). */
export function asyncContextDetached(): boolean {
  return detached;
}

function install(): void {
  if (installed) return;
  installed = true;
  if (typeof (globalThis as { Deno?: unknown }).Deno === "undefined") return;
  const proc = (globalThis as { process?: { getBuiltinModule?: GetBuiltinModule } }).process;
  const original = proc?.getBuiltinModule;
  if (proc === undefined || original === undefined) return;
  const hidden = (id: string): unknown => {
    const mod = original.call(proc, id);
    if (id !== "node:async_hooks" && id !== "async_hooks") return mod;
    proc.getBuiltinModule = original;
    detached = true;
    // A copy without AsyncResource: effect reads `?.AsyncResource` and takes undefined as "no async context".
    return { ...(mod as Record<string, unknown>), AsyncResource: undefined };
  };
  proc.getBuiltinModule = hidden;
}

install();
