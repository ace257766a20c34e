import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeConfig } from "../../core/config.ts";
import { membershipOf } from "../../core/membership.ts";
import type { Entry, Input, Message, SnapshotMeta } from "../../core/types.ts";
import { OutcomeUnknown, ProposalCancelled } from "../errors.ts";
import { type DriverOptions, NodeDriver, type Work } from "./driver.ts";
import type { Observation } from "./observations.ts";
import type { Outcome } from "./requests.ts";

const config = (id: string) => makeConfig({ id, electionTimeoutMs: 100, heartbeatMs: 20, preVote: false });

/** A driver whose steps are recorded. */
function driver(id: string, voters: string[], options: Partial<DriverOptions> = {}) {
  const steps: Input[] = [];
  const d = new NodeDriver(
    { config: config(id), membership: membershipOf(voters), onStep: (input) => void steps.push(input), ...options },
    {},
    0,
  );
  return { d, steps };
}

/** Carries out `work` as a shell with an instant disk would: sends are returned, writes are durable at once. */
function drain(d: NodeDriver, now: number, apply: (e: Entry) => unknown = () => "ok"): Message[] {
  const sent: Message[] = [];
  while (d.hasWork) {
    const w: Work = d.take();
    sent.push(...w.sends);
    if (w.write) d.written(w.write.id, now);
    void d.applyAll(w.applies, apply);
  }
  return sent;
}

/** A single voter that has elected itself. */
function soloLeader(options: Partial<DriverOptions> = {}) {
  const r = driver("a", ["a"], options);
  drain(r.d, 0);
  r.d.timer("election", 100); // past the start-up stickiness
  r.d.timer("election", 150);
  drain(r.d, 150);
  assert.equal(r.d.state.role.kind, "leader");
  return r;
}

describe("node driver", () => {
  test("group commit: proposals between two takes are one Propose input and one write", () => {
    const { d, steps } = soloLeader();
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 5; i++) d.propose(new Uint8Array([i]), 200, (o) => void outcomes.push(o));
    steps.length = 0;
    const work = d.take();
    assert.deepEqual(steps.map((s) => s.type), ["Propose"]);
    assert.equal(work.write?.stages.length, 1);
    assert.equal(work.write?.stages[0]?.batch?.entries.length, 5);
    assert.equal(outcomes.length, 0, "nothing settles before the write is durable");
    d.written(work.write!.id, 201);
    drain(d, 201);
    assert.equal(outcomes.length, 5);
    assert.ok(outcomes.every((o) => o.ok && o.value === "ok"));
  });

  test("what waits for a write leaves only once it is durable; writes are reported in order", () => {
    const { d } = driver("b", ["a", "b", "c"]);
    drain(d, 0);
    d.receive({
      group: 0,
      from: "a",
      to: "b",
      term: 1,
      type: "AppendEntries",
      prevIndex: 0,
      prevTerm: 0,
      entries: [{ index: 1, term: 1, kind: "noop", data: new Uint8Array(), config: undefined }],
      commit: 0,
      seq: 1,
    }, 10);
    const first = d.take();
    assert.deepEqual(first.sends, [], "the acknowledgement waits for the write");
    assert.ok(first.write && !first.write.empty);
    d.receive({
      group: 0,
      from: "a",
      to: "b",
      term: 1,
      type: "AppendEntries",
      prevIndex: 1,
      prevTerm: 1,
      entries: [],
      commit: 0,
      seq: 2,
    }, 11);
    const second = d.take();
    assert.deepEqual(second.sends, []);
    assert.ok(second.write?.empty, "a heartbeat's answer rides on an empty unit behind the first");
    assert.throws(() => d.written(second.write!.id, 12), /out of order/);
    d.written(first.write.id, 12);
    const acks = d.take().sends;
    assert.deepEqual(acks.map((m) => m.type), ["AppendEntriesResponse"]);
  });

  test("a request not settled within requestTimeoutMs fails with OutcomeUnknown at tick(now)", () => {
    const { d } = driver("b", ["a", "b", "c"], { requestTimeoutMs: 500, leaderWaitMs: 0 });
    drain(d, 0);
    // b follows a, so the proposal is forwarded — and the answer never comes.
    d.receive({
      group: 0,
      from: "a",
      to: "b",
      term: 1,
      type: "AppendEntries",
      prevIndex: 0,
      prevTerm: 0,
      entries: [],
      commit: 0,
      seq: 1,
    }, 10);
    drain(d, 10);
    const got: { outcome?: Outcome } = {};
    const outcome = (): Outcome | undefined => got.outcome;
    d.propose(new Uint8Array([1]), 20, (o) => void (got.outcome = o));
    assert.deepEqual(drain(d, 20).map((m) => m.type), ["Propose"]);
    assert.equal(d.nextDeadline(), 520);
    d.tick(519);
    assert.equal(outcome(), undefined);
    d.tick(520);
    const o = outcome();
    assert.ok(o && !o.ok && o.error instanceof OutcomeUnknown);
  });

  test("a proposal refused for want of a leader waits for one, then is resubmitted", () => {
    const { d, steps } = driver("a", ["a"], { leaderWaitMs: 1000 });
    drain(d, 0);
    const got: { outcome?: Outcome } = {};
    const outcome = (): Outcome | undefined => got.outcome;
    d.propose(new Uint8Array([7]), 10, (o) => void (got.outcome = o));
    drain(d, 10);
    assert.equal(outcome(), undefined, "parked, not failed");
    d.timer("election", 100);
    d.timer("election", 150);
    steps.length = 0;
    drain(d, 150);
    assert.ok(steps.some((s) => s.type === "Propose"), "resubmitted once a leader is known");
    assert.ok(outcome()?.ok);
  });

  test("linearizable reads share rounds: one outstanding, the rest wait for the next", () => {
    const { d, steps } = driver("a", ["a", "b", "c"]);
    drain(d, 0);
    d.timer("election", 100);
    d.timer("election", 150);
    drain(d, 150);
    d.receive(
      { group: 0, from: "b", to: "a", term: 1, type: "RequestVoteResponse", preVote: false, granted: true },
      151,
    );
    const noop = d.state.log.offset + d.state.log.length;
    d.receive({
      group: 0,
      from: "b",
      to: "a",
      term: 1,
      type: "AppendEntriesResponse",
      success: true,
      index: noop,
      conflictTerm: 0,
      conflictIndex: 0,
      seq: 0,
    }, 152);
    drain(d, 152);
    assert.equal(d.state.role.kind, "leader");
    assert.equal(d.state.commit, noop);
    const done: number[] = [];
    steps.length = 0;
    d.read(200, () => void done.push(1));
    d.read(200, () => void done.push(2));
    d.read(200, () => void done.push(3));
    const rounds = () => steps.filter((s) => s.type === "ReadIndex").length;
    assert.equal(rounds(), 1, "one round for the first read");
    const ack = (seq: number) =>
      d.receive({
        group: 0,
        from: "b",
        to: "a",
        term: 1,
        type: "AppendEntriesResponse",
        success: true,
        index: noop,
        conflictTerm: 0,
        conflictIndex: 0,
        seq,
      }, 201);
    ack(d.state.role.kind === "leader" ? d.state.role.seq : 0);
    drain(d, 201);
    assert.deepEqual(done, [1]);
    assert.equal(rounds(), 2, "the waiting reads share the next round");
    ack(d.state.role.kind === "leader" ? d.state.role.seq : 0);
    drain(d, 202);
    assert.deepEqual(done, [1, 2, 3]);
  });

  test("a membership change asked for while another is in flight waits its turn (§4.1), then goes through", () => {
    const { d } = soloLeader();
    const outcomes: Outcome[] = [];
    d.changeMembership({ type: "addLearner", node: "l1" }, 200, (o) => void outcomes.push(o));
    d.changeMembership({ type: "addLearner", node: "l2" }, 200, (o) => void outcomes.push(o));
    assert.equal(outcomes.length, 0, "the second is not refused");
    drain(d, 201);
    assert.equal(outcomes.length, 2);
    assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
    assert.deepEqual([...d.state.configs.at(-1)!.membership.learners].sort(), ["l1", "l2"]);
  });

  test("entries are applied exactly once, in order", () => {
    const { d } = soloLeader();
    const applied: number[] = [];
    d.propose(new Uint8Array([1]), 200, () => {});
    const w = d.take();
    d.written(w.write!.id, 200);
    const next = d.take();
    void d.applyAll(next.applies, (e) => void applied.push(e.index));
    void d.applyAll(next.applies, (e) => void applied.push(e.index));
    assert.deepEqual(applied, [next.applies.at(-1)!.index]);
  });
});

describe("node driver: cancelling and observing", () => {
  const cancelled = (o: Outcome | undefined) => o !== undefined && !o.ok && o.error instanceof ProposalCancelled;

  test("a proposal not yet stepped, or parked for want of a leader, is cancelled; one the core has seen is not", () => {
    const { d, steps } = driver("a", ["a"], { leaderWaitMs: 1000 });
    drain(d, 0);
    const got: (Outcome | undefined)[] = [];
    const parked = d.propose(new Uint8Array([1]), 10, (o) => void (got[0] = o))!;
    drain(d, 10);
    assert.equal(got[0], undefined, "parked: no leader yet");
    assert.ok(d.cancel(parked, new ProposalCancelled()));
    assert.ok(cancelled(got[0]));
    d.timer("election", 100);
    d.timer("election", 150);
    steps.length = 0;
    const applied: Entry[] = [];
    drain(d, 150, (e) => void applied.push(e));
    assert.equal(d.state.role.kind, "leader");
    assert.ok(!steps.some((s) => s.type === "Propose"), "not resubmitted");
    assert.deepEqual(applied.filter((e) => e.kind === "command"), [], "never applied");

    const gathered = d.propose(new Uint8Array([2]), 200, (o) => void (got[1] = o))!;
    assert.ok(d.cancel(gathered, new ProposalCancelled()), "gathered for the next Propose input");
    assert.ok(cancelled(got[1]));
    assert.equal(d.take().write, undefined, "nothing to write");

    const seen = d.propose(new Uint8Array([3]), 300, (o) => void (got[2] = o))!;
    const work = d.take();
    assert.equal(d.cancel(seen, new ProposalCancelled()), false, "appended: it can no longer be taken back");
    d.written(work.write!.id, 301);
    drain(d, 301);
    assert.ok(got[2]?.ok, "and it commits");
  });

  test("observations: where a proposal landed, refusals, read rounds, peers unreachable and back", () => {
    const seen: Observation[] = [];
    const { d } = soloLeader({ onObserve: (o) => void seen.push(o) });
    const id = d.propose(new Uint8Array([1]), 200, () => {})!;
    drain(d, 200);
    const appended = seen.find((o) => o.type === "appended");
    assert.deepEqual(appended, { type: "appended", requestId: id, index: d.state.commit, term: d.state.term });
    d.read(210, () => {});
    drain(d, 210);
    assert.deepEqual(seen.filter((o) => o.type === "readRound"), [{ type: "readRound", ms: 0, readers: 1, ok: true }]);
    seen.length = 0;
    d.unreachable("b", 220);
    d.unreachable("b", 221);
    d.receive(
      { group: 0, from: "b", to: "a", term: 0, type: "RequestVoteResponse", preVote: true, granted: false },
      222,
    );
    d.receive(
      { group: 0, from: "b", to: "a", term: 0, type: "RequestVoteResponse", preVote: true, granted: false },
      223,
    );
    assert.deepEqual(seen.filter((o) => o.type.startsWith("peer")), [
      { type: "peerUnreachable", peer: "b" },
      { type: "peerReachable", peer: "b" },
    ], "transitions only");

    const refusals: Observation[] = [];
    const follower = driver("b", ["a", "b", "c"], { leaderWaitMs: 0, onObserve: (o) => void refusals.push(o) }).d;
    drain(follower, 0);
    follower.propose(new Uint8Array([1]), 10, () => {});
    drain(follower, 10);
    assert.deepEqual(refusals, [{ type: "refused", kind: "propose", reason: "not-leader" }]);
  });
});

describe("node driver: snapshot captures are deferred, never dropped", () => {
  const snapshotting = (id: string) => ({
    config: makeConfig({
      id,
      electionTimeoutMs: 100,
      heartbeatMs: 20,
      preVote: false,
      snapshotEvery: 5,
      keepAfterSnapshot: 0,
    }),
  });

  /**
   * Rounds as effects/runtime/loop.ts runs them (write, written, apply, then
   * capture), with an instant disk; the metas captured are returned and left
   * unstored, as if their stores were still running off the loop.
   */
  function rounds(d: NodeDriver, now: number): SnapshotMeta[] {
    const captured: SnapshotMeta[] = [];
    while (d.hasWork) {
      const w = d.take();
      if (w.write) d.written(w.write.id, now);
      void d.applyAll(w.applies, () => "ok");
      if (w.capture) {
        const meta = d.captureMeta();
        if (meta) captured.push(meta);
      }
    }
    return captured;
  }

  const stored = (meta: SnapshotMeta) => ({ meta, size: 1, checksum: 0 });
  const propose = (d: NodeDriver, count: number, now: number) => {
    for (let i = 0; i < count; i++) d.propose(new Uint8Array([i]), now, () => {});
  };

  test("a leader whose commit moves again before the capture runs captures what it applied", () => {
    const { d } = driver("a", ["a", "b", "c"], snapshotting("a"));
    rounds(d, 0);
    d.timer("election", 100); // past the start-up stickiness
    d.timer("election", 150);
    rounds(d, 150);
    const term = d.state.term;
    d.receive({ group: 0, from: "b", to: "a", term, type: "RequestVoteResponse", preVote: false, granted: true }, 151);
    assert.equal(d.state.role.kind, "leader");
    rounds(d, 151);
    // Two batches appended here and sent, then b's acknowledgements of both arrive before the next round,
    // as several inputs do on a busy leader: the first commit asks for a snapshot, the second applies past it.
    propose(d, 6, 200);
    rounds(d, 200);
    const first = d.state.log.stable;
    propose(d, 3, 210);
    rounds(d, 210);
    const second = d.state.log.stable;
    const ack = (index: number, seq: number): Message => ({
      group: 0,
      from: "b",
      to: "a",
      term,
      type: "AppendEntriesResponse",
      success: true,
      index,
      conflictTerm: 0,
      conflictIndex: 0,
      seq,
    });
    d.receive(ack(first, 1), 220);
    assert.equal(d.state.commit, first);
    d.receive(ack(second, 2), 221);
    assert.equal(d.state.commit, second);
    const captured = rounds(d, 222);
    assert.deepEqual(captured.map((m) => m.index), [second], "captured at the applied index, not skipped");
    assert.equal(captured[0]!.term, term);
  });

  test("a snapshot that falls due while another is being stored is captured once that store is done", () => {
    const { d } = driver("a", ["a"], snapshotting("a"));
    rounds(d, 0);
    d.timer("election", 100);
    d.timer("election", 150);
    rounds(d, 150);
    assert.equal(d.state.role.kind, "leader");
    propose(d, 5, 200);
    const [meta] = rounds(d, 200);
    assert.ok(meta, "the first one is captured");
    propose(d, 5, 210);
    assert.deepEqual(rounds(d, 210), [], "the next waits: the first is still being stored");
    const applied = d.appliedIndex;
    assert.ok(applied - meta.index >= 5, "the core asked for the next one");
    d.snapshotStored(stored(meta), 220);
    assert.ok(d.hasWork, "storing it leaves the deferred capture to do");
    assert.deepEqual(rounds(d, 220).map((m) => m.index), [applied]);
  });

  test("a capture that failed is not retried at once; the core's next request is captured", () => {
    const { d } = driver("a", ["a"], snapshotting("a"));
    rounds(d, 0);
    d.timer("election", 100);
    d.timer("election", 150);
    rounds(d, 150);
    propose(d, 5, 200);
    assert.equal(rounds(d, 200).length, 1);
    d.captureFailed("the state machine cannot snapshot");
    assert.deepEqual(rounds(d, 210), []);
    propose(d, 5, 220);
    assert.deepEqual(rounds(d, 220).map((m) => m.index), [d.appliedIndex]);
  });
});
