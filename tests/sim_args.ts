/**
 * Tiny flag parser shared by the simulator command-line scripts
 * (`--name value` and bare `--flag`), with no runtime APIs so the scripts
 * run unchanged on Deno and Bun.
 *
 * @module
 */

import type { FaultOptions, RunOptions } from "../effects/simulator/mod.ts";

/** The `--heavy` fault profile: frequent faults, lossy and duplicating network, transfers. */
export const heavyFaults: Partial<FaultOptions> = {
  dropRate: 0.2,
  duplicateRate: 0.1,
  delayRate: 0.1,
  minIntervalMs: 50,
  maxIntervalMs: 300,
  transfers: true,
};

/** The run options that the profile flags of `sim_run.ts` select. */
export function profileOptions(
  flags: Map<string, string>,
  nodes: number,
): Pick<RunOptions, "faults" | "raft" | "voters"> {
  const conf = flags.has("conf");
  const faults: RunOptions["faults"] = flags.has("no-faults")
    ? false
    : { ...(flags.has("heavy") ? heavyFaults : {}), transfers: flags.has("transfers") || conf, confChanges: conf };
  return {
    faults,
    raft: {
      ...(flags.has("snapshots") ? { snapshotEvery: 20, keepAfterSnapshot: 5 } : {}),
      ...(flags.has("lease") ? { leaseReads: true } : {}),
    },
    voters: Math.min(nodes, intFlag(flags, "voters", nodes)),
  };
}

/**
 * The profile flags the long sweep uses for `seed`: snapshots on even seeds;
 * heavy faults, leadership transfers, or membership changes (sometimes with a
 * node outside the initial voters) in turn.
 */
export function sweepProfile(seed: number, nodes: number): string[] {
  const flags: string[] = [];
  if (seed % 2 === 0) flags.push("--snapshots");
  if (seed % 5 === 0) flags.push("--lease");
  switch (seed % 3) {
    case 0:
      flags.push("--heavy");
      break;
    case 1:
      flags.push("--transfers");
      break;
    case 2:
      flags.push("--conf");
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
    else if (i + 1 < args.length && !args[i + 1]!.startsWith("--")) flags.set(name, args[++i]!);
    else flags.set(name, "true");
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
