/**
 * `deno task mutate`: runs the mutation catalogue (`catalogue.ts`). For each
 * mutation it extracts the commit that was HEAD when the run started to a temporary directory,
 * applies the one replacement, and runs on Deno
 *
 * 1. the simulator sweep alone (`tests/simulation.test.ts`), then
 * 2. the whole suite (everything `npm test` runs on Deno, except the
 *    catalogue's own test), unless step 1 already failed,
 *
 * each with `--fail-fast`: a mutation is *killed* as soon as one test fails.
 * With `--long N`, a mutation the CI sweep misses also meets the long sweep
 * (`tests/sim_long.ts --seeds N`, every profile in rotation on 3 and 5 nodes),
 * which counts as the simulator too; the table says which sweep killed it.
 * Prints one line per mutation and a table with the totals; exits 1 if the
 * whole suite lets any mutation survive.
 *
 * ```sh
 * deno task mutate [--only name,name] [--sim-only] [--long 3000] [--skip-baseline] [--extended]
 * ```
 *
 * @module
 */

import { catalogue, type Mutation } from "./catalogue.ts";
import { extended } from "./extended.ts";

const args = Deno.args;
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? new Set(args[onlyAt + 1]!.split(",")) : undefined;
const simOnly = args.includes("--sim-only");
/** For a catalogue split over several processes: the caller has run the unmutated sweep once itself. */
const skipBaseline = args.includes("--skip-baseline");
const longAt = args.indexOf("--long");
const longSeeds = longAt >= 0 ? Number(args[longAt + 1]) : 0;
if (!(Number.isInteger(longSeeds) && longSeeds >= 0)) throw new Error("--long takes a number of seeds");
const root = new URL("../../", import.meta.url).pathname;
const deno = `${root}node_modules/.bin/deno`;

/** The commit every mutant is made from: HEAD when the run starts (edits in progress never leak in). */
const commit = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["-C", root, "rev-parse", "HEAD"] }).output()).stdout,
).trim();
console.log(`mutating ${commit}`);

/** That commit's tree in a fresh temporary directory, with node_modules linked. */
async function copyRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "plank-mutant-" });
  const sh = new Deno.Command("sh", { args: ["-c", `git -C '${root}' archive ${commit} | tar -x -C '${dir}'`] });
  if (!(await sh.output()).success) throw new Error(`git archive of ${commit} failed`);
  await Deno.symlink(`${root}node_modules`, `${dir}/node_modules`);
  return dir;
}

/** Applies `m` in `dir`; throws if its text is not there exactly once. */
async function apply(dir: string, m: Mutation): Promise<void> {
  const path = `${dir}/${m.file}`;
  const source = await Deno.readTextFile(path);
  const parts = source.split(m.find);
  if (parts.length !== 2) throw new Error(`${m.name}: its text occurs ${parts.length - 1} times in ${m.file}`);
  await Deno.writeTextFile(path, parts.join(m.replace));
}

/** Runs the long sweep in `dir` (it stops at the first failing seed); true when a seed failed. */
async function killedByLong(dir: string): Promise<boolean> {
  const cmd = new Deno.Command(deno, {
    args: ["run", "-A", "--no-check", "tests/sim_long.ts", "--seeds", String(longSeeds), "--nodes", "3,5"],
    cwd: dir,
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1" },
  });
  return !(await cmd.output()).success;
}

/** Runs `deno test` in `dir`; true when some test failed (the mutation is killed). */
async function killedBy(dir: string, testArgs: string[]): Promise<boolean> {
  const cmd = new Deno.Command(deno, {
    args: ["test", "-A", "--fail-fast", "--no-check", ...testArgs],
    cwd: dir,
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1" },
  });
  return !(await cmd.output()).success;
}

interface Outcome {
  readonly mutation: Mutation;
  readonly bySim: boolean;
  readonly byLong: boolean;
  readonly bySuite: boolean;
  readonly seconds: number;
}

// `--extended` adds the second catalogue (extended.ts); the simulator's target is stated over the first.
const pool = args.includes("--extended") ? [...catalogue, ...extended] : catalogue;
const chosen = pool.filter((m) => only === undefined || only.has(m.name));
if (chosen.length === 0) throw new Error("no mutation selected");
// The unmutated suite must pass first, or every mutation would look killed.
if (!skipBaseline) {
  const dir = await copyRepo();
  const broken = await killedBy(dir, ["tests/simulation.test.ts"]);
  await Deno.remove(dir, { recursive: true });
  if (broken) throw new Error("the simulator sweep fails without any mutation: fix that first");
}
const outcomes: Outcome[] = [];
for (const m of chosen) {
  const started = performance.now();
  const dir = await copyRepo();
  try {
    await apply(dir, m);
    const byCi = await killedBy(dir, ["tests/simulation.test.ts"]);
    const byLong = !byCi && longSeeds > 0 && await killedByLong(dir);
    const bySim = byCi || byLong;
    const bySuite = bySim || (!simOnly && await killedBy(dir, ["--parallel", "--ignore=tests/mutants/"]));
    const seconds = (performance.now() - started) / 1000;
    outcomes.push({ mutation: m, bySim, byLong, bySuite, seconds });
    const verdict = byCi
      ? "killed by the simulator"
      : byLong
      ? "killed by sim:long"
      : bySuite
      ? "killed by the suite"
      : "SURVIVED";
    console.log(`${m.name.padEnd(30)} ${verdict.padEnd(24)} ${seconds.toFixed(0).padStart(4)} s  ${m.rule}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
const sim = outcomes.filter((o) => o.bySim).length;
const suite = outcomes.filter((o) => o.bySuite).length;
const survivors = outcomes.filter((o) => !o.bySuite);
console.log(
  `\nmutations: ${outcomes.length}; killed by the simulator alone: ${sim} (${
    ((100 * sim) / outcomes.length).toFixed(0)
  }%${
    longSeeds > 0 ? `, ${outcomes.filter((o) => o.byLong).length} of them by sim:long --seeds ${longSeeds}` : ""
  }); ` +
    (simOnly ? "(suite not run)" : `killed by the whole suite: ${suite}; survived: ${survivors.length}`),
);
for (const o of outcomes.filter((o) => !o.bySim)) {
  console.log(
    `  not killed by the simulator: ${o.mutation.name}${o.bySuite ? " (the suite kills it)" : " — SURVIVED"}`,
  );
}
if (!simOnly && survivors.length > 0) Deno.exit(1);
