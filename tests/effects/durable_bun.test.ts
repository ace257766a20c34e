/// <reference types="bun" />
import { BunFs, startNode } from "../../adapters/bun/mod.ts";
import { customTransportTest, durableClusterTest } from "./durable_cluster.ts";
import { failStopFileTests } from "./fail_stop_files.ts";

if (typeof Bun !== "undefined") {
  durableClusterTest("bun", (options) => startNode(options), 10_000);
  customTransportTest("bun", (options) => startNode(options));
  failStopFileTests("bun", () => new BunFs());
}
