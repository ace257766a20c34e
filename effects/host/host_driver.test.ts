/**
 * The host driver on its own: three hosts of several groups each, over a
 * hand-driven network with instant disks and a shared clock.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { makeConfig } from "../../core/config.ts";
import { membershipOf } from "../../core/membership.ts";
import { isQuiescent } from "../../core/quiesce.ts";
import type { GroupId, Message, NodeId } from "../../core/types.ts";
import { HostDriver } from "./host_driver.ts";

const ids = ["a", "b", "c"];

class Net {
  readonly hosts = new Map<NodeId, HostDriver>();
  readonly applied = new Map<string, number>();
  now = 0;
  inFlight: Message[] = [];
  down = new Set<NodeId>();
  delivered = 0;
  /** Group messages delivered: a coalesced message counts each it carries. */
  groupMessages = 0;
  writes = 0;
  readonly results = new Map<number, unknown>();

  constructor(groups: readonly GroupId[], quiesce = true) {
    for (const id of ids) {
      const host = new HostDriver({ self: id, heartbeatMs: 20, failureTimeoutMs: 200 }, 0);
      for (const g of groups) {
        host.addGroup(
          g,
          {
            config: makeConfig({
              id,
              group: g,
              electionTimeoutMs: 200,
              heartbeatMs: 20,
              quiesce,
              seed: g * 7 + id.charCodeAt(0),
            }),
            membership: membershipOf(ids),
          },
          {},
          0,
        );
      }
      this.hosts.set(id, host);
    }
  }

  /** Carries out every host's work until none is left (messages delivered at once, writes durable at once). */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const [id, host] of this.hosts) {
        if (this.down.has(id)) continue;
        while (host.hasWork) {
          busy = true;
          const w = host.take();
          for (const m of w.sends) this.inFlight.push(m);
          if (w.write) {
            this.writes++;
            host.written(w.write.id, this.now);
          }
          for (const a of w.applies) {
            host.applyAll(a.group, a.entries, (e) => {
              this.applied.set(`${id}/${a.group}`, e.index);
              return e.index;
            });
          }
        }
      }
      const msgs = this.inFlight;
      this.inFlight = [];
      for (const m of msgs) {
        if (this.down.has(m.to) || this.down.has(m.from)) continue;
        this.delivered++;
        this.groupMessages += m.type === "Heartbeats" || m.type === "HeartbeatResponses" ? m.items.length : 1;
        this.hosts.get(m.to)!.receive(m, this.now);
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error("no quiescence of the work loop");
  }

  /** Advances the clock by `ms`, firing timers in order. */
  run(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      this.settle();
      let next = Infinity;
      for (const [id, h] of this.hosts) if (!this.down.has(id)) next = Math.min(next, h.nextDeadline());
      if (next > until) break;
      this.now = Math.max(this.now, next);
      for (const [id, h] of this.hosts) if (!this.down.has(id)) h.tick(this.now);
    }
    this.now = until;
  }

  leader(g: GroupId): NodeId | undefined {
    for (const [id, h] of this.hosts) {
      if (!this.down.has(id) && h.driver(g)?.state.role.kind === "leader") return id;
    }
    return undefined;
  }
}

test("every group elects a leader and commits through its own log; one write unit per host iteration", () => {
  const net = new Net([1, 2, 3, 4]);
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
  const net = new Net([1, 2, 3, 4, 5, 6, 7, 8]);
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
  const net = new Net([1, 2, 3, 4, 5, 6, 7, 8], false);
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
  const net = new Net([1, 2, 3, 4, 5, 6]);
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

test("messages for a group the host does not run are dropped and counted", () => {
  const net = new Net([1]);
  const host = net.hosts.get("a")!;
  host.receive({ type: "TimeoutNow", group: 9, from: "b", to: "a", term: 5, candidate: "a" }, 0);
  assert.equal(host.unknownGroup, 1);
  assert.equal(host.driver(1)!.state.term, 0);
});

test("groups are added and removed at run time, each with its own membership", () => {
  const net = new Net([1]);
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
