/**
 * bench/core: three voters wired through the pure core only — no disk, no
 * network, no Effect. Messages and disk writes complete in a deterministic
 * round-based loop, like the simulator's in-memory plumbing without faults.
 *
 * Prints committed entries/s, p50/p99 commit latency (in loop rounds and in
 * `step` calls), and the cost of one `step` with 10^3 vs 10^6 entries in the log.
 *
 *   deno run -A bench/core.ts [--proposals 200000] [--size 128] [--window 1024]
 *   bun bench/core.ts
 *
 * @module
 */

import {
  type Entry,
  type Input,
  lastIndex,
  makeConfig,
  membershipOf,
  type Message,
  type PersistEffect,
  type RaftEffect,
  type RaftState,
  start,
  step,
} from "../core/mod.ts";

function arg(name: string, fallback: number): number {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const PROPOSALS = arg("proposals", 200_000);
const SIZE = arg("size", 128);
const WINDOW = arg("window", 1024); // proposals in flight (etcd's peer bench uses the same)
const BATCH = arg("batch", 64); // proposals coalesced into one Propose input

interface Node {
  state: RaftState;
  inbox: Input[];
  /** Writes that complete at the start of the next round: then their Persisted and their `after` sends go. */
  disk: PersistEffect[];
}

/** Runs a 3-voter pipeline and reports throughput and latency. */
function pipeline(): void {
  const ids = ["a", "b", "c"];
  const nodes = new Map<string, Node>();
  let steps = 0;
  const boot = (id: string, seed: number) => {
    const config = makeConfig({ id, seed, maxInflightMessages: 256, maxMessageBytes: 1 << 20 });
    const r = start(config, { membership: membershipOf(ids) });
    nodes.set(id, { state: r.state, inbox: [], disk: [] });
    return r.effects;
  };
  for (const [i, id] of ids.entries()) boot(id, i + 1);

  // Requests resolved when their entry commits on the leader.
  const proposedAtRound = new Map<number, number>(); // requestId -> round
  const proposedAtStep = new Map<number, number>();
  const indexToRequest = new Map<number, number>();
  const latRounds: number[] = [];
  const latSteps: number[] = [];
  let committed = 0;
  let round = 0;

  const handle = (id: string, effects: readonly RaftEffect[]) => {
    const node = nodes.get(id)!;
    for (const fx of effects) {
      switch (fx.type) {
        case "Persist":
          // The disk "completes" next round; what waits for it (ordering rule 1) goes then.
          node.disk.push(fx);
          break;
        case "Send":
          nodes.get(fx.message.to)!.inbox.push({ type: "Receive", message: fx.message });
          break;
        case "Proposed":
          indexToRequest.set(fx.index, fx.requestId);
          break;
        case "Apply":
          if (node.state.role.kind === "leader") {
            for (const e of fx.entries) commitEntry(e);
          }
          break;
      }
    }
  };
  const commitEntry = (e: Entry) => {
    const req = indexToRequest.get(e.index);
    if (req === undefined) return;
    indexToRequest.delete(e.index);
    latRounds.push(round - proposedAtRound.get(req)!);
    latSteps.push(steps - proposedAtStep.get(req)!);
    proposedAtRound.delete(req);
    proposedAtStep.delete(req);
    committed++;
  };
  const deliver = (id: string, input: Input) => {
    const node = nodes.get(id)!;
    const r = step(node.state, input);
    steps++;
    node.state = r.state;
    handle(id, r.effects);
  };

  // Elect "a": a node starts sticky (its first election timeout only lets it vote), so every
  // node's first timeout fires, then a's second one starts the campaign.
  for (const id of ids) deliver(id, { type: "Timeout", timer: "election", now: 0 });
  deliver("a", { type: "Timeout", timer: "election", now: 0 });
  for (let i = 0; i < 20; i++) runRound();
  const leader = [...nodes.values()].find((n) => n.state.role.kind === "leader");
  if (!leader || leader.state.config.id !== "a") throw new Error("no leader elected");

  function runRound(): void {
    round++;
    for (const id of ids) {
      const node = nodes.get(id)!;
      const done = node.disk;
      node.disk = [];
      for (const fx of done) {
        if (fx.entries.length > 0) {
          const last = fx.entries[fx.entries.length - 1]!;
          node.inbox.push({ type: "Persisted", index: last.index, term: last.term });
        }
        for (const d of fx.after) {
          if (d.type === "Send") nodes.get(d.message.to)!.inbox.push({ type: "Receive", message: d.message });
        }
      }
    }
    for (const id of ids) {
      const node = nodes.get(id)!;
      const inbox = node.inbox;
      node.inbox = [];
      for (const input of inbox) deliver(id, input);
    }
  }

  const payload = new Uint8Array(SIZE);
  let nextRequest = 1;
  const t0 = performance.now();
  const steps0 = steps;
  while (committed < PROPOSALS) {
    const inFlight = proposedAtRound.size;
    const room = Math.min(WINDOW - inFlight, PROPOSALS - (nextRequest - 1));
    for (let sent = 0; sent < room; sent += BATCH) {
      const n = Math.min(BATCH, room - sent);
      const proposals = [];
      for (let k = 0; k < n; k++) {
        const requestId = nextRequest++;
        proposedAtRound.set(requestId, round);
        proposedAtStep.set(requestId, steps);
        proposals.push({ requestId, data: payload });
      }
      deliver("a", { type: "Propose", proposals });
    }
    runRound();
  }
  const seconds = (performance.now() - t0) / 1000;
  latRounds.sort((x, y) => x - y);
  latSteps.sort((x, y) => x - y);
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  console.log(`core pipeline: 3 voters, ${PROPOSALS} proposals of ${SIZE} B, window ${WINDOW}, batch ${BATCH}`);
  console.log(`  committed entries/s : ${Math.round(committed / seconds).toLocaleString("en-US")}`);
  console.log(`  step() calls        : ${steps - steps0} (${((seconds * 1e9) / (steps - steps0)).toFixed(0)} ns each)`);
  console.log(`  commit latency p50  : ${pct(latRounds, 0.5)} rounds / ${pct(latSteps, 0.5)} steps`);
  console.log(`  commit latency p99  : ${pct(latRounds, 0.99)} rounds / ${pct(latSteps, 0.99)} steps`);
  console.log(`  leader log length   : ${lastIndex(nodes.get("a")!.state.log)}`);
}

/**
 * Returns a function that times one run on a follower whose log holds `n`
 * entries: a freshly built state (outside the timed region), then
 * `iterations` rounds of (AppendEntries carrying one new entry, Persisted).
 * Result: mean ns per `step` call.
 */
function stepCostProbe(n: number, iterations: number): () => number {
  const config = makeConfig({ id: "b", seed: 7 });
  const payload = new Uint8Array(SIZE);
  const entries: Entry[] = [];
  for (let i = 1; i <= n; i++) entries.push({ term: 1, index: i, kind: "command", data: payload, config: undefined });
  return () => {
    let state = start(config, {
      membership: membershipOf(["a", "b", "c"]),
      hardState: { term: 1, vote: "a", commit: n },
      entries,
    }).state;
    let index = n;
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      index++;
      const e: Entry = { term: 1, index, kind: "command", data: payload, config: undefined };
      const message: Message = {
        group: 0,
        from: "a",
        to: "b",
        term: 1,
        type: "AppendEntries",
        prevIndex: index - 1,
        prevTerm: 1,
        entries: [e],
        commit: index - 1,
        seq: 0,
      };
      state = step(state, { type: "Receive", message }).state;
      state = step(state, { type: "Persisted", index, term: 1 }).state;
    }
    return ((performance.now() - t0) * 1e6) / (iterations * 2);
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Interleave the two sizes so JIT warm-up and GC pressure hit both alike.
const smallProbe = stepCostProbe(1_000, 5_000);
const largeProbe = stepCostProbe(1_000_000, 5_000);
const smallRuns: number[] = [];
const largeRuns: number[] = [];
for (let i = 0; i < 25; i++) {
  const a = smallProbe();
  const b = largeProbe();
  if (i >= 5) { // the first rounds are warm-up
    smallRuns.push(a);
    largeRuns.push(b);
  }
}
const smallNs = median(smallRuns);
const largeNs = median(largeRuns);
pipeline();
console.log(`step cost, log of 10^3 entries: ${smallNs.toFixed(0)} ns (median of 20 runs of 5,000 appends)`);
console.log(`step cost, log of 10^6 entries: ${largeNs.toFixed(0)} ns (median of 20 runs of 5,000 appends)`);
console.log(`  ratio 10^6 / 10^3: ${(largeNs / smallNs).toFixed(2)} (target: within 0.8-1.2)`);
