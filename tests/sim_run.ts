/**
 * Runs one seeded simulation, exactly as the CI sweep does, and reports it:
 *
 * ```sh
 * deno run -A tests/sim_run.ts --seed 123 --nodes 5 --steps 2000 [--trace] [--snapshots] [--transfers | --heavy | --no-faults]
 * bun tests/sim_run.ts --seed 123 --nodes 5 --steps 2000
 * ```
 *
 * `--trace` prints every input, effect, state and fault as it happens. A
 * failing run prints the violated invariant, the seed and the last trace
 * lines, and exits with status 1.
 *
 * @module
 */

import { InvariantViolation, runSimulation } from "../effects/simulator/mod.ts";
import { exit, heavyFaults, intFlag, parseFlags, scriptArgs } from "./sim_args.ts";

const flags = parseFlags(scriptArgs());
const seed = intFlag(flags, "seed", 1);
const nodes = intFlag(flags, "nodes", 3);
const steps = intFlag(flags, "steps", 2000);
const trace = flags.has("trace");
const snapshots = flags.has("snapshots");
try {
  const report = runSimulation({
    seed,
    nodes,
    steps,
    faults: flags.has("no-faults") ? false : flags.has("heavy") ? heavyFaults : { transfers: flags.has("transfers") },
    raft: snapshots ? { snapshotEvery: 20, keepAfterSnapshot: 5 } : undefined,
    onTrace: trace ? (line) => console.log(line) : undefined,
  });
  console.log(`seed ${seed}: ok`, JSON.stringify(report));
} catch (error) {
  if (!(error instanceof InvariantViolation)) throw error;
  console.error(error.message);
  exit(1);
}
