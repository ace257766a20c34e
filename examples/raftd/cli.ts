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

/** Mutual TLS between peers: files of this node's certificate and key, and of the CA that signed every peer's. */
export interface PeerTlsFiles {
  /** `-peer-cert`: this node's certificate; its DNS name is the node id. */
  readonly cert: string;
  /** `-peer-key`. */
  readonly key: string;
  /** `-peer-ca`. */
  readonly ca: string;
}

/** The wire of the mutual-TLS peer listener (`-peer-transport`). */
export type PeerTransportKind = "tcp" | "http";

/** Everything `main.ts` needs to start a node. */
export interface RaftdConfig {
  /** Where the node keeps its log, snapshots and `raftd.json`. */
  readonly dataDir: string;
  /** Host the node advertises to peers and clients (`-h`). */
  readonly host: string;
  /** Interface the HTTP server (and the mTLS peer listener) binds: `-addr`, default 127.0.0.1. */
  readonly listenHost: string;
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
  /** `-groups N`: the key space hashed over N Raft groups hosted by every node (1: one group, as before). */
  readonly groups: number;
  /** `-cert`/`-key`: serve HTTPS (clients and, unless peers use mTLS, peer streams) with these files. */
  readonly https: { readonly cert: string; readonly key: string } | undefined;
  /** `-ca`: CA file trusted when calling other nodes over HTTPS (joins, forwarding, peer streams). */
  readonly ca: string | undefined;
  /** `-peer-cert`/`-peer-key`/`-peer-ca`: peers talk mutual TLS on `peerAddress`. */
  readonly peerTls: PeerTlsFiles | undefined;
  /** `-peer-addr`: where peers reach this node in mTLS mode (listens on `listenHost` at its port). */
  readonly peerAddress: string | undefined;
  /**
   * `-peer-transport`: the wire of the mTLS peer listener, `tcp` (frames
   * over TLS, the default) or `http` (the HTTP transport's streams over
   * HTTP/2 with client certificates). Every node of a cluster must use the same.
   */
  readonly peerTransport: PeerTransportKind;
  /** `-cluster-secret`: file of the shared secret (peers and joins). */
  readonly clusterSecret: string | undefined;
  /** `-admin-token`: file of the Bearer token required on membership and leadership endpoints. */
  readonly adminToken: string | undefined;
  /** `-insecure`: allow listening beyond loopback without peer authentication. */
  readonly insecure: boolean;
  /** `-join-timeout`: how long a first start with `-join` looks for the cluster before giving up (ms). */
  readonly joinTimeoutMs: number;
  /**
   * `-force-new-cluster`: recover from permanent quorum loss — make this
   * node, from its own data, the single member of a new cluster.
   */
  readonly forceNewCluster: boolean;
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
  -h, -host HOST              host to advertise to peers and clients (default localhost)
  -addr HOST                  interface to listen on (default 127.0.0.1; 0.0.0.0 for all)
  -join HOST:PORT             join the cluster this member belongs to (first start only)
  -join-timeout DURATION      give up a first -join if no member answers for this long; as leader,
                              refuse (and undo) a join whose learner has not caught up by then (default 30s)

  -id ID                      node id on first start (default: random; [A-Za-z0-9._-], at most 64)
  -advertise HOST:PORT        address peers and clients use to reach this node (default HOST:PORT)
  -election-timeout DURATION  base election timeout, e.g. 300ms, 1s (default 1s)
  -heartbeat DURATION         leader heartbeat interval (default election-timeout / 10)
  -max-value SIZE             largest value accepted, e.g. 4096, 64KiB, 1MiB (default 1MiB)
  -snapshot-entries N         snapshot after N applied entries (each group of keys too); 0 never
                              (default 10000)
  -groups N                   shard the keys over N Raft groups on every node, leaders balanced
                              (1 to 4096, the same on every node; default 1: one group)
  -request-timeout DURATION   give up waiting for a write or read after this long (default 5s)

Security (see SECURITY.md; without -peer-* or -cluster-secret raftd refuses to
listen beyond loopback unless -insecure is given):
  -cluster-secret FILE        shared secret (>= 16 bytes) peers and joiners must prove; never sent
  -peer-cert FILE             mutual TLS between peers: this node's certificate (DNS name = node id)
  -peer-key FILE              its private key
  -peer-ca FILE               the CA that signed every peer's certificate
  -peer-addr HOST:PORT        where peers reach this node over mTLS (default HOST:PORT+10000)
  -peer-transport tcp|http    the mTLS peer listener's wire: tcp (TLS frames, default) or http
                              (HTTP/2 streams with client certificates); the same on every node
  -cert FILE, -key FILE       serve HTTPS (clients, and peer streams unless -peer-* is given)
  -ca FILE                    CA to trust when calling other nodes over HTTPS (default: system roots)
  -admin-token FILE           Bearer token required on /join, /members/ID, /transfer
                              (without one these answer loopback clients only)
  -insecure                   allow listening beyond loopback without peer authentication

Disaster recovery (see examples/raftd/README.md):
  -force-new-cluster          quorum lost for good: make this node, with everything its data holds,
                              the single member of a NEW cluster (refused while another member answers)
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
  POST /join                  {"id": ID, "address": "HOST:PORT"}: add a node (admin)
  DELETE /members/ID          remove a node (admin)
  POST /transfer?to=ID        hand leadership to ID (admin)
  GET /metrics                Prometheus text format (plank_* node metrics, raftd_* HTTP metrics)
  GET /ui                     live view: members' roles, terms, indexes; writes/s and leader changes
`;

/** The most groups `-groups` takes (each costs memory on every node even when idle). */
export const MAX_GROUPS = 4096;

const DEFAULTS = {
  host: "localhost",
  listenHost: "127.0.0.1",
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
  | "groups"
  | "request-timeout"
  | "v"
  | "debug"
  | "trace"
  | "help"
  | "addr"
  | "cert"
  | "key"
  | "ca"
  | "peer-cert"
  | "peer-key"
  | "peer-ca"
  | "peer-addr"
  | "peer-transport"
  | "cluster-secret"
  | "admin-token"
  | "insecure"
  | "join-timeout"
  | "force-new-cluster";

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
  groups: "groups",
  "request-timeout": "request-timeout",
  v: "v",
  verbose: "v",
  debug: "debug",
  trace: "trace",
  help: "help",
  addr: "addr",
  cert: "cert",
  key: "key",
  ca: "ca",
  "peer-cert": "peer-cert",
  "peer-key": "peer-key",
  "peer-ca": "peer-ca",
  "peer-addr": "peer-addr",
  "peer-transport": "peer-transport",
  "cluster-secret": "cluster-secret",
  "admin-token": "admin-token",
  insecure: "insecure",
  "join-timeout": "join-timeout",
  "force-new-cluster": "force-new-cluster",
};

const BOOLEAN_FLAGS: ReadonlySet<FlagName> = new Set([
  "v",
  "debug",
  "trace",
  "help",
  "insecure",
  "force-new-cluster",
]);

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
  const listenHost = values.get("addr") ?? DEFAULTS.listenHost;
  if (listenHost === "" || /[\s/@]/.test(listenHost)) return error(`invalid -addr ${JSON.stringify(listenHost)}`);

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
  let groups = 1;
  const gs = values.get("groups");
  if (gs !== undefined) {
    if (!/^\d{1,4}$/.test(gs) || Number(gs) < 1 || Number(gs) > MAX_GROUPS) {
      return error(`invalid -groups ${JSON.stringify(gs)}: expected a count from 1 to ${MAX_GROUPS}`);
    }
    groups = Number(gs);
  }
  let requestTimeoutMs: number = DEFAULTS.requestTimeoutMs;
  const rt = values.get("request-timeout");
  if (rt !== undefined) {
    const ms = parseDuration(rt);
    if (ms === undefined || ms < 1) return error(`invalid -request-timeout ${JSON.stringify(rt)}: expected a duration`);
    requestTimeoutMs = ms;
  }

  let joinTimeoutMs = 30_000;
  const jt = values.get("join-timeout");
  if (jt !== undefined) {
    const ms = parseDuration(jt);
    if (ms === undefined || ms < 1) return error(`invalid -join-timeout ${JSON.stringify(jt)}: expected a duration`);
    joinTimeoutMs = ms;
  }
  const forceNewCluster = values.get("force-new-cluster") === "true";
  if (forceNewCluster && join !== undefined) {
    return error("-force-new-cluster starts a new cluster from this node's data: it takes no -join");
  }

  const files = (name: FlagName): string | undefined => {
    const v = values.get(name);
    return v === "" ? undefined : v;
  };
  for (
    const name of ["cert", "key", "ca", "peer-cert", "peer-key", "peer-ca", "cluster-secret", "admin-token"] as const
  ) {
    if (values.get(name) === "") return error(`-${name} needs a file name`);
  }
  const cert = files("cert"), key = files("key");
  if ((cert === undefined) !== (key === undefined)) return error("-cert and -key go together");
  const peerCert = files("peer-cert"), peerKey = files("peer-key"), peerCa = files("peer-ca");
  const peerSet = [peerCert, peerKey, peerCa].filter((f) => f !== undefined).length;
  if (peerSet !== 0 && peerSet !== 3) return error("-peer-cert, -peer-key and -peer-ca go together");
  const peerTls = peerCert && peerKey && peerCa ? { cert: peerCert, key: peerKey, ca: peerCa } : undefined;
  let peerAddress = values.get("peer-addr");
  if (peerAddress !== undefined) {
    if (peerTls === undefined) {
      return error("-peer-addr is for mutual TLS between peers: give -peer-cert, -peer-key, -peer-ca");
    }
    if (!isHostPort(peerAddress)) return error(`invalid -peer-addr ${JSON.stringify(peerAddress)}: expected HOST:PORT`);
  } else if (peerTls !== undefined) {
    if (port + PEER_PORT_OFFSET > 65535) {
      return error(`give -peer-addr: port ${port} + ${PEER_PORT_OFFSET} is not a port`);
    }
    const advertisedHost = advertise === undefined ? host : advertise.slice(0, advertise.lastIndexOf(":"));
    peerAddress = `${advertisedHost}:${port + PEER_PORT_OFFSET}`;
  }
  const peerTransport = values.get("peer-transport") ?? "tcp";
  if (peerTransport !== "tcp" && peerTransport !== "http") {
    return error(`invalid -peer-transport ${JSON.stringify(peerTransport)}: expected tcp or http`);
  }
  if (values.has("peer-transport") && peerTls === undefined) {
    return error("-peer-transport is for mutual TLS between peers: give -peer-cert, -peer-key, -peer-ca");
  }
  const insecure = values.get("insecure") === "true";
  const clusterSecret = files("cluster-secret");
  if (!insecure && !isLoopbackHost(listenHost) && peerTls === undefined && clusterSecret === undefined) {
    return error(
      `refusing to listen on ${listenHost} without peer authentication: anyone who reaches the port could ` +
        "speak for a node; give -cluster-secret FILE or -peer-cert/-peer-key/-peer-ca, or -insecure",
    );
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
      listenHost,
      port,
      join,
      id,
      advertise,
      logLevel,
      electionTimeoutMs,
      heartbeatMs,
      maxValueBytes,
      snapshotEntries,
      groups,
      requestTimeoutMs,
      https: cert && key ? { cert, key } : undefined,
      ca: files("ca"),
      peerTls,
      peerAddress,
      peerTransport,
      clusterSecret,
      adminToken: files("admin-token"),
      insecure,
      joinTimeoutMs,
      forceNewCluster,
    },
  };
}

/** In mTLS mode without -peer-addr, peers reach a node at its HTTP port plus this. */
export const PEER_PORT_OFFSET = 10_000;

/** Whether `host` names only this machine: `localhost`, 127.0.0.0/8 or ::1 (any other name counts as beyond). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
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
