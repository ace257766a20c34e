import { startNode } from "../../adapters/deno/mod.ts";
import { durableClusterTest } from "./durable_cluster.ts";

if (typeof Deno !== "undefined") durableClusterTest("deno", (options) => startNode(options), 10_000);
