/**
 * The Promise API's view of a node's observability: a `logger` option that
 * gets leveled, structured lines (from `logLevel` on), a `metrics()`
 * snapshot and `prometheusMetrics()` text of the node's own registry. Peers
 * unreachable and back, slow fsyncs and refusals by limits are reported.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { createNode, type LogRecord, type MetricSeries, RaftRejected } from "../../mod.ts";
import { testConfig, waitFor } from "./testkit.ts";

const value = (series: readonly MetricSeries[], name: string, attributes: Record<string, string> = {}) => {
  const s = series.find((m) => m.name === name && Object.entries(attributes).every(([k, v]) => m.attributes[k] === v));
  if (s === undefined) return undefined;
  return s.type === "histogram" ? s.count : s.value;
};

describe("the Promise API's logger and metrics", () => {
  test("lines from logLevel on, peers unreachable and back, and a metrics snapshot", { timeout: 30_000 }, async () => {
    const hub = new MemoryHub();
    const ids = ["a", "b", "c"];
    const peers = Object.fromEntries(ids.map((id) => [id, id]));
    const records: LogRecord[] = [];
    const stores = new Map(ids.map((id) => [id, { log: new MemoryLogStore(), snapshots: new MemorySnapshotStore() }]));
    const start = (id: string) =>
      createNode({
        id,
        peers,
        stateMachine: { apply: (n: number) => n },
        logStore: stores.get(id)!.log,
        snapshotStore: stores.get(id)!.snapshots,
        transport: hub.transport(id),
        config: testConfig,
        logger: (r) => void records.push(r),
        logLevel: "debug",
      });
    const nodes = new Map(await Promise.all(ids.map(async (id) => [id, await start(id)] as const)));
    try {
      const leader = await waitFor(() => [...nodes.values()].find((n) => n.status().role === "leader"), 4000);
      for (let i = 0; i < 5; i++) await leader.propose(i);
      const victim = ids.find((id) => id !== leader.id)!;
      await nodes.get(victim)!.stop();
      const said = (re: RegExp, node = leader.id) =>
        records.find((r) => r.annotations.node === node && re.test(r.message));
      const gone = await waitFor(() => said(new RegExp(`^peer ${victim} is unreachable$`)), 4000, "unreachable");
      assert.equal(gone.level, "warn");
      assert.equal(gone.annotations.peer, victim);
      assert.equal(value(leader.metrics(), "plank_peers_unreachable"), 1);
      assert.ok(value(leader.metrics(), "plank_peer_unreachable_total", { peer: victim })! >= 1);
      nodes.set(victim, await start(victim));
      await waitFor(() => said(new RegExp(`^peer ${victim} is reachable again$`)), 4000, "reachable again");
      await waitFor(() => value(leader.metrics(), "plank_peers_unreachable") === 0, 4000, "the gauge back at 0");

      for (const r of records) {
        assert.ok(["trace", "debug", "info", "warn", "error"].includes(r.level));
        for (const key of ["node", "group", "term", "role"]) assert.ok(key in r.annotations, key);
        assert.ok(r.time instanceof Date);
      }
      assert.ok(records.some((r) => r.level === "debug"), "debug lines at logLevel debug");
      assert.ok(records.some((r) => r.annotations.node === victim && /^started at term [1-9]/.test(r.message)));

      // metrics(): this node's series only, as plain data; the same in Prometheus text.
      const series = leader.metrics();
      assert.ok(series.every((m) => m.attributes.node === leader.id));
      assert.equal(value(series, "plank_is_leader"), 1);
      assert.equal(value(series, "plank_commit_index"), leader.status().commit);
      assert.ok(value(series, "plank_proposals_applied_total")! >= 5);
      assert.ok(value(series, "plank_wal_fsync_duration_seconds")! >= 1);
      const fsync = series.find((m) => m.name === "plank_wal_fsync_duration_seconds")!;
      assert.ok(fsync.type === "histogram" && fsync.buckets.at(-1)![1] === fsync.count, "cumulative buckets");
      const text = leader.prometheusMetrics();
      assert.match(text, /^# TYPE plank_term gauge$/m);
      assert.match(text, new RegExp(`^plank_is_leader\\{node="${leader.id}",group="0"\\} 1$`, "m"));
    } finally {
      await Promise.allSettled([...nodes.values()].map((n) => n.stop()));
    }
  });

  test("slow fsyncs are warned about and counted; refusals by limits are counted by reason", async () => {
    const records: LogRecord[] = [];
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: { apply: (s: string) => s.length },
      logStore: new MemoryLogStore({ beforeSync: () => new Promise((r) => setTimeout(r, 5)) }),
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("a"),
      config: { ...testConfig, maxUncommittedBytes: 64 },
      slowFsyncMs: 2,
      logger: (r) => void records.push(r),
      logLevel: "warn",
    });
    try {
      await waitFor(() => node.status().role === "leader");
      await node.propose("x");
      // The first of these is appended (nothing was uncommitted); the others exceed the 64-byte bound.
      const outcomes = await Promise.allSettled([1, 2, 3].map(() => node.propose("y".repeat(100))));
      const refused = outcomes.filter((o) =>
        o.status === "rejected" && o.reason instanceof RaftRejected && o.reason.reason === "too-large"
      );
      assert.equal(refused.length, 2, JSON.stringify(outcomes));
      assert.ok(records.every((r) => r.level === "warn" || r.level === "error"), "nothing below logLevel");
      const slow = records.find((r) => /^slow fsync: \d+ ms for \d+ entries \(over 2 ms\)$/.test(r.message));
      assert.ok(slow && slow.level === "warn", "a slow fsync line");
      assert.ok(value(node.metrics(), "plank_wal_slow_fsyncs_total")! >= 1);
      assert.equal(value(node.metrics(), "plank_requests_refused_total", { reason: "too-large" }), 2);
      assert.equal(value(node.metrics(), "plank_proposals_failed_total", { error: "RaftRejected" }), 2);
    } finally {
      await node.stop();
    }
    // After stop, the state gauges are gone; the totals stay.
    assert.equal(value(node.metrics(), "plank_term"), undefined);
    assert.ok(value(node.metrics(), "plank_proposals_applied_total")! >= 1);
  });
});
