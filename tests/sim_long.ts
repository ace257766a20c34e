/**
 * The long simulator sweep (`deno task sim:long`): many seeds on 3- and
 * 5-node clusters, rotating through every fault profile (see `sweepProfile`),
 * each run followed by the liveness and linearizability checks.
 *
 * ```sh
 * deno run -A tests/sim_long.ts [--seeds 20000] [--from 1] [--steps 2000] [--nodes 3,5]
 *   [--profile "--conf --targeted"] [--keep-going]
 * ```
 *
 * `--profile` runs every seed with that one profile instead of the rotation;
 * `--keep-going` reports every failing seed instead of stopping at the first.
 * Prints progress every 1,000 seeds and a summary with seeds per second; a
 * failure prints the violation (seed, invariant, trace) and the command that
 * reproduces it, and the exit status is 1.
 *
 * @module
 */

import { InvariantViolation, runSimulation } from "../testing/simulator/mod.ts";
import { exit, intFlag, parseFlags, profileOptions, scriptArgs, sweepProfile } from "./sim_args.ts";

const flags = parseFlags(scriptArgs());
const seeds = intFlag(flags, "seeds", 20_000);
const from = intFlag(flags, "from", 1);
const steps = intFlag(flags, "steps", 2000);
const sizes = (flags.get("nodes") ?? "3,5").split(",").map(Number);
const fixed = flags.get("profile")?.split(/\s+/).filter((f) => f !== "");
const keepGoing = flags.has("keep-going");
const started = performance.now();
let runs = 0;
let unknown = 0;
let committed = 0;
let crashes = 0;
const failed: string[] = [];
for (let seed = from; seed < from + seeds; seed++) {
  for (const nodes of sizes) {
    const profile = fixed ?? sweepProfile(seed, nodes);
    const reproduce = `deno run -A tests/sim_run.ts --seed ${seed} --nodes ${nodes} --steps ${steps} ${
      profile.join(" ")
    } --trace`;
    try {
      const report = runSimulation({
        seed,
        nodes,
        steps,
        ...profileOptions(parseFlags(profile), nodes, seed),
        reproduce,
      });
      runs++;
      committed += report.committed;
      crashes += report.crashes;
      if (report.linearizability === "unknown") unknown++;
    } catch (error) {
      if (!(error instanceof InvariantViolation)) {
        console.error(`seed ${seed} (${nodes} nodes) threw:`, error);
        exit(1);
      }
      if (!keepGoing) {
        console.error(error.message);
        exit(1);
      }
      failed.push(`${error.invariant}: ${reproduce}`);
      console.error(`FAIL ${error.invariant} (seed ${seed}, ${nodes} nodes): ${reproduce}`);
    }
  }
  const done = seed - from + 1;
  if (done % 1000 === 0) {
    const s = (performance.now() - started) / 1000;
    console.log(`${done}/${seeds} seeds (${runs} runs ok, ${failed.length} failed), ${s.toFixed(1)} s`);
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `sim:long: ${runs} runs passed, ${failed.length} failed (${seeds} seeds × ${sizes.join(" and ")} nodes, ` +
    `${steps} steps each) in ${seconds.toFixed(1)} s = ${(seeds / seconds).toFixed(1)} seeds/s, ` +
    `${((seeds * sizes.length) / seconds).toFixed(1)} runs/s; ` +
    `${committed} entries committed, ${crashes} crashes injected, ${unknown} linearizability checks inconclusive`,
);
if (failed.length > 0) exit(1);
