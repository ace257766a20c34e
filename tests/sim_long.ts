/**
 * The long simulator sweep (`deno task sim:long`): many seeds on 3- and
 * 5-node clusters with every fault on, in turn with heavy faults, with
 * leadership transfers, or with membership changes (half of them also with
 * frequent snapshots; see `sweepProfile`), each followed by the liveness and
 * linearizability checks.
 *
 * ```sh
 * deno run -A tests/sim_long.ts [--seeds 20000] [--from 1] [--steps 2000]
 * ```
 *
 * Prints progress every 1,000 seeds and a summary; on the first failure it
 * prints the violation (seed, invariant, trace) and the command that
 * reproduces it, and exits with status 1.
 *
 * @module
 */

import { InvariantViolation, runSimulation } from "../effects/simulator/mod.ts";
import { exit, intFlag, parseFlags, profileOptions, scriptArgs, sweepProfile } from "./sim_args.ts";

const flags = parseFlags(scriptArgs());
const seeds = intFlag(flags, "seeds", 20_000);
const from = intFlag(flags, "from", 1);
const steps = intFlag(flags, "steps", 2000);
const started = performance.now();
let runs = 0;
let unknown = 0;
let committed = 0;
let crashes = 0;
for (let seed = from; seed < from + seeds; seed++) {
  for (const nodes of [3, 5]) {
    const profile = sweepProfile(seed, nodes);
    try {
      const report = runSimulation({
        seed,
        nodes,
        steps,
        ...profileOptions(parseFlags(profile), nodes),
        reproduce: `deno run -A tests/sim_run.ts --seed ${seed} --nodes ${nodes} --steps ${steps} ${
          profile.join(" ")
        } --trace`,
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
      console.error(error.message);
      exit(1);
    }
  }
  const done = seed - from + 1;
  if (done % 1000 === 0) {
    console.log(`${done}/${seeds} seeds (${runs} runs) ok, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `sim:long: ${runs} runs (${seeds} seeds × 3 and 5 nodes, ${steps} steps each) passed in ${seconds.toFixed(1)} s; ` +
    `${committed} entries committed, ${crashes} crashes injected, ${unknown} linearizability checks inconclusive`,
);
