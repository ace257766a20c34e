/**
 * Runs one seeded simulation, exactly as the CI sweep does, and reports it:
 *
 * ```sh
 * deno run -A tests/sim_run.ts --seed 123 --nodes 5 --steps 2000 [--trace] \
 *   [--snapshots] [--lease] [--transfers | --conf [--voters K] | --heavy | --no-faults]
 * bun tests/sim_run.ts --seed 123 --nodes 5 --steps 2000
 * ```
 *
 * Without profile flags a run has the CI sweep's faults (drops, delays,
 * duplicates, partitions, crashes). `--snapshots` snapshots every 20
 * entries; `--transfers` adds leadership transfers; `--conf` adds random
 * membership changes (and transfers), `--voters K` starts with only n1…nK
 * as voters; `--heavy` makes faults frequent and the network lossier.
 *
 * `--trace` prints every input, effect, state and fault as it happens. A
 * failing run prints the violated invariant, the seed and the last trace
 * lines, and exits with status 1.
 *
 * @module
 */

import { InvariantViolation, runSimulation } from "../testing/simulator/mod.ts";
import { exit, intFlag, parseFlags, profileOptions, scriptArgs } from "./sim_args.ts";

const flags = parseFlags(scriptArgs());
const seed = intFlag(flags, "seed", 1);
const nodes = intFlag(flags, "nodes", 3);
const steps = intFlag(flags, "steps", 2000);
const trace = flags.has("trace");
try {
  const report = runSimulation({
    seed,
    nodes,
    steps,
    ...profileOptions(flags, nodes, seed),
    onTrace: trace ? (line) => console.log(line) : undefined,
  });
  console.log(`seed ${seed}: ok`, JSON.stringify(report));
} catch (error) {
  if (!(error instanceof InvariantViolation)) throw error;
  console.error(error.message);
  exit(1);
}
