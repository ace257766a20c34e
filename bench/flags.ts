/**
 * The benches' command-line flags: `--name value` or `--name=value`.
 *
 * @module
 */

import process from "node:process";

/** The value of `--name` on this process's command line, or `fallback`. */
export function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const arg = args[i]!;
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[i + 1] ?? fallback;
}
