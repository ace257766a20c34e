/**
 * raftd's metrics, rendered in the Prometheus text exposition format
 * (version 0.0.4): counters for proposals, reads, errors and requests, a
 * latency histogram per route, and gauges for the node's Raft state.
 *
 * @module
 */

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

const ROLES = ["follower", "precandidate", "candidate", "leader", "stopped"] as const;

class Histogram {
  readonly counts: number[] = LATENCY_BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]) this.counts[i]++;
  }
}

function labels(pairs: Record<string, string>): string {
  const parts = Object.entries(pairs).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** The counters and histograms of one raftd process. */
export class Metrics {
  readonly #proposals = new Map<string, number>();
  readonly #reads = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();

  /** Count a proposal of kind `op` (`put`, `delete`, `cas`, `member`). */
  proposal(op: string): void {
    bump(this.#proposals, op);
  }

  /** Count a read (`linearizable` or `stale`). */
  read(mode: "linearizable" | "stale"): void {
    bump(this.#reads, mode);
  }

  /** Count an error answer by its HTTP status. */
  error(status: number): void {
    bump(this.#errors, String(status));
  }

  /** Record one finished request: its route, status and duration. */
  request(route: string, status: number, seconds: number): void {
    bump(this.#requests, `${route}\u0000${status}`);
    let h = this.#latency.get(route);
    if (h === undefined) this.#latency.set(route, h = new Histogram());
    h.observe(seconds);
  }

  /** Everything, in Prometheus text format. */
  render(gauges: RaftGauges): string {
    const out: string[] = [];
    const gauge = (name: string, help: string, value: number) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    };
    out.push("# HELP raftd_role Current Raft role (1 for the role this node is in).", "# TYPE raftd_role gauge");
    for (const role of ROLES) out.push(`raftd_role${labels({ role })} ${gauges.role === role ? 1 : 0}`);
    gauge("raftd_term", "Current Raft term.", gauges.term);
    gauge("raftd_commit_index", "Highest log index known to be committed.", gauges.commit);
    gauge("raftd_applied_index", "Highest log index applied to the key-value store.", gauges.applied);
    gauge("raftd_members", "Members in the cluster configuration (voters and learners).", gauges.members);
    gauge("raftd_keys", "Keys in the local key-value store.", gauges.keys);
    counter(
      out,
      "raftd_proposals_total",
      "Proposals submitted through this node, by operation.",
      "op",
      this.#proposals,
    );
    counter(out, "raftd_reads_total", "Reads served by this node, by consistency.", "mode", this.#reads);
    counter(out, "raftd_errors_total", "Error answers sent, by HTTP status.", "status", this.#errors);
    out.push("# HELP raftd_http_requests_total HTTP requests served, by route and status.");
    out.push("# TYPE raftd_http_requests_total counter");
    for (const [key, n] of [...this.#requests].sort()) {
      const [route, status] = key.split("\u0000");
      out.push(`raftd_http_requests_total${labels({ route, status })} ${n}`);
    }
    out.push("# HELP raftd_http_request_duration_seconds HTTP request latency, by route.");
    out.push("# TYPE raftd_http_request_duration_seconds histogram");
    for (const [route, h] of [...this.#latency].sort(([a], [b]) => (a < b ? -1 : 1))) {
      LATENCY_BUCKETS.forEach((le, i) => {
        out.push(`raftd_http_request_duration_seconds_bucket${labels({ route, le: String(le) })} ${h.counts[i]}`);
      });
      out.push(`raftd_http_request_duration_seconds_bucket${labels({ route, le: "+Inf" })} ${h.count}`);
      out.push(`raftd_http_request_duration_seconds_sum${labels({ route })} ${h.sum}`);
      out.push(`raftd_http_request_duration_seconds_count${labels({ route })} ${h.count}`);
    }
    return out.join("\n") + "\n";
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function counter(out: string[], name: string, help: string, label: string, values: Map<string, number>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const [k, n] of [...values].sort()) out.push(`${name}${labels({ [label]: k })} ${n}`);
}
