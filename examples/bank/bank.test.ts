import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvariantViolation, profileOptions, runSimulation } from "../../testing.ts";
import { BankMachine, bankModel, bankService, type Breakage } from "./bank.ts";

function run(seed: number, breakage: Breakage = "none") {
  return runSimulation({
    seed,
    nodes: 3,
    steps: 2000,
    service: bankService(breakage),
    ...profileOptions(seed % 2 === 0 ? { snapshots: true, conf: true } : { targeted: true }, 3, seed),
  });
}

/** The first seed in 1…`upTo` that fails, with its violation. */
function firstFailure(breakage: Breakage, upTo: number): InvariantViolation | undefined {
  for (let seed = 1; seed <= upTo; seed++) {
    try {
      run(seed, breakage);
    } catch (e) {
      if (e instanceof InvariantViolation) return e;
      throw e;
    }
  }
  return undefined;
}

describe("the bank under the simulator", () => {
  test("money is conserved, nothing is overdrawn and the history is linearizable, on every seed", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const report = run(seed);
      assert.equal(report.linearizability, "ok", `seed ${seed}`);
      assert.ok(report.completed > 0);
    }
  });

  test("a state machine that allows overdrafts is caught, with the seed and the broken invariant", () => {
    const v = firstFailure("overdraft", 20);
    assert.ok(v, "some seed fails");
    assert.equal(v.invariant, "bank invariant");
    assert.match(v.message, /overdrawn/);
    assert.match(v.message, /reproduce: /);
    assert.ok(v.trace.length > 0, "with a trace");
  });

  test("a state machine that applies a duplicated transfer twice is caught", () => {
    const v = firstFailure("no-dedup", 40);
    assert.ok(v, "some seed fails");
    assert.ok(["linearizability", "bank invariant"].includes(v.invariant), v.invariant);
  });

  test("the machine and the model agree on a refused transfer", () => {
    const m = new BankMachine();
    assert.equal(m.apply({ opId: 1, op: "transfer", from: "alice", to: "bob", amount: 500 }), false);
    assert.equal(m.check(), undefined);
    const step = bankModel.step(bankModel.init(), { op: "transfer", from: "alice", to: "bob", amount: 500 }, {
      ok: false,
    });
    assert.ok(step.ok);
  });
});
