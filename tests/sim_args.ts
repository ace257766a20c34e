/**
 * Tiny flag parser shared by the simulator command-line scripts, and the
 * mapping from profile flags to simulator options
 * (`--name value` and bare `--flag`), with no runtime APIs so the scripts
 * run unchanged on Deno and Bun.
 *
 * @module
 */

import { type Profile, profileOptions as optionsOf, type RunOptions } from "../testing/simulator/mod.ts";

/** The flags of `sim_run.ts` that choose a profile, as a {@link Profile}. */
export function profileOf(flags: Map<string, string>): Profile {
  const drift = flags.get("drift");
  if (drift !== undefined && drift !== "within" && drift !== "beyond") {
    throw new Error(`--drift must be within or beyond, got ${drift}`);
  }
  return {
    noFaults: flags.has("no-faults"),
    heavy: flags.has("heavy"),
    snapshots: flags.has("snapshots"),
    lease: flags.has("lease"),
    transfers: flags.has("transfers"),
    conf: flags.has("conf"),
    joint: flags.has("joint"),
    targeted: flags.has("targeted"),
    noPreVote: flags.has("no-prevote"),
    noCheckQuorum: flags.has("no-checkquorum"),
    drift,
    randomSettings: flags.has("random-settings"),
    voters: flags.has("voters") ? intFlag(flags, "voters", 0) : undefined,
    figure8: flags.has("figure8"),
  };
}

/** The run options that the profile flags of `sim_run.ts` select for `seed`. */
export function profileOptions(
  flags: Map<string, string>,
  nodes: number,
  seed: number,
): Omit<RunOptions, "seed" | "nodes" | "steps"> {
  return optionsOf(profileOf(flags), nodes, seed);
}

/**
 * The profile flags the long sweep uses for `seed`, rotating through every
 * profile: heavy faults, transfers or membership changes in turn (joint ones
 * on some seeds, sometimes with a node outside the initial voters), snapshots
 * on even seeds, the targeted schedules on half, lease reads (with clocks
 * drifting within the bound on some), pre-vote or check-quorum off, core
 * settings randomized per seed on odd seeds, and Figure 8's narrow window
 * (`--figure8`) on some even seeds of 5-node runs.
 */
export function sweepProfile(seed: number, nodes: number): string[] {
  const flags: string[] = [];
  if (seed % 2 === 0) flags.push("--snapshots");
  if (seed % 4 === 1 || seed % 4 === 2) flags.push("--targeted");
  if (seed % 5 === 0) flags.push("--lease");
  if (seed % 10 === 5) flags.push("--drift", "within");
  if (seed % 6 === 1) flags.push("--no-prevote");
  if (seed % 7 === 3) flags.push("--no-checkquorum");
  if (seed % 2 === 1) flags.push("--random-settings");
  else if (seed % 8 === 6 && nodes >= 5) flags.push("--figure8");
  switch (seed % 3) {
    case 0:
      flags.push("--heavy");
      break;
    case 1:
      flags.push("--transfers");
      break;
    case 2:
      flags.push(seed % 9 < 4 ? "--joint" : "--conf");
      if (seed % 4 === 1 && nodes > 1) flags.push("--voters", String(nodes - 1));
      break;
  }
  return flags;
}

/** Parsed flags: `--seed 5 --trace` → `{ seed: "5", trace: "true" }`. */
export function parseFlags(args: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (inline !== undefined) flags.set(name, inline);
    // `--profile` always takes a value, itself a list of flags (`--profile "--conf --targeted"`, `--profile --lease`).
    else if (i + 1 < args.length && (!args[i + 1]!.startsWith("--") || name === "profile")) {
      flags.set(name, args[++i]!);
    } else flags.set(name, "true");
  }
  return flags;
}

/** An integer flag with a default. */
export function intFlag(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`--${name} must be an integer, got ${raw}`);
  return value;
}

/** The script's arguments on Deno or Bun/Node. */
export function scriptArgs(): string[] {
  const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] } };
  return g.Deno ? g.Deno.args : (g.process?.argv.slice(2) ?? []);
}

/** Exits with `code` on Deno or Bun/Node. */
export function exit(code: number): never {
  const g = globalThis as { Deno?: { exit(code: number): never }; process?: { exit(code: number): never } };
  if (g.Deno) g.Deno.exit(code);
  g.process!.exit(code);
  throw new Error("unreachable");
}
