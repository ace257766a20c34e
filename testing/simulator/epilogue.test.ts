import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { calmPhase } from "./epilogue.ts";
import { InvariantViolation } from "./invariants.ts";
import { Simulator } from "./simulator.ts";

/** A fault-free 3-node cluster that has elected a leader and passed the liveness check. */
function settledCluster(seed: number): Simulator {
  const sim = new Simulator({ seed, nodes: 3, faults: false });
  sim.runSteps(300);
  sim.checkLiveness();
  return sim;
}

describe("calm phase", () => {
  test("on honest Raft every step runs and holds: a transfer is asked for and hands over or aborts", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const sim = settledCluster(seed);
      calmPhase(sim);
      assert.equal(sim.transfers.size, 1, `seed ${seed}: the calm phase asked for no transfer`);
      assert.equal(sim.leaders().length, 1);
    }
  });

  test("a forged message that does disrupt the leader is reported", () => {
    const sim = settledCluster(1);
    const leader = sim.leader()!;
    const follower = sim.nodeIds.find((id) => id !== leader)!;
    const group = sim.state(leader).config.group;
    // A forged higher-term AppendEntries *response* from a follower is one Raft obeys (§5.1: a
    // higher term makes the leader step down), so the calm phase's stability check must see it.
    let sent = false;
    const original = sim.inject.bind(sim);
    sim.inject = (m) => {
      original(m);
      if (sent) return;
      sent = true;
      original({
        type: "AppendEntriesResponse",
        group,
        from: follower,
        to: leader,
        term: sim.state(leader).term + 5,
        success: false,
        index: 0,
        conflictTerm: 0,
        conflictIndex: 0,
        seq: 0,
      });
    };
    assert.throws(() => calmPhase(sim), (e) => e instanceof InvariantViolation && e.invariant === "calm phase");
  });
});
