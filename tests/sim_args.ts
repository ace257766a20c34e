/**
 * Tiny flag parser shared by the simulator command-line scripts
 * (`--name value` and bare `--flag`), with no runtime APIs so the scripts
 * run unchanged on Deno and Bun.
 *
 * @module
 */

import type { FaultOptions } from "../effects/simulator/mod.ts";

/** The `--heavy` fault profile: frequent faults, lossy and duplicating network, transfers. */
export const heavyFaults: Partial<FaultOptions> = {
  dropRate: 0.2,
  duplicateRate: 0.1,
  delayRate: 0.1,
  minIntervalMs: 50,
  maxIntervalMs: 300,
  transfers: true,
};

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
