import { DenoFs, startNode } from "../../adapters/deno/mod.ts";
import { customTransportTest, durableClusterTest } from "./durable_cluster.ts";
import { failStopFileTests } from "./fail_stop_files.ts";

if (typeof Deno !== "undefined") {
  durableClusterTest("deno", (options) => startNode(options), 10_000);
  customTransportTest("deno", (options) => startNode(options));
  failStopFileTests("deno", () => new DenoFs());
}
