/**
 * A node's metrics, as effect `Metric`s in the registry of the context the
 * node was started in (the host's, with the Effect API; the node's own with
 * the Promise API). Names follow Prometheus' conventions and etcd's raft set
 * (`plank_` for `etcd_server_`). State gauges are read when the registry is
 * read (nothing to do on the loop); counters and histograms are updated
 * synchronously with the captured context. Every series carries the node's
 * `node` and `group` attributes, so several nodes can share a registry.
 *
 * @module
 */

import { type Context, Metric } from "effect";
import type { NodeStatus } from "../events.ts";

/** `start × factor^k` for `k` in `[0, count)`. */
function exponential(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, k) => start * factor ** k);
}

/** The state behind the gauges, read when the registry is read. */
export interface GaugeSources {
  /** The node's status as of its last loop iteration. */
  status(): NodeStatus;
  /** Proposals made on this node still waiting for their outcome. */
  pending(): number;
  /** Peers the transport currently cannot reach. */
  unreachable(): number;
}

/** Gauges: name, help, how to read them. */
const GAUGES: readonly (readonly [string, string, (s: GaugeSources) => number])[] = [
  ["plank_has_leader", "Whether this node knows a leader (1) or not (0).", (s) => s.status().leader ? 1 : 0],
  ["plank_is_leader", "Whether this node is the leader (1) or not (0).", (s) => s.status().role === "leader" ? 1 : 0],
  ["plank_term", "Current Raft term.", (s) => s.status().term],
  ["plank_commit_index", "Highest log index known to be committed.", (s) => s.status().commit],
  ["plank_applied_index", "Highest log index applied to the state machine.", (s) => s.status().applied],
  ["plank_proposals_pending", "Proposals made on this node still waiting for their outcome.", (s) => s.pending()],
  ["plank_peers_unreachable", "Peers the transport currently fails to reach.", (s) => s.unreachable()],
  ["plank_voters", "Voters in the configuration in force.", (s) => s.status().membership.voters.length],
  ["plank_learners", "Learners in the configuration in force.", (s) => s.status().membership.learners.length],
];

/** Counters: name, help, and the label of their series (if any). */
const COUNTERS = {
  leaderChanges: ["plank_leader_changes_seen_total", "Leader changes seen by this node."],
  electionsStarted: ["plank_elections_started_total", "Elections this node started as a candidate."],
  electionsWon: ["plank_elections_won_total", "Elections this node won."],
  committed: ["plank_proposals_committed_total", "Log entries this node saw committed."],
  applied: ["plank_proposals_applied_total", "Log entries applied to the state machine."],
  failed: ["plank_proposals_failed_total", "Proposals made on this node that failed, by error.", "error"],
  cancelled: [
    "plank_proposals_cancelled_total",
    "Proposals cancelled by their caller before they were handed to the leader.",
  ],
  abandoned: [
    "plank_proposals_abandoned_total",
    "Proposals whose caller gave up after they were handed to the leader, by eventual outcome.",
    "outcome",
  ],
  refused: [
    "plank_requests_refused_total",
    "Requests refused (no leader, uncommitted-bytes limit, transfer in progress, ...), by reason.",
    "reason",
  ],
  readRounds: ["plank_read_index_rounds_total", "ReadIndex rounds (each shared by the reads waiting for it)."],
  reads: ["plank_reads_total", "Linearizable reads served by ReadIndex rounds."],
  slowFsyncs: ["plank_wal_slow_fsyncs_total", "Log fsyncs slower than the node's slowFsyncMs."],
  unreachable: ["plank_peer_unreachable_total", "Times a reachable peer became unreachable, by peer.", "peer"],
  snapshotBytesSent: ["plank_snapshot_sent_bytes_total", "Snapshot bytes streamed to followers."],
  snapshotBytesReceived: ["plank_snapshot_received_bytes_total", "Snapshot bytes received from a leader."],
} as const satisfies Record<string, readonly [string, string] | readonly [string, string, string]>;

/** Disk latencies: 1 ms to 8 s (etcd's `wal_fsync_duration_seconds`). */
const DISK = exponential(0.001, 2, 14);
/** Network latencies: 0.1 ms to 3.3 s (etcd's `peer_round_trip_time_seconds`). */
const NETWORK = exponential(0.0001, 2, 16);
/** Slow operations (snapshots): 10 ms to 160 s. */
const SLOW = exponential(0.01, 2, 15);

/** Histograms: name, help, bucket boundaries, and the label of their series (if any). */
const HISTOGRAMS = {
  fsyncSeconds: ["plank_wal_fsync_duration_seconds", "Latency of log fsyncs.", DISK],
  appendEntries: [
    "plank_wal_append_batch_entries",
    "Entries per log append (one per loop iteration: group commit).",
    exponential(1, 2, 13),
  ],
  appendBytes: ["plank_wal_append_batch_bytes", "Bytes of entry data per log append.", exponential(256, 4, 10)],
  proposalSeconds: ["plank_proposal_duration_seconds", "From propose to the proposal's outcome on this node.", DISK],
  readRoundSeconds: ["plank_read_index_duration_seconds", "Duration of ReadIndex rounds.", NETWORK],
  roundTrip: ["plank_peer_round_trip_time_seconds", "Heartbeat round trips, by peer.", NETWORK, "peer"],
  snapshotSendSeconds: [
    "plank_snapshot_send_duration_seconds",
    "Snapshot streams, from the first chunk to the follower's installed answer.",
    SLOW,
  ],
  snapshotInstallSeconds: [
    "plank_snapshot_install_duration_seconds",
    "Received snapshots, from the first chunk to the state machine restored.",
    SLOW,
  ],
  snapshotSaveSeconds: [
    "plank_snapshot_save_duration_seconds",
    "Snapshots of this node's state machine, from capture to durable.",
    SLOW,
  ],
} as const satisfies Record<
  string,
  readonly [string, string, readonly number[]] | readonly [string, string, readonly number[], string]
>;

/** A counter of a node. */
export type CounterName = keyof typeof COUNTERS;
/** A histogram of a node. */
export type HistogramName = keyof typeof HISTOGRAMS;

/** Every metric family a node reports (for documentation and tests). */
export const METRIC_FAMILIES: readonly string[] = [
  ...GAUGES.map(([name]) => name),
  ...Object.values(COUNTERS).map(([name]) => name),
  ...Object.values(HISTOGRAMS).map(([name]) => name),
];

type Series = Metric.Metric<number, unknown>;

/** A family: the base metric and, if it has a label, its series by label value (made on first use). */
class Family {
  readonly #base: Series;
  readonly #label: string | undefined;
  readonly #series = new Map<string, Series>();

  constructor(base: Series, label: string | undefined) {
    this.#base = base;
    this.#label = label;
  }

  series(value: string | undefined): Series {
    if (this.#label === undefined || value === undefined) return this.#base;
    let m = this.#series.get(value);
    if (m === undefined) this.#series.set(value, m = Metric.withAttributes(this.#base, { [this.#label]: value }));
    return m;
  }
}

/** One node's metrics over the registry in `context`. */
export class NodeMetrics {
  readonly #context: Context.Context<never>;
  readonly #registrations: Metric.Registration[] = [];
  readonly #families = new Map<CounterName | HistogramName, Family>();

  /** The metrics of node `node` of `group`, in the registry of `context`; the gauges read `sources`. */
  constructor(context: Context.Context<never>, node: string, group: number, sources: GaugeSources) {
    this.#context = context;
    const attributes = { node, group: String(group) };
    for (const [name, description, read] of GAUGES) {
      const gauge = Metric.gauge(name, { description, attributes });
      this.#registrations.push(Metric.registerUnsafe(gauge, context, {
        get: () => ({ value: read(sources) }),
        update: () => {},
        modify: () => {},
      }));
    }
    for (const [key, [name, description, label]] of Object.entries(COUNTERS) as [string, readonly string[]][]) {
      const base = Metric.counter(name!, { description, attributes, incremental: true });
      this.#families.set(key as CounterName, new Family(base, label));
    }
    for (const [key, def] of Object.entries(HISTOGRAMS)) {
      const [name, description, boundaries, label] = def as readonly [string, string, readonly number[], string?];
      const base = Metric.histogram(name, { description, attributes, boundaries });
      this.#families.set(key as HistogramName, new Family(base, label));
    }
  }

  /** Adds `by` to counter `name` (the series of `label`, for a labelled family). */
  inc(name: CounterName, by = 1, label?: string): void {
    this.#families.get(name)!.series(label).updateUnsafe(by, this.#context);
  }

  /** Records `x` in histogram `name` (the series of `label`, for a labelled family). */
  observe(name: HistogramName, x: number, label?: string): void {
    this.#families.get(name)!.series(label).updateUnsafe(x, this.#context);
  }

  /** Drops the gauges (they read a node that no longer runs); counters and histograms keep their totals. */
  close(): void {
    for (const r of this.#registrations) r.remove();
    this.#registrations.length = 0;
  }
}
