/**
 * raftd: a replicated key-value store over HTTP, on plank.
 *
 * ```sh
 * deno run -A examples/raftd/main.ts -p 4001 ./node1
 * deno run -A examples/raftd/main.ts -p 4002 -join localhost:4001 ./node2
 * bun examples/raftd/main.ts -p 4003 -join localhost:4001 ./node3
 * ```
 *
 * This file wires the pieces: flags (`cli.ts`), identity (`identity.ts`),
 * the state machine (`kv.ts`), the node (`startNode` from `@plank/raft/deno`
 * or `@plank/raft/bun`: write-ahead log and snapshots in the data directory,
 * peers over the HTTP transport served by raftd's own server), the HTTP API
 * (`http.ts`, `service.ts`) and signals.
 *
 * @module
 */

import type { LogLevelName, LogRecord, NodeStatus } from "../../mod.ts";
import type { HttpTransport, TransportEvent } from "../../adapters/deno/mod.ts";
import { AdminGate, answerChallenge } from "./admin.ts";
import { isLoopbackHost, type LogLevel, parseArgs, type RaftdConfig, USAGE } from "./cli.ts";
import { createHandler, type RequestInfo } from "./http.ts";
import { type Identity, loadIdentity, randomId, saveIdentity } from "./identity.ts";
import { decodeCommand, encodeCommand, type KvCommand, type KvResult, KvStore } from "./kv.ts";
import { Metrics } from "./metrics.ts";
import { createUi } from "./ui.ts";
import { loadPlatform, type Platform, type Server } from "./platform.ts";
import { describeSecurity, loadSecurity, type Security, SecurityError } from "./security.ts";
import { type KvNode, membersOf, RaftdNodeService } from "./service.ts";

const LEVELS: Record<LogLevel, number> = { info: 0, verbose: 1, debug: 2, trace: 3 };

/** The least severe of the library's lines each raftd level prints (`-v` adds raftd's own verbose lines). */
const NODE_LEVEL: Record<LogLevel, LogLevelName> = { info: "info", verbose: "info", debug: "debug", trace: "trace" };

/** Logs to stderr, prefixed with time, node id and level. */
class Logger {
  prefix = "raftd";
  readonly #lastSaid = new Map<string, number>();
  constructor(readonly level: LogLevel) {}
  log(level: LogLevel, message: string): void {
    if (LEVELS[level] > LEVELS[this.level]) return;
    this.#print(level.toUpperCase(), message);
  }
  /** A line of the node's (plank's structured log), with its fields as `key=value`. */
  node(record: LogRecord): void {
    const fields = Object.entries(record.annotations)
      .filter(([k, v]) => k !== "node" && k !== "group" && v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "string" && /\s/.test(v) ? JSON.stringify(v) : v}`);
    this.#print(record.level.toUpperCase(), `${record.message}${fields.length ? "  " + fields.join(" ") : ""}`);
  }
  #print(level: string, message: string): void {
    console.error(`${new Date().toISOString()} [${this.prefix}] ${level.padEnd(5)} ${message}`);
  }
  /** Log at most once per 10 s per `key`: refusals can come as fast as anyone can connect. */
  limited(key: string, level: LogLevel, message: string): void {
    const now = Date.now();
    if (now - (this.#lastSaid.get(key) ?? -Infinity) < 10_000) return;
    if (this.#lastSaid.size > 1000) this.#lastSaid.clear();
    this.#lastSaid.set(key, now);
    this.log(level, message);
  }
}

/** How this node calls the others over HTTP(S): scheme and fetch (trusting `-ca` under HTTPS). */
interface Dialer {
  readonly scheme: "http" | "https";
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
}

/**
 * Who is where: the replicated book (applied from the log, authoritative)
 * over what this node knew before (its saved copy, the join answer). Feeds
 * the node's address book, which hands it to the transport.
 */
class AddressBook {
  #replicated = new Map<string, string>();
  readonly #local = new Map<string, string>();

  constructor(
    initial: Readonly<Record<string, string>>,
    private readonly onChange: () => void,
  ) {
    for (const [id, a] of Object.entries(initial)) this.#local.set(id, a);
  }

  get(id: string): string | undefined {
    return this.#replicated.get(id) ?? this.#local.get(id);
  }

  all(): Map<string, string> {
    return new Map([...this.#local, ...this.#replicated]);
  }

  /** The replicated book changed (a command or a snapshot restore); `notify: false` when another book will. */
  replicated(book: ReadonlyMap<string, string>, notify = true): void {
    // Forget what the cluster has removed since we last heard.
    for (const id of this.#replicated.keys()) if (!book.has(id)) this.#local.delete(id);
    this.#replicated = new Map(book);
    if (notify) this.onChange();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ask `target` for the cluster id and member addresses, retrying until it answers. */
async function discover(target: string, dialer: Dialer, logger: Logger, stopped: () => boolean): Promise<{
  cluster: string;
  members: Record<string, string>;
  peers: Record<string, string>;
}> {
  for (let attempt = 1; !stopped(); attempt++) {
    try {
      const res = await dialer.fetch(`${dialer.scheme}://${target}/status`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) {
        const s = await res.json() as {
          cluster?: unknown;
          members?: { id: string; address?: unknown; peer?: unknown }[];
        };
        if (typeof s.cluster === "string" && Array.isArray(s.members)) {
          const members: Record<string, string> = {};
          const peers: Record<string, string> = {};
          for (const m of s.members) {
            if (typeof m.address === "string") members[m.id] = m.address;
            if (typeof m.peer === "string") peers[m.id] = m.peer;
          }
          return { cluster: s.cluster, members, peers };
        }
      } else await res.body?.cancel();
      logger.log("info", `join: ${target} answered /status with ${res.status}; retrying`);
    } catch (e) {
      if (attempt === 1 || attempt % 10 === 0) logger.log("info", `join: cannot reach ${target} (${e}); retrying`);
    }
    await sleep(Math.min(2000, 200 * attempt));
  }
  throw new Error("stopped");
}

async function main(platform: Platform): Promise<number> {
  const parsed = parseArgs(platform.args);
  if (parsed.kind === "help") {
    console.log(USAGE);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`raftd: ${parsed.message}`);
    console.error(USAGE);
    return 2;
  }
  const config: RaftdConfig = parsed.config;
  const logger = new Logger(config.logLevel);
  const { fs, adapter } = platform;
  let shuttingDown = false;

  let security: Security;
  try {
    security = await loadSecurity(fs, config);
  } catch (e) {
    if (!(e instanceof SecurityError)) throw e;
    console.error(`raftd: ${e.message}`);
    return 2;
  }
  if (config.insecure && !isLoopbackHost(config.listenHost) && !security.peerTls && !security.secret) {
    console.error(
      `raftd: WARNING: -insecure: listening on ${config.listenHost} with NO peer authentication. Anyone who can ` +
        "reach this port can speak as any node: forge log entries, change terms, move leadership. Use " +
        "-cluster-secret or -peer-cert/-peer-key/-peer-ca outside a network you fully trust.",
    );
  }
  const tlsClient = security.https || security.ca
    ? platform.tlsClient(security.ca === undefined ? {} : { ca: security.ca })
    : undefined;
  const dialer: Dialer = {
    scheme: security.https ? "https" : "http",
    fetch: tlsClient?.fetch ?? ((url, init) => fetch(url, init)),
  };

  const address = config.advertise ?? `${config.host}:${config.port}`;
  const peerAddress = security.peerTls ? config.peerAddress : undefined;
  let identity: Identity | undefined;
  try {
    identity = await loadIdentity(fs, config.dataDir);
  } catch (e) {
    console.error(`raftd: cannot open ${config.dataDir}: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
  let joinTarget: string | undefined;
  const certNames = security.peerTls?.names;
  let chosenId = config.id;
  if (certNames !== undefined) {
    // Under mTLS the node id is what the certificate names: peers check it.
    const id = identity?.id ?? config.id ?? (certNames.length === 1 ? certNames[0] : undefined);
    if (id === undefined || !certNames.includes(id)) {
      console.error(
        `raftd: -peer-cert names ${certNames.join(", ")} but this node is ${id ?? "unnamed (give -id)"}: ` +
          "a node's peer certificate must name its id",
      );
      return 2;
    }
    chosenId = id;
  }
  const selfPeers = (id: string): Record<string, string> => peerAddress === undefined ? {} : { [id]: peerAddress };
  if (identity === undefined) {
    const id = chosenId ?? randomId();
    if (config.join !== undefined) {
      logger.log("info", `joining the cluster of ${config.join} as ${id} at ${address}`);
      const found = await discover(config.join, dialer, logger, () => shuttingDown);
      identity = {
        id,
        address,
        cluster: found.cluster,
        founder: false,
        members: { ...found.members, [id]: address },
        peers: { ...found.peers, ...selfPeers(id) },
      };
      joinTarget = config.join;
    } else {
      identity = {
        id,
        address,
        cluster: randomId() + randomId(),
        founder: true,
        members: { [id]: address },
        peers: selfPeers(id),
      };
      logger.log("info", `starting a new cluster ${identity.cluster} as ${id} at ${address}`);
    }
  } else {
    if (config.id !== undefined && config.id !== identity.id) {
      logger.log("info", `-id ${config.id} ignored: this data directory belongs to ${identity.id}`);
    }
    if (identity.address !== address) {
      logger.log("info", `address changed from ${identity.address} to ${address}`);
      identity = { ...identity, address, members: { ...identity.members, [identity.id]: address } };
    }
    if (peerAddress !== undefined && identity.peers?.[identity.id] !== peerAddress) {
      identity = { ...identity, peers: { ...identity.peers, [identity.id]: peerAddress } };
    }
    joinTarget = config.join;
  }
  const self = identity.id;
  const founder = identity.founder;
  logger.prefix = `raftd ${self}`;

  // Save the address book whenever it changes (serialized, atomic writes),
  // only once the node has started: a start that fails writes no identity.
  let saving: Promise<void> = Promise.resolve();
  let saveError: unknown;
  const persistBook = (all: Map<string, string>, peers: Map<string, string>) => {
    identity = { ...identity!, members: Object.fromEntries(all), peers: Object.fromEntries(peers) };
    if (node === undefined) return;
    const snapshot = identity;
    saving = saving.then(() => saveIdentity(fs, config.dataDir, snapshot)).then(
      () => void (saveError = undefined),
      (e) => {
        saveError = e;
        logger.log("info", `could not save ${config.dataDir}/raftd.json: ${e}`);
      },
    );
  };
  const onEvent = (e: TransportEvent) => {
    const text = `transport: ${JSON.stringify(e, (_k, v) => v instanceof Error ? v.message : v)}`;
    // Refusals (a secret mismatch, a bad certificate, a stranger) get a line on both sides, rate-limited.
    if (e.type === "handshake-rejected") logger.limited(`${e.type} ${e.from} ${e.reason.slice(0, 40)}`, "info", text);
    else if (e.type === "connect-failed" && /secret|TLS|certificate|refused:/i.test(e.reason)) {
      logger.limited(`${e.type} ${e.peer}`, "info", text);
    } else logger.log("debug", text);
  };
  // Peers stream over the HTTP port, unless they use mutual TLS on their own TCP listener.
  const http: HttpTransport | undefined = security.peerTls ? undefined : adapter.createHttpTransport({
    clusterId: identity.cluster,
    self,
    peers: new Map(Object.entries(identity.members)),
    prefix: "/raft",
    onEvent,
    ...(security.secret ? { secret: security.secret } : {}),
    ...(security.https ? { tls: security.ca === undefined ? {} : { ca: security.ca } } : {}),
  });
  let node: KvNode | undefined;
  // The node's address book feeds the transport; ours (replicated over local) is its source.
  const transportBook = () => peerAddress === undefined ? book.all() : peerBook.all();
  const changed = () => {
    node?.setPeers(transportBook(), { replace: true });
    persistBook(book.all(), peerBook.all());
  };
  const book = new AddressBook(identity.members, changed);
  const peerBook = new AddressBook(identity.peers ?? {}, changed);
  const kv = new KvStore((members, peers) => {
    peerBook.replicated(peers, false);
    book.replicated(members);
  });

  let nativeServer: unknown;
  // Set once the node has started. The port is bound before the node starts,
  // so a start that cannot listen writes nothing to the data directory.
  let api: ((req: Request, info?: RequestInfo) => Promise<Response>) | undefined = undefined;

  // Stop accepting client requests at shutdown, but keep serving peers
  // until the node stops, so in-flight writes can still reach a quorum.
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const handler = async (req: Request, info: RequestInfo): Promise<Response> => {
    // A malformed Host makes req.url unparsable: the API answers that with 400.
    let peer = false;
    try {
      peer = new URL(req.url).pathname.startsWith("/raft/");
    } catch { /* not a peer request */ }
    if (shuttingDown && !peer) {
      return new Response("shutting down\n", { status: 503, headers: { "retry-after": "1", connection: "close" } });
    }
    if (api === undefined) return new Response("starting\n", { status: 503, headers: { "retry-after": "1" } });
    inFlight++;
    try {
      return await api(req, info);
    } finally {
      if (--inFlight === 0) drained?.();
    }
  };

  let server: Server;
  try {
    server = await platform.serve(config.listenHost, config.port, handler, security.https);
    nativeServer = server.native;
  } catch (e) {
    console.error(`raftd: cannot listen on ${config.listenHost}:${config.port}: ${e instanceof Error ? e.message : e}`);
    return 1;
  }

  // startNode takes the data directory's lock first: a second raftd on the
  // same directory stops here, before writing anything.
  try {
    node = await adapter.startNode({
      id: self,
      // A founder's first start makes it the single voter; the others join.
      peers: founder ? { [self]: peerAddress ?? address } : transportBook(),
      join: !founder,
      dataDir: config.dataDir,
      // mTLS: startNode's TCP transport, listening on the peer port with the peer certificate.
      ...(http ? { transport: http } : {
        listen: `${config.listenHost}:${peerAddress!.slice(peerAddress!.lastIndexOf(":") + 1)}`,
        clusterId: identity.cluster,
        transportOptions: {
          tls: { cert: security.peerTls!.cert, key: security.peerTls!.key, ca: security.peerTls!.ca },
          ...(security.secret ? { secret: security.secret } : {}),
          onEvent,
        },
      }),

      stateMachine: {
        apply: (cmd: KvCommand): KvResult => kv.apply(cmd),
        snapshot: () => kv.snapshot(),
        restore: (bytes: Uint8Array) => kv.restore(bytes),
      },
      command: { encode: encodeCommand, decode: decodeCommand },
      requestTimeoutMs: config.requestTimeoutMs,
      // The node's own log (elections, leaders, membership, snapshots, storage, slow fsyncs, peers), leveled.
      logger: (record) => logger.node(record),
      logLevel: NODE_LEVEL[config.logLevel],
      config: {
        electionTimeoutMs: config.electionTimeoutMs,
        heartbeatMs: config.heartbeatMs,
        snapshotEvery: config.snapshotEntries,
        seed: crypto.getRandomValues(new Uint32Array(1))[0],
      },
    });
  } catch (e) {
    const storage = e instanceof adapter.DataDirLockedError || e instanceof adapter.StorageError ||
      e instanceof adapter.CorruptLogError;
    const what = storage ? `open ${config.dataDir}` : "start the node";
    console.error(`raftd: cannot ${what}: ${e instanceof Error ? e.message : e}`);
    await server.shutdown().catch(() => {});
    return 1;
  }
  node.setPeers(transportBook(), { replace: true });
  persistBook(book.all(), peerBook.all());
  await saving;
  if (saveError !== undefined) {
    // Without its identity on disk, this directory could not be restarted.
    console.error(`raftd: cannot save ${config.dataDir}/raftd.json: ${saveError}`);
    await node.stop().catch(() => {});
    await server.shutdown().catch(() => {});
    return 1;
  }

  const started = node;
  const metrics = new Metrics(() => started.prometheusMetrics());
  const service = new RaftdNodeService({
    node,
    kv,
    address,
    cluster: identity.cluster,
    addressOf: (id) => book.get(id),
    ...(peerAddress === undefined ? {} : { peerAddressOf: (id: string) => peerBook.get(id) }),
    log: (m) => logger.log("info", m),
  });
  const admin = await AdminGate.create({
    cluster: identity.cluster,
    ...(security.token ? { token: security.token } : {}),
    ...(security.secret ? { secret: { bytes: security.secret, key: adapter.secretKey } } : {}),
    onRefused: (status, reason, remote) =>
      logger.limited(`admin ${remote} ${reason.slice(0, 30)}`, "info", `refused ${status} to ${remote}: ${reason}`),
  });
  api = createHandler({
    service,
    metrics,
    maxValueBytes: config.maxValueBytes,
    admin,
    scheme: dialer.scheme,
    fetch: dialer.fetch,
    // Bun upgrades peer streams through its server object; it is set before the first request arrives.
    peerHandler: http && ((req) => http.handler(req, nativeServer)),
    ui: createUi({
      status: () => service.status(),
      leaderChanges: () => leaderChangesSeen(started),
      fetch: dialer.fetch,
      scheme: dialer.scheme,
    }),
    onRequest: (method, path, status, ms) =>
      logger.log(path.startsWith("/raft/") ? "trace" : "debug", `${method} ${path} ${status} ${ms.toFixed(1)}ms`),
    onError: (e) => logger.log("info", `error: ${e instanceof Error ? e.stack : e}`),
  });
  logger.log(
    "info",
    `listening on ${dialer.scheme}://${config.listenHost}:${server.port} (${platform.name}), data in ${config.dataDir}`,
  );
  logger.log("info", describeSecurity(security, config));
  if (isLoopbackHost(config.listenHost) && !isLoopbackHost(address.slice(0, address.lastIndexOf(":")))) {
    logger.log("info", `advertising ${address} but listening on ${config.listenHost} only: give -addr to be reachable`);
  }

  const background: Promise<void>[] = [];
  const isMember = (s: NodeStatus) => membersOf(s.membership).some((m) => m.id === self);
  if (!isMember(node.status()) && !founder) {
    const target = joinTarget ?? Object.entries(identity.members).find(([id]) => id !== self)?.[1];
    if (target === undefined) logger.log("info", "not a member and nobody to ask: start with -join HOST:PORT");
    else {
      const join: JoinRequest = { self, address, peer: peerAddress, cluster: identity.cluster, token: security.token };
      background.push(joinLoop(target, join, dialer, admin.joinKey, node, logger, () => shuttingDown));
    }
  } else if (config.join !== undefined && isMember(node.status())) {
    logger.log("verbose", `-join ${config.join} ignored: already a member`);
  }
  background.push(addressKeeper(self, address, peerAddress, node, kv, logger, () => shuttingDown));

  const exitCode = await new Promise<number>((resolve) => {
    // Fail-stop: a node stopped by a fatal error (a failed write or fsync)
    // takes the process with it, non-zero, so that a supervisor restarts it.
    node!.done.catch((e: unknown) => {
      if (shuttingDown) return;
      shuttingDown = true;
      console.error(`raftd: fatal: ${e instanceof Error ? e.message : e}; exiting`);
      resolve(1);
    });
    let signals = 0;
    platform.onShutdownSignal(async (signal) => {
      if (++signals > 1) {
        logger.log("info", `${signal} again: exiting now`);
        platform.exit(1);
      }
      logger.log("info", `${signal}: shutting down`);
      shuttingDown = true;
      // Let in-flight client requests finish (bounded), then stop the node:
      // it finishes its in-flight fsync and releases the data directory.
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((r) => (drained = r)), sleep(config.requestTimeoutMs)]);
      }
      await node!.stop().catch((e) => logger.log("info", `stop: ${e}`));
      await saving;
      await Promise.race([server.shutdown(), sleep(2000)]).catch(() => {});
      tlsClient?.close();
      logger.log("info", "stopped");
      resolve(0);
    });
  });
  await Promise.race([Promise.allSettled(background), sleep(500)]);
  return exitCode;
}

/** What a joiner sends, and the credentials it has. */
interface JoinRequest {
  readonly self: string;
  readonly address: string;
  /** Its mTLS peer address, when peers use mutual TLS. */
  readonly peer: string | undefined;
  readonly cluster: string;
  /** `-admin-token`, presented as a Bearer token. */
  readonly token: string | undefined;
}

/**
 * Keep asking `target` (followed to the leader) to add this node until it
 * is a voter. With the cluster secret, a `PlankSecret` challenge is answered
 * with a proof and the request repeated at once.
 */
async function joinLoop(
  target: string,
  join: JoinRequest,
  dialer: Dialer,
  joinKey: CryptoKey | undefined,
  node: KvNode,
  logger: Logger,
  stopped: () => boolean,
): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify({
    id: join.self,
    address: join.address,
    ...(join.peer === undefined ? {} : { peer: join.peer }),
  }));
  const post = (authorization: string | undefined) =>
    dialer.fetch(`${dialer.scheme}://${target}/join`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body: body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(90_000),
    });
  for (let attempt = 1; !stopped(); attempt++) {
    const me = membersOf(node.status().membership).find((m) => m.id === join.self);
    if (me?.suffrage === "voter") {
      logger.log("info", "joined the cluster as a voter");
      return;
    }
    try {
      // Holding the secret, ask for a challenge first: the leader then checks our secret even on loopback.
      let res = await post(joinKey ? "PlankSecret" : join.token && `Bearer ${join.token}`);
      if (res.status === 401 && joinKey !== undefined) {
        const proof = await answerChallenge(joinKey, join.cluster, res.headers.get("www-authenticate"), body);
        if (proof !== undefined) {
          await res.body?.cancel();
          res = await post(proof);
        }
      }
      const text = (await res.text()).trim();
      if (res.ok) {
        logger.log("info", `joined via ${target}`);
        return;
      }
      logger.log("info", `join via ${target}: ${res.status} ${text}; retrying`);
    } catch (e) {
      logger.log("info", `join via ${target} failed (${e}); retrying`);
    }
    await sleep(Math.min(2000, 250 * attempt));
  }
}

/** Leader changes the node has seen (its `plank_leader_changes_seen_total`). */
function leaderChangesSeen(node: KvNode): number {
  const m = node.metrics().find((s) => s.name === "plank_leader_changes_seen_total");
  return m !== undefined && m.type === "counter" ? m.value : 0;
}

/** Make sure the replicated address book has this node's current address (first start of a founder, or a move). */
async function addressKeeper(
  self: string,
  address: string,
  peer: string | undefined,
  node: KvNode,
  kv: KvStore,
  logger: Logger,
  stopped: () => boolean,
): Promise<void> {
  while (!stopped()) {
    const s = node.status();
    if (s.stopped) return;
    const caughtUp = s.leader !== undefined && s.applied >= s.commit;
    if (caughtUp && membersOf(s.membership).some((m) => m.id === self)) {
      if (kv.members().get(self) === address && kv.peers().get(self) === peer) {
        await sleep(1000);
        continue;
      }
      try {
        await node.propose({ op: "setMember", id: self, address, ...(peer === undefined ? {} : { peer }) });
        logger.log("verbose", `recorded own address ${address}`);
      } catch (e) {
        logger.log("debug", `recording own address: ${e}`);
      }
    }
    await sleep(200);
  }
}

if (import.meta.main) {
  const platform = await loadPlatform();
  try {
    platform.exit(await main(platform));
  } catch (e) {
    console.error(`raftd: ${e instanceof Error ? e.stack : e}`);
    platform.exit(1);
  }
}
