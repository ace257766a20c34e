/**
 * Issue 13's acceptance test: a 3-node cluster built with the Effect API
 * inside an app that brings its own Logger, Tracer and metric registry.
 * A few proposals, a read, a leader change and a snapshot (saved by the
 * leader, streamed to a follower that fell behind, restored there) must all
 * reach the app: leveled, annotated log lines; a span per proposal with its
 * WAL write, quorum round and apply as children; and plank's metrics.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Context, Effect, Layer, Logger, Metric, References, Tracer } from "effect";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { layer, METRIC_FAMILIES, portsLayer, Raft, type SnapshotReader } from "../../effect.ts";
import { testConfig, waitFor } from "./testkit.ts";

interface Line {
  readonly level: string;
  readonly message: string;
  readonly annotations: Readonly<Record<string, unknown>>;
}

const ids = ["a", "b", "c"];
const peers = Object.fromEntries(ids.map((id) => [id, id]));

/** The app's own observability: a logger, a tracer and a registry that record what they get. */
function app() {
  const lines: Line[] = [];
  const spans: Tracer.NativeSpan[] = [];
  const registry: Metric.MetricRegistry = new Map();
  const logger = Logger.make((o) => {
    const message = Array.isArray(o.message) ? o.message.join(" ") : String(o.message);
    lines.push({ level: o.logLevel, message, annotations: o.fiber.getRef(References.CurrentLogAnnotations) });
  });
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options);
      spans.push(span);
      return span;
    },
  });
  const provide = <A, E>(program: Effect.Effect<A, E>) =>
    program.pipe(
      Effect.provide(Logger.layer([logger])),
      Effect.provideService(Tracer.Tracer, tracer),
      Effect.provideService(Metric.MetricRegistry, registry),
    );
  return { lines, spans, registry, provide };
}

function node(hub: MemoryHub, id: string, total: { value: number }) {
  return layer({
    id,
    peers,
    config: { ...testConfig, snapshotEvery: 5, keepAfterSnapshot: 0 },
    stateMachine: {
      apply: (n: number) => (total.value += n),
      snapshot: () => new TextEncoder().encode(String(total.value)),
      restore: async (snapshot: SnapshotReader) => {
        total.value = Number(new TextDecoder().decode(await snapshot.bytes()));
      },
    },
  }).pipe(Layer.provide(portsLayer({
    logStore: new MemoryLogStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport: hub.transport(id),
  })));
}

/** The series of metric `name` for node `id`. */
function series(registry: Metric.MetricRegistry, name: string, id: string) {
  return Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry))
    .filter((m) => m.id === name && m.attributes?.node === id);
}

function value(registry: Metric.MetricRegistry, name: string, id: string): number {
  let total = 0;
  for (const m of series(registry, name, id)) {
    const state = m.state as { count?: number; value?: number };
    total += Number(state.value ?? state.count ?? 0);
  }
  return total;
}

const children = (spans: readonly Tracer.NativeSpan[], parent: Tracer.NativeSpan) =>
  spans.filter((s) => s.parent._tag === "Some" && s.parent.value === parent);

describe("observability through the app's own Logger, Tracer and metrics", () => {
  test("proposals, a read, a leader change and a snapshot arrive as logs, spans and metrics", {
    timeout: 60_000,
  }, async () => {
    const hub = new MemoryHub();
    const totals = ids.map(() => ({ value: 0 }));
    const { lines, spans, registry, provide } = app();
    const program = Effect.gen(function* () {
      const contexts = yield* Effect.all(ids.map((id, i) => Layer.build(node(hub, id, totals[i]!))));
      const nodes = contexts.map((ctx) => Context.get(ctx, Raft));
      const role = (i: number) => Effect.runSync(nodes[i]!.status).role;
      const leaderIndex = () => ids.findIndex((_, i) => role(i) === "leader");
      yield* Effect.promise(() => waitFor(() => leaderIndex() >= 0, 10_000, "a leader"));
      const first = leaderIndex();
      const leader = nodes[first]!;
      // c falls behind while the leader compacts its log: it will need a snapshot.
      const behind = ids.findIndex((_, i) => i !== first);
      hub.isolate(ids[behind]!);
      for (let i = 1; i <= 12; i++) assert.equal(yield* leader.propose(i), (i * (i + 1)) / 2);
      yield* leader.readIndex;
      hub.heal();
      yield* Effect.promise(() => waitFor(() => totals[behind]!.value === 78, 20_000, "caught up by snapshot"));
      // A leader change: hand leadership to the third node.
      const third = ids.findIndex((_, i) => i !== first && i !== behind);
      yield* leader.transferLeadership(ids[third]!);
      yield* Effect.promise(() => waitFor(() => role(third) === "leader", 10_000, "the new leader"));
      assert.equal(yield* nodes[third]!.propose(100), 178);
      const live = Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry));
      return { first, behind, third, live };
    });
    const { first, behind, third, live } = await Effect.runPromise(provide(Effect.scoped(program))).catch((e) => {
      for (const l of lines) console.log(l.level, l.annotations.node, l.message); // what the cluster went through
      throw e;
    });
    const [a, b, c] = [ids[first]!, ids[behind]!, ids[third]!];

    // Logs: leveled, with node, group, term and role on every line.
    for (const l of lines) {
      for (const key of ["node", "group", "term", "role"]) assert.ok(key in l.annotations, `${key} on "${l.message}"`);
    }
    const said = (id: string, re: RegExp, level = "Info") =>
      lines.some((l) => l.annotations.node === id && l.level === level && re.test(l.message));
    assert.ok(said(a, /^won the election of term \d+/), "the election's outcome");
    assert.ok(lines.some((l) => /^campaigning in term/.test(l.message)), "the election's start");
    assert.ok(said(b, new RegExp(`^leader is ${a}`)), "the first leader, seen by a follower");
    assert.ok(said(a, new RegExp(`^leader is ${c}`)), "the leader change, seen by the old leader");
    assert.ok(said(a, /^saved a snapshot at \d+/), "the leader's snapshot");
    assert.ok(said(a, new RegExp(`^sending the snapshot at \\d+ \\(\\d+ bytes\\) to ${b}`)), "the transfer");
    assert.ok(said(a, new RegExp(`^${b} installed the snapshot`)), "the transfer's end");
    assert.ok(said(b, new RegExp(`^receiving the snapshot at \\d+ from ${a}`)), "the reception");
    assert.ok(said(b, /^restored the snapshot at \d+/), "the restore");
    const won = lines.find((l) => l.annotations.node === a && /^won the election/.test(l.message))!;
    assert.equal(won.annotations.role, "leader");
    assert.equal(typeof won.annotations.term, "number");
    assert.equal(won.annotations.group, 0);

    // Spans: one per proposal, its WAL write, quorum round and apply as children, all ended.
    const proposals = spans.filter((s) => s.name === "raft.propose");
    assert.equal(proposals.length, 13);
    for (const p of proposals) {
      assert.equal(p.status._tag, "Ended");
      assert.ok(typeof p.attributes.get("raft.index") === "number", "the proposal's index");
      // raft.forward too when the node was not the leader at the call (an election had just started).
      const names = children(spans, p).map((s) => s.name).filter((n) => n !== "raft.forward").sort();
      assert.deepEqual(names, ["raft.apply", "raft.quorum", "raft.wal.write"]);
      for (const child of children(spans, p)) {
        assert.equal(child.status._tag, "Ended", child.name);
        assert.equal(child.attributes.get("raft.index"), p.attributes.get("raft.index"));
        if (child.status._tag === "Ended" && p.status._tag === "Ended") {
          assert.ok(child.status.startTime >= p.status.startTime && child.status.endTime <= p.status.endTime);
        }
      }
    }
    assert.ok(spans.some((s) => s.name === "raft.read" && s.status._tag === "Ended"), "a span per read");
    assert.ok(spans.some((s) => s.name === "raft.transfer_leadership"), "a span per transfer");

    // Metrics, in the app's registry, per node.
    const families = new Set(live.map((m) => m.id));
    assert.ok(
      live.some((m) =>
        m.id === "plank_has_leader" && m.attributes?.node === c && (m.state as { value: number }).value === 1
      ),
    );
    assert.ok(
      live.some((m) =>
        m.id === "plank_is_leader" && m.attributes?.node === c && (m.state as { value: number }).value === 1
      ),
    );
    for (const f of METRIC_FAMILIES) {
      if (/cancelled|abandoned|failed|refused|slow_fsyncs|unreachable_total|send_duration/.test(f)) continue;
      assert.ok(families.has(f), `${f} reported`);
    }
    assert.ok(value(registry, "plank_proposals_applied_total", a) >= 13);
    assert.ok(value(registry, "plank_proposals_committed_total", c) >= 13);
    assert.ok(value(registry, "plank_leader_changes_seen_total", a) >= 2, "two leaders seen");
    assert.ok(value(registry, "plank_elections_won_total", a) >= 1);
    assert.ok(value(registry, "plank_wal_fsync_duration_seconds", a) > 0, "fsyncs timed");
    assert.ok(value(registry, "plank_wal_append_batch_entries", a) > 0, "append batches");
    assert.ok(value(registry, "plank_peer_round_trip_time_seconds", a) > 0, "round trips");
    assert.ok(series(registry, "plank_peer_round_trip_time_seconds", a).some((m) => m.attributes?.peer === c));
    assert.ok(value(registry, "plank_snapshot_save_duration_seconds", a) >= 1, "snapshots saved");
    assert.ok(value(registry, "plank_snapshot_sent_bytes_total", a) > 0, "snapshot bytes sent");
    assert.ok(value(registry, "plank_snapshot_received_bytes_total", b) > 0, "snapshot bytes received");
    assert.ok(value(registry, "plank_snapshot_install_duration_seconds", b) >= 1, "snapshot installed");
    assert.ok(value(registry, "plank_read_index_rounds_total", a) >= 1, "read rounds");
    // The state gauges are dropped when the nodes stop (they read a node that no longer runs).
    assert.equal(series(registry, "plank_term", a).length, 0);
  });
});
