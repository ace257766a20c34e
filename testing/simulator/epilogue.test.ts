import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { membershipOf } from "../../core/state.ts";
import { calmPhase } from "./epilogue.ts";
import { InvariantViolation } from "./invariants.ts";
import { Simulator } from "./simulator.ts";

/** A fault-free 3-node cluster that has elected a leader and passed the liveness check. */
function settledCluster(seed: number, nodes = 3, snapshots = false, trace?: string[]): Simulator {
  const raft = snapshots ? { snapshotEvery: 20, keepAfterSnapshot: 5 } : {};
  const onTrace = trace && ((line: string) => void trace.push(line));
  const sim = new Simulator({ seed, nodes, faults: false, raft, ...(onTrace ? { onTrace } : {}) });
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

  test("a follower behind a snapshot whose first message is lost catches up", () => {
    for (let seed = 1; seed <= 3; seed++) {
      const trace: string[] = [];
      const sim = settledCluster(seed, 3, true, trace);
      calmPhase(sim);
      const lost = trace.filter((l) => l.includes("lost InstallSnapshot"));
      assert.equal(lost.length, 1, `seed ${seed}: the schedule lost no snapshot message`);
      assert.equal(sim.leaders().length, 1);
    }
  });

  test("a follower that never receives its snapshot is reported", () => {
    const sim = settledCluster(2, 3, true);
    const original = sim.dropNext.bind(sim);
    sim.dropNext = (match) => original(match, Infinity); // every snapshot message to it is lost
    assert.throws(
      () => calmPhase(sim),
      (e) =>
        e instanceof InvariantViolation && e.invariant === "calm phase" && /lost the first snapshot/.test(e.detail),
    );
  });

  test("the §4.1 errata schedule runs on four voters and honest Raft commits one entry per index", () => {
    let acted = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const sim = settledCluster(seed, 4);
      const asked: string[] = [];
      const original = sim.proposeConfChange.bind(sim);
      sim.proposeConfChange = (id, change) => {
        asked.push(`${id}:${change.type}`);
        original(id, change);
      };
      calmPhase(sim);
      if (asked.filter((x) => x.endsWith(":remove")).length === 2) acted++; // both removals asked: the new leader was not the node a removes
      assert.equal(sim.leaders().length, 1, `seed ${seed}`);
    }
    assert.ok(acted >= 2, `the full schedule ran on ${acted} of 6 seeds`);
  });

  test("the lone-voter schedule runs: a voter crashed at its election, its term not yet on disk, leads again", () => {
    for (let seed = 1; seed <= 3; seed++) {
      const trace: string[] = [];
      const sim = settledCluster(seed, 3, false, trace);
      calmPhase(sim);
      assert.ok(trace.some((l) => l.includes("the only voter")), `seed ${seed}: the schedule did not run`);
      const a = sim.leader()!;
      assert.deepEqual(membershipOf(sim.state(a)).voters, [a]);
      assert.equal(sim.values(a).get("lone"), "second", `seed ${seed}`);
    }
  });
});
