/**
 * The bank under plank's deterministic simulator: every seed runs a cluster
 * of replicas through drops, delays, duplicates, partitions, crashes and
 * membership changes, checking Raft's safety after every step, the bank's
 * invariants (money conserved, no overdraft) after every apply on every
 * replica, and the clients' history for linearizability at the end.
 *
 * ```sh
 * npx -y deno run -A examples/bank/simulate.ts [--seeds 200] [--from 1] [--nodes 3] [--broken overdraft|no-dedup]
 * ```
 *
 * A failure prints the seed, the broken invariant, the last trace lines and
 * the command that reproduces it, and exits with status 1. `--broken`
 * deliberately breaks the state machine to show that it is caught.
 *
 * @module
 */

import { InvariantViolation, type Profile, profileOptions, runSimulation } from "../../testing.ts";
import { bankService, type Breakage } from "./bank.ts";

const args = typeof Deno !== "undefined"
  ? Deno.args
  : (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
};
const seeds = Number(flag("seeds", "200"));
const from = Number(flag("from", "1"));
const nodes = Number(flag("nodes", "3"));
const breakage = flag("broken", "none") as Breakage;
if (!["none", "overdraft", "no-dedup"].includes(breakage)) throw new Error(`--broken must be overdraft or no-dedup`);

/** The profiles each seed takes in turn: every fault, with snapshots, membership changes, targeted schedules. */
const profiles: Profile[] = [{}, { snapshots: true }, { conf: true, targeted: true }, {
  snapshots: true,
  joint: true,
  targeted: true,
}];

const started = performance.now();
for (let seed = from; seed < from + seeds; seed++) {
  const profile = profiles[seed % profiles.length]!;
  try {
    runSimulation({
      seed,
      nodes,
      steps: 2000,
      service: bankService(breakage),
      ...profileOptions(profile, nodes, seed),
      reproduce: `deno run -A examples/bank/simulate.ts --seeds 1 --from ${seed} --nodes ${nodes}` +
        (breakage === "none" ? "" : ` --broken ${breakage}`),
    });
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    console.error(error.message);
    exitWith(1);
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `bank: ${seeds} seeds on ${nodes} nodes clean in ${
    seconds.toFixed(1)
  } s (money conserved, no overdraft, linearizable)`,
);

function exitWith(code: number): never {
  const g = globalThis as { Deno?: { exit(c: number): never }; process?: { exit(c: number): never } };
  if (g.Deno) g.Deno.exit(code);
  return g.process!.exit(code);
}
