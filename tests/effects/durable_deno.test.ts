import { startNode } from "../../adapters/deno/mod.ts";
import { customTransportTest, durableClusterTest } from "./durable_cluster.ts";

if (typeof Deno !== "undefined") {
  durableClusterTest("deno", (options) => startNode(options), 10_000);
  customTransportTest("deno", (options) => startNode(options));
}
