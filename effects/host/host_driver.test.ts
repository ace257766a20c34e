/**
 * The host driver on its own: three hosts of several groups each, over a
 * hand-driven network with instant disks and a shared clock.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { makeConfig } from "../../core/config.ts";
import { membershipOf } from "../../core/membership.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import type { GroupId } from "../../core/types.ts";
import { ELECTION_MS, HOST_IDS, HostNet } from "../../tests/host_net.ts";

const ids = HOST_IDS;
/** Three hosts of `groups`, quiescent unless told otherwise. */
const newNet = (groups: readonly GroupId[], quiesce = true) => new HostNet({ groups, quiesce });

test("every group elects a leader and commits through its own log; one write unit per host iteration", () => {
  const net = newNet([1, 2, 3, 4]);
  net.run(2_000);
  for (const g of [1, 2, 3, 4]) assert.ok(net.leader(g), `group ${g} has a leader`);
  const writesBefore = net.writes;
  for (const g of [1, 2, 3, 4]) {
    const leader = net.hosts.get(net.leader(g)!)!;
    leader.call(g, (d) => d.propose(new Uint8Array([g]), net.now, (o) => net.results.set(g, o)));
  }
  net.run(100);
  for (const g of [1, 2, 3, 4]) {
    assert.equal((net.results.get(g) as { ok: boolean }).ok, true, `group ${g}'s proposal applied`);
    const commit = net.hosts.get(net.leader(g)!)!.driver(g)!.state.commit;
    for (const id of ids) assert.equal(net.applied.get(`${id}/${g}`), commit, `${id} applied group ${g}`);
  }
  assert.ok(net.writes > writesBefore);
});

test("idle groups quiesce: afterwards only the hosts' beacons cross the network", () => {
  const net = newNet([1, 2, 3, 4, 5, 6, 7, 8]);
  net.run(3_000);
  for (let g = 1; g <= 8; g++) {
    for (const id of ids) assert.ok(isQuiescent(net.hosts.get(id)!.driver(g)!.state), `${id}/${g} quiescent`);
  }
  const before = net.delivered;
  net.run(1_000);
  const perSecond = net.delivered - before;
  // One beacon per pair of processes per interval at most (6 directed pairs, 50 intervals), whatever the groups.
  assert.ok(perSecond <= 6 * 50, `${perSecond} messages in a second`);
  assert.ok(perSecond > 0, "the failure detector still beacons");
});

test("without quiescence the same idle groups keep heartbeating (coalesced on the wire)", () => {
  const net = newNet([1, 2, 3, 4, 5, 6, 7, 8], false);
  net.run(3_000);
  const before = net.groupMessages;
  const wireBefore = net.delivered;
  net.run(1_000);
  const perGroup = net.groupMessages - before;
  const wire = net.delivered - wireBefore;
  assert.ok(perGroup > 8 * 2 * 2 * 40, `${perGroup} group messages in a second`);
  assert.ok(wire * 2 < perGroup, `${wire} messages on the wire for ${perGroup} group messages`);
});

test("a lost process: the failure detector wakes the quiescent groups it led, and they elect elsewhere", () => {
  const net = newNet([1, 2, 3, 4, 5, 6]);
  net.run(3_000);
  const led = [1, 2, 3, 4, 5, 6].filter((g) => net.leader(g) === "a");
  const other = [1, 2, 3, 4, 5, 6].filter((g) => net.leader(g) !== "a");
  net.down.add("a");
  net.run(2_000);
  for (const g of led) {
    const leader = net.leader(g);
    assert.ok(leader !== undefined && leader !== "a", `group ${g} moved to ${leader}`);
  }
  for (const g of other) assert.ok(net.leader(g) !== "a");
  // And they quiesce again, with a's progress missing they cannot: those led by b or c stay awake
  // (a member is gone), which is the price of check-quorum's safety.
  assert.ok(led.length + other.length === 6);
});

test("a process silent past the failure timeout, then back: the followers it woke quiesce again, nobody is unseated", () => {
  const groups = [1, 2, 3, 4, 5, 6];
  const net = newNet(groups);
  net.run(3_000);
  const before = new Map(
    groups.map((g) => [g, { leader: net.leader(g), term: net.hosts.get("b")!.driver(g)!.state.term }]),
  );
  const led = groups.filter((g) => net.leader(g) === "a");
  assert.ok(led.length > 0);
  // Silent (stalled, or its frames late) for longer than the failure timeout, shorter than the
  // timeout plus an election timeout: b and c report it down, and the followers of its groups wake.
  net.down.add("a");
  net.run(ELECTION_MS * 1.3);
  for (const g of led) assert.equal(isQuiescent(net.hosts.get("b")!.driver(g)!.state), false, `b/${g} woke`);
  net.down.delete("a");
  const seen = new Map([...net.stepped].map(([k, log]) => [k, log.length]));
  net.run(3_000);
  // Heard again before their timers ran out: no campaign, not even a pre-vote, and no leader woken.
  for (const [k, log] of net.stepped) {
    const after = log.slice(seen.get(k));
    assert.ok(!after.some((m) => m.type === "RequestVote"), `${k} was asked for a vote`);
  }
  for (const g of groups) {
    assert.equal(net.leader(g), before.get(g)!.leader, `group ${g} keeps its leader`);
    for (const id of ids) {
      const s = net.hosts.get(id)!.driver(g)!.state;
      assert.equal(s.term, before.get(g)!.term, `${id}/${g}: no election`);
      assert.ok(isQuiescent(s), `${id}/${g} quiescent again`);
    }
  }
});

test("messages for a group the host does not run are dropped and counted", () => {
  const net = newNet([1]);
  const host = net.hosts.get("a")!;
  host.receive({ type: "TimeoutNow", group: 9, from: "b", to: "a", term: 5, candidate: "a" }, 0);
  assert.equal(host.unknownGroup, 1);
  assert.equal(host.driver(1)!.state.term, 0);
});

test("groups are added and removed at run time, each with its own membership", () => {
  const net = newNet([1]);
  net.run(2_000);
  // Group 2 only on a and b.
  for (const id of ["a", "b"]) {
    net.hosts.get(id)!.addGroup(
      2,
      {
        config: makeConfig({ id, group: 2, electionTimeoutMs: 200, heartbeatMs: 20, quiesce: true }),
        membership: membershipOf(["a", "b"]),
      },
      {},
      net.now,
    );
  }
  net.run(2_000);
  assert.ok(net.leader(2) === "a" || net.leader(2) === "b");
  let stopped: unknown;
  const host = net.hosts.get("a")!;
  host.call(1, (d) => d.read(net.now, (o) => (stopped = o)));
  host.removeGroup(1);
  assert.equal(host.driver(1), undefined);
  assert.equal((stopped as { ok: boolean } | undefined)?.ok ?? false, false);
  net.run(1_000);
  assert.ok(net.leader(2));
});

test("a quiescent group does nothing: no timer armed, none fires, no send but beacons, no write; a proposal wakes it", () => {
  const groups = [1, 2, 3, 4, 5, 6, 7, 8];
  const net = newNet(groups);
  const all = () => groups.every((g) => ids.every((id) => isQuiescent(net.hosts.get(id)!.driver(g)!.state)));
  // Caught at the moment the last one quiesces: the timers armed while they were busy are still pending.
  for (let t = 0; t < 5_000 && !all(); t += 5) net.run(5);
  assert.ok(all(), "every group quiesced");
  let fired = 0;
  for (const id of ids) {
    for (const g of groups) {
      const host = net.hosts.get(id)!;
      assert.deepEqual(host.armedTimers(g), [], `${id}/${g} has no timer armed`);
      const d = host.driver(g)!;
      const timer = d.timer.bind(d);
      const tick = d.tick.bind(d);
      d.timer = (kind, now) => (fired++, timer(kind, now));
      d.tick = (now) => (fired++, tick(now));
    }
  }
  const writes = net.writes;
  net.recording = true;
  net.run(2_000);
  net.recording = false;
  assert.equal(fired, 0, "no group timer or deadline fired");
  assert.equal(net.writes, writes, "nothing written");
  const sent = net.takes.flatMap((t) => t.sends);
  assert.ok(sent.length > 0 && sent.every((m) => m.type === "HostHeartbeat"), "only the hosts' beacons went out");

  // A proposal wakes the group (its leader re-arms its timers), commits, and the group quiesces again, leaving
  // nothing armed behind it (the request's deadline went with it).
  const leader = net.leader(1)!;
  const host = net.hosts.get(leader)!;
  host.call(1, (d) => d.propose(new Uint8Array([1]), net.now, (o) => net.results.set(1, o)));
  net.settle();
  assert.ok(!isQuiescent(host.driver(1)!.state), "the proposal woke the leader");
  assert.ok(host.armedTimers(1).includes("heartbeat"), "the woken leader heartbeats");
  for (let t = 0; t < 5_000 && !all(); t += 5) net.run(5);
  assert.equal((net.results.get(1) as { ok: boolean }).ok, true, "the proposal applied");
  assert.ok(all(), "quiescent again");
  for (const id of ids) assert.deepEqual(net.hosts.get(id)!.armedTimers(1), [], `${id}/1 has no timer armed`);
});
