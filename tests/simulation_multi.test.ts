/**
 * The multi-group sweep: many Raft groups on the same simulated processes
 * (`testing/simulator/multi.ts`), with quiescence on, a lossy network,
 * partitions and crashes of whole processes (every group's unsynced writes
 * lost together). Each seed checks Raft's safety per group after every step,
 * check-quorum per group as an oracle, then liveness, quiescence of every idle
 * group, failover of quiescent groups when the process leading most of them
 * crashes, and linearizability of the clients' history (keys are per group).
 *
 * A failure prints the seed and the command that reproduces it
 * (`deno run -A tests/sim_multi_run.ts --seed S --nodes N --groups G`).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { runMultiSimulation } from "../testing/simulator/multi.ts";

const CHUNK = 10;

function sweep(nodes: number, groups: number, seeds: number, steps: number, snapshotEvery = 0): void {
  for (let from = 1; from <= seeds; from += CHUNK) {
    const to = Math.min(seeds, from + CHUNK - 1);
    test(`seeds ${from}–${to}`, () => {
      for (let seed = from; seed <= to; seed++) {
        const report = runMultiSimulation({
          seed,
          nodes,
          groups,
          steps,
          snapshotEvery,
          reproduce:
            `deno run -A tests/sim_multi_run.ts --seed ${seed} --nodes ${nodes} --groups ${groups} --steps ${steps}${
              snapshotEvery > 0 ? " --snapshots" : ""
            }`,
        });
        assert.equal(report.linearizability, "ok", `seed ${seed}: linearizability check inconclusive`);
        // Quiescent, only the failure detector's beacons cross the network: at most one per
        // directed pair of processes per heartbeat interval (40 ms), whatever the number of groups (5% for the
        // window edges).
        assert.ok(
          report.quiescentMessagesPerSecond <= nodes * (nodes - 1) * 25 * 1.05,
          `seed ${seed}: ${report.quiescentMessagesPerSecond}/s`,
        );
        assert.ok(report.completed > 0, `seed ${seed}: no client operation completed`);
      }
    });
  }
}

describe("multi-group sweep: 3 processes x 8 groups, faults", () => sweep(3, 8, 60, 6000));
describe("multi-group sweep: 3 processes x 4 groups, faults, snapshots", () => sweep(3, 4, 40, 6000, 5));
describe("multi-group sweep: 5 processes x 6 groups, faults, snapshots", () => sweep(5, 6, 30, 8000, 5));
