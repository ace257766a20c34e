/**
 * Runs the multi-group simulator for seeds, printing a report per seed or the
 * failure with its trace: `deno run -A tests/sim_multi_run.ts --seed 1 [--seeds 50] --nodes 3 --groups 8
 * [--steps 3000] [--snapshots]`.
 */
import process from "node:process";
import { InvariantViolation } from "../testing/simulator/invariants.ts";
import { runMultiSimulation } from "../testing/simulator/multi.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const first = flag("seed", 1);
const seeds = flag("seeds", 1);
const nodes = flag("nodes", 3);
const groups = flag("groups", 8);
const steps = flag("steps", 3000);
const snapshotEvery = args.includes("--snapshots") ? 5 : 0;
let failed = 0;
for (let seed = first; seed < first + seeds; seed++) {
  try {
    const r = runMultiSimulation({ seed, nodes, groups, steps, snapshotEvery });
    console.log(`seed ${seed}: ok ${JSON.stringify(r)}`);
  } catch (e) {
    failed++;
    if (e instanceof InvariantViolation) console.log(e.message);
    else throw e;
  }
}
if (failed > 0) process.exit(1);
