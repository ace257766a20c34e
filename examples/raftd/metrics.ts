/**
 * raftd's metrics: the node's own (plank's `plank_*` set — leader, term,
 * indexes, proposals, WAL fsync and append histograms, peer round trips,
 * snapshots, ReadIndex rounds, refusals; see `RaftNode.prometheusMetrics`)
 * followed by raftd's HTTP metrics (`raftd_*`: requests, latencies,
 * proposals and reads by kind, errors by status, members, keys). Both are
 * effect `Metric`s rendered by effect's Prometheus exporter
 * (`PrometheusMetrics`, text format 0.0.4), so `/metrics` is one consistent
 * exposition (`promtool check metrics` clean).
 *
 * @module
 */

import { Context, Metric } from "effect";
import { PrometheusMetrics } from "effect/observability";

/** Upper bounds (seconds) of the request-latency histogram buckets. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The Raft state the gauges show, read when the metrics are rendered. */
export interface RaftGauges {
  /** Current role (`leader`, `follower`, ...). */
  readonly role: string;
  /** Current term. */
  readonly term: number;
  /** Commit index. */
  readonly commit: number;
  /** Last applied index. */
  readonly applied: number;
  /** Number of members (voters and learners). */
  readonly members: number;
  /** Number of keys in the store. */
  readonly keys: number;
}

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true });

const proposals = counter("raftd_proposals_total", "Proposals submitted through this node, by operation.");
const reads = counter("raftd_reads_total", "Reads served by this node, by consistency.");
const errors = counter("raftd_errors_total", "Error answers sent, by HTTP status.");
const requests = counter("raftd_http_requests_total", "HTTP requests served, by route and status.");
const latency = Metric.histogram("raftd_http_request_duration_seconds", {
  description: "HTTP request latency, by route.",
  boundaries: LATENCY_BUCKETS,
});
const members = Metric.gauge("raftd_members", {
  description: "Members in the cluster configuration (voters and learners).",
});
const keys = Metric.gauge("raftd_keys", { description: "Keys in the local key-value store." });

/** The metrics of one raftd process. */
export class Metrics {
  readonly #context = Context.make(Metric.MetricRegistry, new Map());
  readonly #node: (() => string) | undefined;
  /**
   * One context per label set, carrying the labels as `CurrentMetricAttributes`. `Metric.withAttributes` per call
   * built a new metric and a new attributes object each time, so effect re-merged the attributes and re-made the
   * series key (a sorted `JSON.stringify`) on every request: ~2.8 KB allocated per PUT on Deno. With the same
   * attributes object each time, the metric's cached key is reused. Bounded: route names, HTTP statuses, the
   * proposal and read kinds.
   */
  readonly #labelled = new Map<string, Context.Context<never>>();

  /** @param node the node's metrics in Prometheus text (`RaftNode.prometheusMetrics`), if there is a node */
  constructor(node?: () => string) {
    this.#node = node;
  }

  #with(key: string, attributes: Record<string, string>): Context.Context<never> {
    let c = this.#labelled.get(key);
    if (c === undefined) {
      c = Context.add(this.#context, Metric.CurrentMetricAttributes, attributes);
      this.#labelled.set(key, c);
    }
    return c;
  }

  /** Count a proposal of kind `op` (`put`, `delete`, `cas`, `member`). */
  proposal(op: string): void {
    proposals.updateUnsafe(1, this.#with(`op\0${op}`, { op }));
  }

  /** Count a read (`linearizable` or `stale`). */
  read(mode: "linearizable" | "stale"): void {
    reads.updateUnsafe(1, this.#with(`mode\0${mode}`, { mode }));
  }

  /** Count an error answer by its HTTP status. */
  error(status: number): void {
    errors.updateUnsafe(1, this.#with(`status\0${status}`, { status: String(status) }));
  }

  /** Record one finished request: its route, status and duration. */
  request(route: string, status: number, seconds: number): void {
    requests.updateUnsafe(1, this.#with(`route\0${route}\0${status}`, { route, status: String(status) }));
    latency.updateUnsafe(seconds, this.#with(`route\0${route}`, { route }));
  }

  /** Everything, in Prometheus text format: the node's metrics, then raftd's. */
  render(gauges: RaftGauges): string {
    members.updateUnsafe(gauges.members, this.#context);
    keys.updateUnsafe(gauges.keys, this.#context);
    return (this.#node?.() ?? "") + PrometheusMetrics.formatUnsafe(this.#context);
  }
}
