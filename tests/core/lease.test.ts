import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendResponse, effectsOf, leaderWith, receive, run, sent } from "../core_helpers.ts";
import { lastIndex } from "../../core/log.ts";
import type { RaftState } from "../../core/state.ts";
import type { Input } from "../../core/types.ts";

const ELECTION = 1000;

/** A leader of a, b, c with lease reads on, b and c caught up, and the no-op committed. */
function leaseLeader(): RaftState {
  return leaderWith("a", {
    replicating: ["b", "c"],
    config: { leaseReads: true, clockDrift: 0.1, electionTimeoutMs: ELECTION, heartbeatMs: 100 },
  });
}

const heartbeatAt = (now: number): Input => ({ type: "Timeout", timer: "heartbeat", now });
const readAt = (requestId: number, now: number): Input => ({ type: "ReadIndex", requestId, now });

/** Sends a heartbeat round at `now` and has `from` acknowledge it. */
function confirmedRoundAt(s: RaftState, now: number, from: string[]): RaftState {
  const r = run(s, heartbeatAt(now));
  const round = sent(r.effects, "AppendEntries")[0]!.seq;
  const acks = from.map((f) =>
    receive(appendResponse({ from: f, to: "a", term: r.state.term, index: lastIndex(r.state.log), seq: round }))
  );
  return run(r.state, ...acks).state;
}

describe("lease reads (thesis §6.4.1)", () => {
  test("a read within the lease is served at once, without a heartbeat round", () => {
    const s = confirmedRoundAt(leaseLeader(), 10_000, ["b"]);
    const r = run(s, readAt(7, 10_500));
    assert.deepEqual(effectsOf(r.effects, "ReadReady"), [{ type: "ReadReady", requestId: 7, index: s.commit }]);
    assert.equal(sent(r.effects, "AppendEntries").length, 0);
  });

  test("the lease ends an election timeout (less the drift bound) after the confirmed round was sent", () => {
    const s = confirmedRoundAt(leaseLeader(), 10_000, ["b"]);
    // 10_000 + 1000 * 0.9 = 10_900: past it, the read falls back to a ReadIndex round.
    const r = run(s, readAt(7, 10_900));
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0);
    assert.ok(sent(r.effects, "AppendEntries").length > 0, "a confirmation round goes out");
  });

  test("a round acknowledged by no quorum grants no lease", () => {
    const s = run(leaseLeader(), heartbeatAt(10_000)).state;
    const r = run(s, readAt(7, 10_100));
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0);
  });

  test("without a clock reading on the input the leader never uses a lease", () => {
    const s = confirmedRoundAt(leaseLeader(), 10_000, ["b"]);
    const r = run(s, { type: "ReadIndex", requestId: 7 });
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0);
  });

  test("lease reads are off unless configured", () => {
    const s0 = leaderWith("a", { replicating: ["b", "c"] });
    const s = confirmedRoundAt(s0, 10_000, ["b"]);
    const r = run(s, readAt(7, 10_100));
    assert.equal(effectsOf(r.effects, "ReadReady").length, 0);
  });

  test("a leadership transfer voids the lease: the target may campaign at once (TimeoutNow, §3.10)", () => {
    const s = confirmedRoundAt(leaseLeader(), 10_000, ["b", "c"]);
    const t = run(s, { type: "TransferLeadership", requestId: 1, to: "b" });
    assert.deepEqual(sent(t.effects, "TimeoutNow").map((m) => [m.to, m.candidate]), [["c", "b"], ["b", "b"]]);
    const during = run(t.state, readAt(7, 10_100));
    assert.equal(effectsOf(during.effects, "ReadReady").length, 0);
    // Even after the transfer is abandoned, the TimeoutNow may still be acted on.
    const after = run(t.state, { type: "Timeout", timer: "transfer" }, readAt(8, 10_200));
    assert.equal(effectsOf(after.effects, "ReadReady").length, 0);
  });
});
