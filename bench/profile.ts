/**
 * CPU profile of a running Deno or Node process through its inspector
 * (`--inspect=127.0.0.1:PORT`), summarised: where the samples fall, by
 * function (self time) and by file (self time summed over its functions).
 * Deno 2.9 has no `--cpu-prof`; the inspector's `Profiler` domain is the
 * same V8 sampling profiler.
 *
 * ```
 * deno run -A bench/profile.ts --port 9229 [--seconds 10] [--top 30] [--out FILE.cpuprofile]
 * ```
 *
 * The `.cpuprofile` written with `--out` opens in Chrome DevTools
 * (Performance → Load profile) for call trees.
 *
 * @module
 */

const args = Deno.args;
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const port = Number(arg("port", "9229"));
const seconds = Number(arg("seconds", "10"));
const top = Number(arg("top", "30"));
const out = arg("out", "");

/** One node of V8's `Profiler.Profile`. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: number[];
}

/** V8's `Profiler.Profile`. */
interface Profile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as { webSocketDebuggerUrl: string }[];
const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = reject;
});
let nextId = 1;
const waiting = new Map<number, (result: unknown) => void>();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data as string) as { id?: number; result?: unknown };
  if (m.id !== undefined) waiting.get(m.id)?.(m.result);
};
const call = (method: string, params: Record<string, unknown> = {}) =>
  new Promise<unknown>((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 200 });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, seconds * 1000));
const { profile } = await call("Profiler.stop") as { profile: Profile };
ws.close();
if (out !== "") await Deno.writeTextFile(out, JSON.stringify(profile));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
  total += dt;
}
const short = (url: string) =>
  url.replace(/^.*\/node_modules\//, "npm:").replace(/^file:\/\/.*?\/(?=[^/]+\/[^/]+$)/, "");
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, us] of self) {
  const f = byId.get(id)!.callFrame;
  const name = `${f.functionName || "(anonymous)"} ${short(f.url)}:${f.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const file = f.url === "" ? `(${f.functionName})` : short(f.url);
  byFile.set(file, (byFile.get(file) ?? 0) + us);
}
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (${(total / 1e6).toFixed(1)} s sampled)`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(100 * us / total).toFixed(1).padStart(5)} %  ${k}`);
  }
};
print("self time by function", byFunction);
print("self time by file", byFile);
