/**
 * Many groups starting at once on one host: election timeouts fire in waves
 * of at most `electionsPerTick`, and the failure detector does not blame
 * peers for this process's own stalls.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { makeConfig } from "../../core/config.ts";
import { membershipOf } from "../../core/membership.ts";
import { HostDriver } from "./host_driver.ts";
import { Liveness } from "./liveness.ts";

const ids = ["a", "b", "c"];

/** Host `a` of `n` groups (peers b and c never answer), its work taken once. */
function host(n: number, electionsPerTick?: number): HostDriver {
  const h = new HostDriver({ self: "a", heartbeatMs: 20, failureTimeoutMs: 200, electionsPerTick }, 0);
  for (let g = 1; g <= n; g++) {
    const config = makeConfig({ id: "a", group: g, electionTimeoutMs: 200, heartbeatMs: 20, seed: g });
    h.addGroup(g, { config, membership: membershipOf(ids) }, {}, 0);
  }
  h.take();
  return h;
}

/** A tick at `now`, peers b and c heard just before (their beacons: they are up, only silent in these groups). */
function tick(h: HostDriver, now: number): void {
  for (const from of ["b", "c"]) h.receive({ type: "HostHeartbeat", group: 0, from, to: "a", term: 0 }, now);
  h.tick(now);
}

const campaigning = (h: HostDriver) => h.groupIds().filter((g) => h.driver(g)!.state.role.kind !== "follower").length;

test("a tick fires at most electionsPerTick election timeouts; the rest campaign later", () => {
  const h = host(300, 50);
  let most = 0;
  for (let now = 0; now <= 1500; now += 5) {
    const before = campaigning(h);
    tick(h, now);
    const started = campaigning(h) - before;
    assert.ok(started <= 50, `at ${now}: ${started} campaigns in one tick`);
    most = Math.max(most, started);
    h.take();
  }
  // 300 timeouts within 200-400 ms of the start, 5 ms apart at most: some tick was cut to 50.
  assert.equal(most, 50);
  assert.equal(campaigning(h), 300, "every group campaigned");
});

test("liveness: a peer is down after the timeout of this process's own time, not after its stall", () => {
  const l = new Liveness(100, 1000, 0);
  l.watch(["b"], 0);
  for (let now = 100; now <= 500; now += 100) assert.deepEqual(l.due(now).down, []);
  // This process was stalled for 3 s (no due() call): b is not blamed for it.
  assert.deepEqual(l.due(3500).down, []);
  assert.ok(l.isUp("b"));
  // Still silent as this process keeps time: down once its own timeout has passed.
  let lost: number | undefined;
  for (let now = 3600; now <= 5000 && lost === undefined; now += 100) if (l.due(now).down.includes("b")) lost = now;
  assert.ok(lost !== undefined && lost >= 3700 && lost <= 4500, `down at ${lost}`);
});

test("liveness: a peer silent while this process keeps time is down after the timeout", () => {
  const l = new Liveness(100, 1000, 0);
  l.watch(["b"], 0);
  let lost: number | undefined;
  for (let now = 100; now <= 2000 && lost === undefined; now += 100) if (l.due(now).down.includes("b")) lost = now;
  assert.equal(lost, 1000);
});

test("liveness: hearing a peer reported down brings it back, once; an older frame never moves it back", () => {
  const l = new Liveness(100, 1000, 0);
  l.watch(["b"], 0);
  assert.equal(l.heard("b", 500), false, "up all along");
  let lost: number | undefined;
  for (let now = 600; now <= 2000 && lost === undefined; now += 100) if (l.due(now).down.includes("b")) lost = now;
  assert.equal(lost, 1500);
  assert.equal(l.heard("b", 1600), true, "back");
  assert.equal(l.heard("b", 1650), false, "already back");
  // A frame that reached the process earlier but was handled later counts from its arrival, not before the latest.
  l.heard("b", 1200);
  lost = undefined;
  for (let now = 1600; now <= 3000 && lost === undefined; now += 50) if (l.due(now).down.includes("b")) lost = now;
  assert.equal(lost, 2650, "down one timeout after the latest frame");
});
