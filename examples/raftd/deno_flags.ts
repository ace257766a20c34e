/**
 * The Deno flags raftd runs with, read from `deno_flags.json` (one file, so
 * `scripts/run.mjs`, the demo and the bench launch raftd alike; the JSON says
 * why each flag is there).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The flags to put between `deno run -A` and raftd's main module. */
export function raftdDenoFlags(): string[] {
  const file = fileURLToPath(new URL("./deno_flags.json", import.meta.url).href);
  const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
  const args = (parsed as { args?: unknown }).args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
    throw new Error(`${file}: "args" must be an array of strings`);
  }
  return args;
}
