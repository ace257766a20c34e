/// <reference types="bun" />
import { startNode } from "../../adapters/bun/mod.ts";
import { customTransportTest, durableClusterTest } from "./durable_cluster.ts";

if (typeof Bun !== "undefined") {
  durableClusterTest("bun", (options) => startNode(options), 10_000);
  customTransportTest("bun", (options) => startNode(options));
}
