/**
 * What the Promise API offers of a node's logs and metrics, in plain types
 * (no `effect` types in its signatures): a {@link NodeLogger} callback fed by
 * an effect `Logger`, and the node's effect metrics as plain
 * {@link MetricSeries} or as Prometheus text (effect's own exporter). Effect
 * users need none of this: a node logs through their loggers and records in
 * their `MetricRegistry`.
 *
 * @module
 */

import { type Context, Logger, Metric, References } from "effect";
import type { LogLevel } from "effect/LogLevel";
import { PrometheusMetrics } from "effect/observability";

/** Log levels, least to most severe. */
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error";

/** One structured log line of a node. */
export interface LogRecord {
  /** Its level. */
  readonly level: LogLevelName;
  /** What happened, in a sentence. */
  readonly message: string;
  /**
   * Structured fields: always `node`, `group`, `term` and `role`; then what
   * the line is about (`peer`, `index`, `ms`, `bytes`, `leader`, …).
   */
  readonly annotations: Readonly<Record<string, unknown>>;
  /** When. */
  readonly time: Date;
}

/** Receives a node's log lines (on the node's loop: keep it short). */
export type NodeLogger = (record: LogRecord) => void;

/** One series of a metric, as plain data (a counter, a gauge or a histogram). */
export type MetricSeries =
  | {
    /** Counter or gauge. */
    readonly type: "counter" | "gauge";
    /** Metric name (Prometheus style, `plank_…`). */
    readonly name: string;
    /** What it measures. */
    readonly description: string | undefined;
    /** Its labels: `node`, `group`, and the family's own (`peer`, `reason`, …). */
    readonly attributes: Readonly<Record<string, string>>;
    /** Its value. */
    readonly value: number;
  }
  | {
    /** Histogram. */
    readonly type: "histogram";
    /** Metric name. */
    readonly name: string;
    /** What it measures. */
    readonly description: string | undefined;
    /** Its labels. */
    readonly attributes: Readonly<Record<string, string>>;
    /** Observations. */
    readonly count: number;
    /** Their sum. */
    readonly sum: number;
    /** Cumulative counts: `[upper bound, observations ≤ bound]`. */
    readonly buckets: readonly (readonly [number, number])[];
  };

const TO_EFFECT: Record<LogLevelName, LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
};

const FROM_EFFECT: Partial<Record<LogLevel, LogLevelName>> = {
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warn",
  Error: "error",
  Fatal: "error",
};

/**
 * The context references that route a node's logs to `logger` from `level`
 * on (default `info`), or nowhere when no logger is given.
 */
export function loggingContext(
  logger: NodeLogger | undefined,
  level: LogLevelName | undefined,
): { loggers: ReadonlySet<Logger.Logger<unknown, unknown>>; minimum: LogLevel } {
  if (logger === undefined) return { loggers: new Set(), minimum: "None" };
  const forward = Logger.make<unknown, void>((options) => {
    const message = Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message);
    try {
      logger({
        level: FROM_EFFECT[options.logLevel] ?? "info",
        message,
        annotations: options.fiber.getRef(References.CurrentLogAnnotations),
        time: options.date,
      });
    } catch {
      // A logger's bug must not stop the node.
    }
  });
  return { loggers: new Set([forward]), minimum: TO_EFFECT[level ?? "info"] };
}

/** The series in the registry of `context`, as plain data. */
export function metricSeries(context: Context.Context<never>): MetricSeries[] {
  const out: MetricSeries[] = [];
  for (const m of Metric.snapshotUnsafe(context)) {
    const base = { name: m.id, description: m.description, attributes: { ...m.attributes } };
    if (m.type === "Counter") out.push({ ...base, type: "counter", value: Number(m.state.count) });
    else if (m.type === "Gauge") out.push({ ...base, type: "gauge", value: Number(m.state.value) });
    else if (m.type === "Histogram") {
      const { count, sum, buckets } = m.state;
      out.push({ ...base, type: "histogram", count, sum, buckets: buckets.map(([le, n]) => [le, n] as const) });
    }
  }
  return out;
}

/** The series in the registry of `context` in Prometheus' text format (effect's exporter). */
export function prometheusText(context: Context.Context<never>): string {
  return PrometheusMetrics.formatUnsafe(context);
}
