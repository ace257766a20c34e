/**
 * raftd's command line: flags (goraft raftd's, plus a few) parsed into a typed
 * {@link RaftdConfig}, or a typed error the caller prints with {@link USAGE}.
 *
 * Flags follow Go's `flag` package, as raftd's did: one or two dashes
 * (`-p 4001`, `--port=4001`), values separate or after `=`, booleans bare.
 * `-h` is the host (as in raftd); help is `--help` / `-help`.
 *
 * @module
 */

/** How chatty the log is: `-v` verbose, `-debug`, `-trace` (the most). */
export type LogLevel = "info" | "verbose" | "debug" | "trace";

/** Everything `main.ts` needs to start a node. */
export interface RaftdConfig {
  /** Where the node keeps its log, snapshots and `raftd.json`. */
  readonly dataDir: string;
  /** Host the HTTP server listens on and advertises. */
  readonly host: string;
  /** HTTP port (client API and peer traffic). */
  readonly port: number;
  /** `host:port` of any cluster member to join, on first start. */
  readonly join: string | undefined;
  /** Node id to take on first start (default: random). Ignored once `raftd.json` exists. */
  readonly id: string | undefined;
  /** Address to advertise to peers (default `host:port`). */
  readonly advertise: string | undefined;
  /** Log verbosity. */
  readonly logLevel: LogLevel;
  /** Base election timeout in milliseconds. */
  readonly electionTimeoutMs: number;
  /** Leader heartbeat interval in milliseconds. */
  readonly heartbeatMs: number;
  /** Largest value accepted by `POST/PUT /db/{key}` (bytes). */
  readonly maxValueBytes: number;
  /** Take a snapshot after this many applied entries (0: never). */
  readonly snapshotEntries: number;
  /** How long a client request may wait for commit/apply before 503 (ms). */
  readonly requestTimeoutMs: number;
}

/** What {@link parseArgs} found: a config to run, a request for help, or an error for the user. */
export type ParseResult =
  | { readonly kind: "run"; readonly config: RaftdConfig }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

/** The `--help` text; every flag is listed. */
export const USAGE: string = `usage: raftd [flags] DATA_DIR

  deno run -A examples/raftd/main.ts [flags] DATA_DIR
  bun examples/raftd/main.ts [flags] DATA_DIR

A replicated key-value store over HTTP, built on plank (Raft).
A first start without -join creates a new single-node cluster; with
-join HOST:PORT the node asks that cluster to add it. The node's id,
address and cluster are kept in DATA_DIR/raftd.json, so restarts need no -join.

Flags (one or two dashes; "-flag value" or "-flag=value"):
  -p, -port PORT              HTTP port for clients and peers (default 4001)
  -h, -host HOST              host to listen on and advertise (default localhost)
  -join HOST:PORT             join the cluster this member belongs to (first start only)
  -id ID                      node id on first start (default: random; [A-Za-z0-9._-], at most 64)
  -advertise HOST:PORT        address peers and clients use to reach this node (default HOST:PORT)
  -election-timeout DURATION  base election timeout, e.g. 300ms, 1s (default 1s)
  -heartbeat DURATION         leader heartbeat interval (default election-timeout / 10)
  -max-value SIZE             largest value accepted, e.g. 4096, 64KiB, 1MiB (default 1MiB)
  -snapshot-entries N         snapshot after N applied entries; 0 never (default 10000)
  -request-timeout DURATION   give up waiting for a write or read after this long (default 5s)
  -v                          verbose logging
  -debug                      debug logging
  -trace                      trace logging (every Raft message)
  -help, --help               show this help

HTTP API (one port serves clients and, under /raft/, peers):
  POST|PUT /db/KEY            set KEY to the request body (200 once committed and applied)
  POST|PUT /db/KEY?prev=V     compare-and-set: 412 if the current value is not V
  GET /db/KEY                 value (200) or 404; linearizable; ?stale=true reads locally
  DELETE /db/KEY              delete KEY
  GET /status                 id, role, term, leader, commit, applied, members (JSON)
  GET /members                the members with their addresses (JSON)
  POST /join                  {"id": ID, "address": "HOST:PORT"}: add a node
  DELETE /members/ID          remove a node
  POST /transfer?to=ID        hand leadership to ID
  GET /metrics                Prometheus text format
`;

const DEFAULTS = {
  host: "localhost",
  port: 4001,
  electionTimeoutMs: 1000,
  maxValueBytes: 1024 * 1024,
  snapshotEntries: 10_000,
  requestTimeoutMs: 5000,
} as const;

type FlagName =
  | "port"
  | "host"
  | "join"
  | "id"
  | "advertise"
  | "election-timeout"
  | "heartbeat"
  | "max-value"
  | "snapshot-entries"
  | "request-timeout"
  | "v"
  | "debug"
  | "trace"
  | "help";

const ALIASES: Readonly<Record<string, FlagName>> = {
  p: "port",
  port: "port",
  h: "host",
  host: "host",
  join: "join",
  id: "id",
  advertise: "advertise",
  "election-timeout": "election-timeout",
  heartbeat: "heartbeat",
  "heartbeat-interval": "heartbeat",
  "max-value": "max-value",
  "max-value-bytes": "max-value",
  "snapshot-entries": "snapshot-entries",
  "request-timeout": "request-timeout",
  v: "v",
  verbose: "v",
  debug: "debug",
  trace: "trace",
  help: "help",
};

const BOOLEAN_FLAGS: ReadonlySet<FlagName> = new Set(["v", "debug", "trace", "help"]);

/** Node ids: short, printable, safe in a URL path segment. */
export const NODE_ID_PATTERN: RegExp = /^[A-Za-z0-9._-]{1,64}$/;

/** Parse raftd's arguments (without the program name). Never throws. */
export function parseArgs(args: readonly string[]): ParseResult {
  const values = new Map<FlagName, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const rawName = eq >= 0 ? body.slice(0, eq) : body;
    const name = ALIASES[rawName];
    if (name === undefined) return error(`unknown flag ${JSON.stringify(arg.split("=")[0])}`);
    if (BOOLEAN_FLAGS.has(name)) {
      const v = eq >= 0 ? body.slice(eq + 1) : "true";
      if (v !== "true" && v !== "false") {
        return error(`flag -${rawName} takes no value (or =true/=false), got ${JSON.stringify(v)}`);
      }
      values.set(name, v);
      continue;
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= args.length) return error(`flag -${rawName} needs a value`);
      value = args[++i];
    }
    values.set(name, value);
  }
  if (values.get("help") === "true") return { kind: "help" };

  if (positional.length === 0) return error("missing DATA_DIR");
  if (positional.length > 1) return error(`expected one DATA_DIR, got ${positional.length} arguments`);
  const dataDir = positional[0];
  if (dataDir === "") return error("DATA_DIR must not be empty");

  let port: number = DEFAULTS.port;
  const portText = values.get("port");
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return error(`invalid port ${JSON.stringify(portText)}: expected 1-65535`);
    }
    port = Number(portText);
  }
  const host = values.get("host") ?? DEFAULTS.host;
  if (host === "" || /[\s/@]/.test(host)) return error(`invalid host ${JSON.stringify(host)}`);

  const join = values.get("join");
  if (join !== undefined && !isHostPort(join)) {
    return error(`invalid -join ${JSON.stringify(join)}: expected HOST:PORT`);
  }
  const advertise = values.get("advertise");
  if (advertise !== undefined && !isHostPort(advertise)) {
    return error(`invalid -advertise ${JSON.stringify(advertise)}: expected HOST:PORT`);
  }
  const id = values.get("id");
  if (id !== undefined && !NODE_ID_PATTERN.test(id)) {
    return error(`invalid -id ${JSON.stringify(id)}: 1-64 characters of [A-Za-z0-9._-]`);
  }

  let electionTimeoutMs: number = DEFAULTS.electionTimeoutMs;
  const et = values.get("election-timeout");
  if (et !== undefined) {
    const ms = parseDuration(et);
    if (ms === undefined || ms < 10 || ms > 600_000) {
      return error(`invalid -election-timeout ${JSON.stringify(et)}: expected a duration from 10ms to 10m, e.g. 300ms`);
    }
    electionTimeoutMs = ms;
  }
  let heartbeatMs = Math.max(5, Math.floor(electionTimeoutMs / 10));
  const hb = values.get("heartbeat");
  if (hb !== undefined) {
    const ms = parseDuration(hb);
    if (ms === undefined || ms < 1 || ms >= electionTimeoutMs) {
      return error(`invalid -heartbeat ${JSON.stringify(hb)}: expected a duration below the election timeout`);
    }
    heartbeatMs = ms;
  }
  let maxValueBytes: number = DEFAULTS.maxValueBytes;
  const mv = values.get("max-value");
  if (mv !== undefined) {
    const n = parseSize(mv);
    if (n === undefined || n < 1 || n > 64 * 1024 * 1024) {
      return error(`invalid -max-value ${JSON.stringify(mv)}: expected a size from 1 byte to 64MiB, e.g. 1MiB`);
    }
    maxValueBytes = n;
  }
  let snapshotEntries: number = DEFAULTS.snapshotEntries;
  const se = values.get("snapshot-entries");
  if (se !== undefined) {
    if (!/^\d{1,9}$/.test(se)) return error(`invalid -snapshot-entries ${JSON.stringify(se)}: expected a count`);
    snapshotEntries = Number(se);
  }
  let requestTimeoutMs: number = DEFAULTS.requestTimeoutMs;
  const rt = values.get("request-timeout");
  if (rt !== undefined) {
    const ms = parseDuration(rt);
    if (ms === undefined || ms < 1) return error(`invalid -request-timeout ${JSON.stringify(rt)}: expected a duration`);
    requestTimeoutMs = ms;
  }

  const logLevel: LogLevel = values.get("trace") === "true"
    ? "trace"
    : values.get("debug") === "true"
    ? "debug"
    : values.get("v") === "true"
    ? "verbose"
    : "info";

  return {
    kind: "run",
    config: {
      dataDir,
      host,
      port,
      join,
      id,
      advertise,
      logLevel,
      electionTimeoutMs,
      heartbeatMs,
      maxValueBytes,
      snapshotEntries,
      requestTimeoutMs,
    },
  };
}

function error(message: string): ParseResult {
  return { kind: "error", message };
}

/** Whether `s` looks like `host:port` (IPv6 as `[::1]:port`). */
export function isHostPort(s: string): boolean {
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 65535;
}

/** Parse a Go-style duration (`300ms`, `1s`, `1.5s`, `2m`; a bare number is milliseconds). Undefined if invalid. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? "ms";
  const ms = unit === "ms" ? n : unit === "s" ? n * 1000 : n * 60_000;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Parse a size (`4096`, `64KiB`, `1MiB`, `1KB`, `1MB`; KB/MB are treated as KiB/MiB). Undefined if invalid. */
export function parseSize(s: string): number | undefined {
  const m = /^(\d+)(B|KiB|KB|K|MiB|MB|M)?$/i.exec(s);
  if (m === null) return undefined;
  const unit = (m[2] ?? "b").toLowerCase();
  const mult = unit === "b" ? 1 : unit.startsWith("k") ? 1024 : 1024 * 1024;
  return Number(m[1]) * mult;
}
