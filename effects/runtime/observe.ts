/**
 * The production shell's observability: what the driver reports (its
 * events and {@link Observation}s, as data) and what the shell measures
 * itself (fsyncs, appends, snapshot bytes, request outcomes) become log
 * lines through effect's `Logger`, updates of effect `Metric`s
 * (`metrics.ts`) and proposal spans (`tracing.ts`) — all in the context the
 * node was started in, so they reach the host's own loggers, registry and
 * tracer.
 *
 * Log lines are leveled and structured: every line carries the `node`,
 * `group`, `term` and `role` annotations, plus what it is about (`peer`,
 * `index`, `ms`, …). The driver's callbacks are synchronous, so lines are
 * buffered and {@link NodeObserver.flush}ed by the loop once per iteration.
 *
 * @module
 */

import { Clock, Context, Effect, References } from "effect";
import type { LogLevel } from "effect/LogLevel";
import type { Membership, NodeId, Role } from "../../core/types.ts";
import type { Observation } from "../driver/observations.ts";
import type { Outcome } from "../driver/requests.ts";
import { ProposalCancelled } from "../errors.ts";
import type { NodeStatus, RaftEvent } from "../events.ts";
import { NodeMetrics } from "./metrics.ts";
import { ProposalTraces } from "./tracing.ts";

/** The levels plank logs at. */
export type Level = "Error" | "Warn" | "Info" | "Debug" | "Trace";

const RANK: Record<LogLevel, number> = { All: 0, Trace: 1, Debug: 2, Info: 3, Warn: 4, Error: 5, Fatal: 6, None: 7 };

interface Line {
  readonly level: Level;
  readonly message: string;
  readonly annotations: Record<string, unknown>;
}

/** What an observer needs to know about its node. */
export interface ObserverOptions {
  /** The node's id. */
  readonly id: NodeId;
  /** Its Raft group. */
  readonly group: number;
  /** The context the node runs in: its minimum log level, metric registry and clock. */
  readonly context: Context.Context<never>;
  /** The node's state (for the `term` and `role` annotations and the gauges). */
  readonly status: () => NodeStatus;
  /** Fsyncs slower than this are logged as warnings (ms). */
  readonly slowFsyncMs: number;
  /** A peer that flaps is logged unreachable at most once per this many ms. */
  readonly quietMs: number;
}

/** Turns one node's events and measurements into logs, metrics and spans. */
export class NodeObserver {
  /** The node's metrics. */
  readonly metrics: NodeMetrics;
  /** The node's traced proposals. */
  readonly traces: ProposalTraces;
  readonly #o: ObserverOptions;
  readonly #clock: Clock.Clock;
  readonly #minimum: number;
  #lines: Line[] = [];
  #pending = 0;
  #role: Role;
  #leader: NodeId | undefined;
  #commit: number;
  #campaignSince: number | undefined;
  readonly #unreachable = new Set<NodeId>();
  readonly #unreachableLogged = new Map<NodeId, number>();
  /** Abortable proposals, by request id: where they were placed (0: not yet). */
  readonly #placed = new Map<number, number>();

  /** An observer for the node described by `options`. */
  constructor(options: ObserverOptions) {
    this.#o = options;
    this.#clock = Context.get(options.context, Clock.Clock);
    this.#minimum = RANK[Context.get(options.context, References.MinimumLogLevel)];
    this.metrics = new NodeMetrics(options.context, options.id, options.group, {
      status: options.status,
      pending: () => this.#pending,
      unreachable: () => this.#unreachable.size,
    });
    this.traces = new ProposalTraces(
      () => this.#clock.currentTimeNanosUnsafe(),
      { "raft.node": options.id, "raft.group": options.group },
    );
    const s = options.status();
    this.#role = s.role;
    this.#leader = s.leader;
    this.#commit = s.commit;
  }

  /** Monotonic time in ms, for the shell's own measurements. */
  monotonicMs(): number {
    return Number(this.#clock.monotonicTimeNanosUnsafe()) / 1e6;
  }

  // ---------------------------------------------------------------------------
  // Logging

  /** Whether a line at `level` would be logged. */
  enabled(level: Level): boolean {
    return RANK[level] >= this.#minimum;
  }

  /** Buffers a line at `level`, with `annotations` beyond the node's own. */
  log(level: Level, message: string, annotations?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const s = this.#o.status();
    this.#lines.push({
      level,
      message,
      annotations: { node: this.#o.id, group: this.#o.group, term: s.term, role: s.role, ...annotations },
    });
  }

  /** Logs the buffered lines through the context's loggers. */
  get flush(): Effect.Effect<void> {
    if (this.#lines.length === 0) return Effect.void;
    const lines = this.#lines;
    this.#lines = [];
    return Effect.forEach(
      lines,
      (l) => Effect.logWithLevel(l.level)(l.message).pipe(Effect.annotateLogs(l.annotations)),
      { discard: true },
    );
  }

  // ---------------------------------------------------------------------------
  // The node's life

  /** The node recovered and its loop starts. */
  started(s: NodeStatus, snapshot: number | undefined): void {
    this.log(
      "Info",
      `started at term ${s.term}, commit ${s.commit}, applied ${s.applied}` +
        (snapshot === undefined ? "" : ` (from the snapshot at ${snapshot})`) + `: ${describeMembership(s.membership)}`,
    );
  }

  /** The loop ended; `error` is the fatal error, if one stopped it. */
  stopped(error: unknown): void {
    if (error === undefined) this.log("Info", "stopped");
    else {
      this.log("Error", `stopped by a fatal error (fail-stop: restart to recover from disk): ${describe(error)}`, {
        error: describe(error),
      });
    }
    this.metrics.close();
  }

  // ---------------------------------------------------------------------------
  // What the driver reports

  /** A driver event. */
  event(e: RaftEvent): void {
    switch (e.type) {
      case "role":
        return this.#roleChanged(e.role, e.term);
      case "leader":
        if (e.leader !== undefined && e.leader !== this.#leader) {
          this.metrics.inc("leaderChanges");
          this.log("Info", `leader is ${e.leader} (term ${e.term})`, { leader: e.leader, term: e.term });
        } else if (e.leader === undefined && this.#leader !== undefined) {
          this.log("Info", `lost the leader ${this.#leader} (term ${e.term})`, { leader: this.#leader, term: e.term });
        }
        this.#leader = e.leader;
        return;
      case "term":
        return this.log("Debug", `term ${e.term}`);
      case "commit":
        if (e.index > this.#commit) this.metrics.inc("committed", e.index - this.#commit);
        this.#commit = e.index;
        if (this.traces.active) this.traces.committed(e.index);
        return;
      case "membership":
        return this.log("Info", `configuration at index ${e.index}: ${describeMembership(e.membership)}`, {
          index: e.index,
        });
      case "peerAdded":
        return this.log("Info", `${e.peer} joined the configuration`, { peer: e.peer });
      case "peerRemoved":
        return this.log("Info", `${e.peer} left the configuration`, { peer: e.peer });
      case "warning":
        return this.log("Warn", e.message, e.peer === undefined ? undefined : { peer: e.peer, ms: e.roundTripMs });
      case "stopped":
        return;
    }
  }

  #roleChanged(role: Role, term: number): void {
    const was = this.#role;
    this.#role = role;
    const now = this.monotonicMs();
    // The line carries the role and term it is about (a step can pass through several).
    const at = { role, term };
    switch (role) {
      case "precandidate":
        this.#campaignSince = now;
        return this.log("Info", `no leader heard: asking for pre-votes to campaign in term ${term + 1}`, at);
      case "candidate":
        this.#campaignSince ??= now;
        this.metrics.inc("electionsStarted");
        return this.log("Info", `campaigning in term ${term}`, at);
      case "leader": {
        const ms = this.#campaignSince === undefined ? undefined : Math.round(now - this.#campaignSince);
        this.#campaignSince = undefined;
        this.metrics.inc("electionsWon");
        const took = ms === undefined ? "" : ` in ${ms} ms`;
        return this.log("Info", `won the election of term ${term}${took}`, { ...at, ms });
      }
      case "follower":
        if (was === "leader") return this.log("Warn", `stepped down: a follower in term ${term}`, at);
        if (was === "candidate" || was === "precandidate") {
          this.#campaignSince = undefined;
          const what = was === "candidate" ? "election" : "pre-vote";
          return this.log("Info", `${what} lost: a follower in term ${term}`, at);
        }
        return this.log("Debug", `a follower in term ${term}`, at);
    }
  }

  /** A driver observation. */
  observe(o: Observation): void {
    switch (o.type) {
      case "appended":
        if (this.#placed.has(o.requestId)) this.#placed.set(o.requestId, o.index);
        if (this.traces.active) this.traces.appended(o.requestId, o.index, o.term);
        return;
      case "refused":
        this.metrics.inc("refused", 1, o.reason);
        return this.log("Debug", `refused a ${o.kind} request: ${o.reason}`, { reason: o.reason });
      case "readRound":
        this.metrics.inc("readRounds");
        if (o.ok) this.metrics.inc("reads", o.readers);
        return this.metrics.observe("readRoundSeconds", o.ms / 1000);
      case "roundTrip":
        return this.metrics.observe("roundTrip", o.ms / 1000, o.peer);
      case "peerUnreachable": {
        this.#unreachable.add(o.peer);
        this.metrics.inc("unreachable", 1, o.peer);
        const now = this.monotonicMs();
        if (now - (this.#unreachableLogged.get(o.peer) ?? -Infinity) < this.#o.quietMs) return;
        this.#unreachableLogged.set(o.peer, now);
        return this.log("Warn", `peer ${o.peer} is unreachable`, { peer: o.peer });
      }
      case "peerReachable":
        this.#unreachable.delete(o.peer);
        if (!this.#unreachableLogged.has(o.peer)) return;
        return this.log("Info", `peer ${o.peer} is reachable again`, { peer: o.peer });
      case "snapshotSending":
        return this.log(
          "Info",
          `${o.resumed ? "resuming" : "sending"} the snapshot at ${o.index} (${o.bytes} bytes) to ${o.to}`,
          about(o),
        );
      case "snapshotSent":
        this.metrics.observe("snapshotSendSeconds", o.ms / 1000);
        return this.log(
          "Info",
          `${o.to} installed the snapshot at ${o.index} (${o.bytes} bytes in ${o.ms} ms)`,
          about(o),
        );
      case "snapshotSendAbandoned":
        return this.log("Warn", `the snapshot stream to ${o.to} got no answer: given up for now`, about(o));
      case "snapshotReceiving":
        return this.log("Info", `receiving the snapshot at ${o.index} from ${o.from}`, about(o));
      case "snapshotInstalled":
      case "snapshotSaved": {
        const installed = o.type === "snapshotInstalled";
        this.metrics.observe(installed ? "snapshotInstallSeconds" : "snapshotSaveSeconds", o.ms / 1000);
        const what = installed ? "restored the snapshot" : "saved a snapshot";
        return this.log("Info", `${what} at ${o.index} (${o.bytes} bytes, ${o.ms} ms)`, about(o));
      }
    }
  }

  // ---------------------------------------------------------------------------
  // What the shell measures

  /** A log append of `entries` entries carrying `bytes` bytes of data. */
  appended(entries: number, bytes: number): void {
    this.metrics.observe("appendEntries", entries);
    this.metrics.observe("appendBytes", bytes);
  }

  /** A log fsync took `ms`. */
  fsynced(ms: number, entries: number): void {
    this.metrics.observe("fsyncSeconds", ms / 1000);
    if (ms < this.#o.slowFsyncMs) return;
    this.metrics.inc("slowFsyncs");
    this.log("Warn", `slow fsync: ${Math.round(ms)} ms for ${entries} entries (over ${this.#o.slowFsyncMs} ms)`, {
      ms: Math.round(ms),
    });
  }

  /** `entries` were applied. */
  applied(entries: number): void {
    this.metrics.inc("applied", entries);
  }

  /** Snapshot bytes went out (`sent`) or came in. */
  snapshotBytes(sent: boolean, bytes: number): void {
    if (bytes > 0) this.metrics.inc(sent ? "snapshotBytesSent" : "snapshotBytesReceived", bytes);
  }

  /** A proposal was made; `abortable` when its caller may give up on it. */
  proposed(requestId: number | undefined, abortable: boolean): void {
    this.#pending++;
    if (abortable && requestId !== undefined) this.#placed.set(requestId, 0);
  }

  /**
   * A proposal ended with `outcome` after `ms`; `abandoned` when its caller
   * gave up after it was handed to the leader (its outcome is reported here,
   * since nobody else hears it).
   */
  proposalSettled(requestId: number | undefined, outcome: Outcome, ms: number, abandoned: boolean): void {
    this.#pending--;
    const index = requestId === undefined ? undefined : this.#placed.get(requestId);
    if (requestId !== undefined) this.#placed.delete(requestId);
    if (requestId !== undefined && this.traces.active) this.traces.settled(requestId, outcome);
    this.metrics.observe("proposalSeconds", ms / 1000);
    if (!outcome.ok && outcome.error instanceof ProposalCancelled) this.metrics.inc("cancelled");
    else if (!outcome.ok) this.metrics.inc("failed", 1, tagOf(outcome.error));
    if (!abandoned) return;
    const where = index ? ` at index ${index}` : "";
    this.metrics.inc("abandoned", 1, outcome.ok ? "applied" : tagOf(outcome.error));
    if (outcome.ok) this.log("Warn", `a proposal whose caller gave up was applied${where}`, { index });
    else this.log("Warn", `a proposal whose caller gave up failed${where}: ${describe(outcome.error)}`, { index });
  }

  /** The caller of proposal `requestId` gave up after it was handed to the leader. */
  abandoned(requestId: number | undefined): void {
    const index = requestId === undefined ? undefined : this.#placed.get(requestId);
    this.log(
      "Warn",
      "a proposal's caller gave up after it was handed to the leader: it may still commit" +
        (index ? ` (at index ${index})` : "") + "; its outcome will be logged",
      { index: index || undefined },
    );
  }
}

/** A snapshot observation's fields as log annotations (`to`/`from` as `peer`). */
function about(o: Extract<Observation, { readonly index: number }>): Record<string, unknown> {
  const { type: _type, ...fields } = o;
  const { to, from, ...rest } = fields as { to?: NodeId; from?: NodeId } & Record<string, unknown>;
  return { peer: to ?? from, ...rest };
}

function describeMembership(m: Membership): string {
  return `voters [${m.voters.join(", ")}]` + (m.learners.length ? `, learners [${m.learners.join(", ")}]` : "") +
    (m.outgoing ? `, outgoing voters [${m.outgoing.join(", ")}]` : "");
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function tagOf(e: unknown): string {
  if (typeof e === "object" && e !== null && typeof (e as { _tag?: unknown })._tag === "string") {
    return (e as { _tag: string })._tag;
  }
  return e instanceof Error ? e.name : "unknown";
}
