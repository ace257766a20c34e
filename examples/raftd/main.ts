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

// First, before anything evaluates effect: on Deno, effect's per-suspension AsyncResources chain and a long-lived
// fiber's history is never freed (issue 15's live-heap creep; see the module). Does nothing on Bun.
import "../../adapters/deno/no_async_context.ts";
import type { LogLevelName, LogRecord, NodeStatus } from "../../mod.ts";
import type { HttpTransport, TransportEvent } from "../../adapters/deno/mod.ts";
import { AdminGate } from "./admin.ts";
import { type Dialer, discover, fetchStatus, JoinError, joinLoop, type JoinRequest, targetsSelf } from "./join.ts";
import { forceNewClusterStep } from "./recovery.ts";
import { watchRemoval } from "./removal.ts";
import { isLoopbackHost, type LogLevel, parseArgs, type RaftdConfig, USAGE } from "./cli.ts";
import { createHandler, type RequestInfo } from "./http.ts";
import { requestUrl } from "../../adapters/transport/request_url.ts";
import { type Identity, loadIdentity, randomId, saveIdentity } from "./identity.ts";
import { decodeCommand, encodeCommand, type KvCommand, type KvResult, KvStore } from "./kv.ts";
import { Metrics } from "./metrics.ts";
import { createUi } from "./ui.ts";
import { loadPlatform, type Platform, type Server } from "./platform.ts";
import { describeSecurity, loadSecurity, type Security, SecurityError } from "./security.ts";
import { type KvNode, membersOf, RaftdNodeService } from "./service.ts";
import { Shards } from "./groups.ts";
import { ShardedService } from "./groups_service.ts";

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
  if (identity?.removed !== undefined) {
    console.error(
      `raftd: node ${identity.id} was removed from cluster ${identity.cluster} (${identity.removed}); ` +
        `its data cannot serve as a member again: remove ${config.dataDir} and start with -join to add this machine back`,
    );
    return 1;
  }
  if (config.forceNewCluster && config.groups > 1) {
    // The groups of keys would keep the lost voters and never regain a quorum.
    console.error("raftd: -force-new-cluster is not supported with -groups yet");
    return 2;
  }
  if (identity !== undefined && (identity.groups ?? 1) !== config.groups) {
    console.error(
      `raftd: ${config.dataDir} holds ${identity.groups ?? 1} group(s) of keys: start it with -groups ` +
        `${identity.groups ?? 1} (keys are hashed over that count; it cannot change)`,
    );
    return 2;
  }
  if (config.join !== undefined && targetsSelf(config.join, config.port, [config.host, config.listenHost, address])) {
    console.error(`raftd: -join ${config.join} is this node itself: give the address of a member of the cluster`);
    return 2;
  }
  if (config.forceNewCluster) {
    try {
      identity = await forceNewClusterStep({
        identity,
        dataDir: config.dataDir,
        dialer,
        recover: platform.adapter.forceNewClusterInDir,
        newClusterId: randomId() + randomId(),
        log: (m) => console.error(`raftd: ${m}`),
      });
      // At once: the log already says this node is alone; its identity must name the new cluster too.
      await saveIdentity(fs, config.dataDir, identity);
    } catch (e) {
      console.error(`raftd: -force-new-cluster: ${e instanceof Error ? e.message : e}`);
      return 1;
    }
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
  // A first start creates the cluster (its groups start with this node as their only voter) or joins one.
  const founding = identity === undefined && config.join === undefined;
  const selfPeers = (id: string): Record<string, string> => peerAddress === undefined ? {} : { [id]: peerAddress };
  if (identity === undefined) {
    const id = chosenId ?? randomId();
    if (config.join !== undefined) {
      logger.log("info", `joining the cluster of ${config.join} as ${id} at ${address}`);
      let found;
      try {
        found = await discover(config.join, dialer, logger, () => shuttingDown, config.joinTimeoutMs);
      } catch (e) {
        if (!(e instanceof JoinError)) throw e;
        console.error(`raftd: ${e.message}`);
        return 1;
      }

      identity = {
        id,
        address,
        cluster: found.cluster,
        founder: false,
        members: { ...found.members, [id]: address },
        peers: { ...found.peers, ...selfPeers(id) },
        ...(config.groups > 1 ? { groups: config.groups } : {}),
      };
      if (found.groups !== config.groups) {
        console.error(
          `raftd: the cluster of ${config.join} runs ${found.groups} group(s) of keys: start with -groups ${found.groups}`,
        );
        return 2;
      }
      joinTarget = config.join;
    } else {
      identity = {
        id,
        address,
        cluster: randomId() + randomId(),
        founder: true,
        members: { [id]: address },
        peers: selfPeers(id),
        ...(config.groups > 1 ? { groups: config.groups } : {}),
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
  const { cluster, members } = identity;
  const httpTransportAt = (prefix: string): HttpTransport =>
    adapter.createHttpTransport({
      clusterId: cluster,
      self,
      peers: new Map(Object.entries(members)),
      prefix,
      onEvent,
      ...(security.secret ? { secret: security.secret } : {}),
      ...(security.https ? { tls: security.ca === undefined ? {} : { ca: security.ca } } : {}),
    });
  // Peers stream over the HTTP port, unless they use mutual TLS on their own listener (TCP or HTTP/2).
  const http: HttpTransport | undefined = security.peerTls ? undefined : httpTransportAt("/raft");
  // The groups of keys (-groups N) stream over the same HTTP port, under their own path.
  const groupsHttp: HttpTransport | undefined = http && config.groups > 1 ? httpTransportAt("/raft/groups") : undefined;
  // Under mTLS they have their own TCP listener, one port above the node's peer port.
  const groupsTcp = security.peerTls && config.groups > 1
    ? platform.tcpTransport({
      clusterId: identity.cluster,
      self,
      listen: `${config.listenHost}:${portOf(peerAddress!) + 1}`,
      tls: { cert: security.peerTls.cert, key: security.peerTls.key, ca: security.peerTls.ca },
      ...(security.secret ? { secret: security.secret } : {}),
      onEvent,
    })
    : undefined;
  let node: KvNode | undefined;
  let shards: Shards | undefined;
  // The node's address book feeds the transport; ours (replicated over local) is its source.
  const transportBook = () => peerAddress === undefined ? book.all() : peerBook.all();
  const groupsBook = () =>
    peerAddress === undefined ? book.all() : new Map([...peerBook.all()].map(([id, a]) => [id, shiftPort(a, 1)]));
  const changed = () => {
    node?.setPeers(transportBook(), { replace: true });
    shards?.setPeers(groupsBook());
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
      peer = requestUrl(req).pathname.startsWith("/raft/");
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

  // mTLS with -peer-transport http: the HTTP transport's HTTP/2 listener on the
  // peer port (the runtimes' own servers cannot see client certificates).
  const peerListen = peerAddress === undefined
    ? undefined
    : `${config.listenHost}:${peerAddress.slice(peerAddress.lastIndexOf(":") + 1)}`;
  const peerTlsOptions = security.peerTls && {
    cert: security.peerTls.cert,
    key: security.peerTls.key,
    ca: security.peerTls.ca,
  };
  let http2: InstanceType<typeof adapter.Http2Transport> | undefined;
  if (peerTlsOptions && config.peerTransport === "http") {
    http2 = new adapter.Http2Transport({
      clusterId: identity.cluster,
      self,
      peers: new Map(Object.entries(transportBook())),
      listen: peerListen!,
      prefix: "/raft",
      tls: peerTlsOptions,
      ...(security.secret ? { secret: security.secret } : {}),
      onEvent,
    });
    try {
      await http2.start();
    } catch (e) {
      console.error(`raftd: cannot listen for peers on ${peerListen}: ${e instanceof Error ? e.message : e}`);
      await server.shutdown().catch(() => {});
      return 1;
    }
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
      // mTLS over TCP: startNode's TCP transport, listening on the peer port with the peer certificate.
      ...(http ?? http2 ? { transport: http ?? http2 } : {
        listen: peerListen!,
        clusterId: identity.cluster,
        transportOptions: {
          tls: peerTlsOptions!,
          ...(security.secret ? { secret: security.secret } : {}),
          onEvent,
        },
      }),

      stateMachine: {
        apply: (cmd: KvCommand): KvResult => kv.apply(cmd),
        snapshot: () => kv.snapshot(),
        restore: async (snapshot) => kv.restore(await snapshot.bytes()),
        // A snapshot from the leader is decoded as it arrives (into new maps, installed at commit).
        beginRestore: () => kv.beginRestore(),
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

  const groupsTransport = groupsHttp ?? groupsTcp;
  if (groupsTransport !== undefined) {
    try {
      await groupsTcp?.start();
      shards = await Shards.open({
        self,
        dataDir: config.dataDir,
        fs,
        transport: groupsTransport,
        peers: groupsBook(),
        groups: config.groups,
        founding,
        electionTimeoutMs: config.electionTimeoutMs,
        heartbeatMs: config.heartbeatMs,
        snapshotEntries: config.snapshotEntries,
        requestTimeoutMs: config.requestTimeoutMs,
        control: () => {
          const s = node!.status();
          return s.leader !== undefined && s.applied >= s.commit ? s.membership : undefined;
        },
        log: (level, m) => logger.log(level, m),
      });
    } catch (e) {
      console.error(`raftd: cannot start the groups of keys: ${e instanceof Error ? e.message : e}`);
      await groupsTcp?.close().catch(() => {});
      await node.stop().catch(() => {});
      await server.shutdown().catch(() => {});
      return 1;
    }
    shards.startMaintenance();
    logger.log("info", `hosting ${config.groups} groups of keys (leaders balanced over the voters)`);
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
    pid: platform.pid,
    catchUpTimeoutMs: config.joinTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    electionTimeoutMs: config.electionTimeoutMs,
    probe: async (at) => (await fetchStatus(dialer, at)).id,
  });
  const kvService = shards === undefined
    ? service
    : new ShardedService(service, shards, self, (id) => book.get(id), config.joinTimeoutMs);
  const admin = await AdminGate.create({
    cluster: identity.cluster,
    ...(security.token ? { token: security.token } : {}),
    ...(security.secret ? { secret: { bytes: security.secret, key: adapter.secretKey } } : {}),
    onRefused: (status, reason, remote) =>
      logger.limited(`admin ${remote} ${reason.slice(0, 30)}`, "info", `refused ${status} to ${remote}: ${reason}`),
  });
  api = createHandler({
    service: kvService,
    metrics,
    maxValueBytes: config.maxValueBytes,
    admin,
    scheme: dialer.scheme,
    fetch: dialer.fetch,
    // Bun upgrades peer streams through its server object; it is set before the first request arrives.
    peerHandler: http &&
      ((req) => http.handler(req, nativeServer) ?? groupsHttp?.handler(req, nativeServer)),
    ui: createUi({
      status: () => kvService.status(),
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
    `listening on ${dialer.scheme}://${config.listenHost}:${server.port} (${platform.name}, pid ${platform.pid}), ` +
      `data in ${config.dataDir}`,
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

  const exitCode = await new Promise<number>((resolve) => {
    // Fail-stop: a node stopped by a fatal error (a failed write or fsync)
    // takes the process with it, non-zero, so that a supervisor restarts it.
    const fatal = (e: unknown) => {
      if (shuttingDown) return;
      shuttingDown = true;
      console.error(`raftd: fatal: ${e instanceof Error ? e.message : e}; exiting`);
      resolve(1);
    };
    node!.done.catch(fatal);
    shards?.done.catch(fatal);
    /** Stop gracefully: let in-flight client requests finish (bounded), then stop the node (its fsync, its lock). */
    const shutdown = async (code: number) => {
      shuttingDown = true;
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((r) => (drained = r)), sleep(config.requestTimeoutMs)]);
      }
      await shards?.stop().catch((e) => logger.log("info", `stop groups: ${e}`));
      await node!.stop().catch((e) => logger.log("info", `stop: ${e}`));
      await saving;
      await Promise.race([server.shutdown(), sleep(2000)]).catch(() => {});
      tlsClient?.close();
      logger.log("info", "stopped");
      resolve(code);
    };
    // A Ctrl-C through npx or a task runner can reach raftd twice (the terminal signals the whole
    // process group, and the wrapper passes it on): a repeat within 2 s is the same request.
    let firstSignal: number | undefined;
    platform.onShutdownSignal((signal) => {
      if (firstSignal !== undefined) {
        if (Date.now() - firstSignal < 2000) return;
        logger.log("info", `${signal} again: exiting now`);
        platform.exit(1);
      }
      firstSignal = Date.now();
      logger.log("info", `${signal}: shutting down`);
      void shutdown(0);
    });
    // A join the cluster refuses for good ends the process with the reason.
    for (const joining of background.splice(0)) {
      background.push(joining.catch((e: unknown) => {
        if (shuttingDown || !(e instanceof JoinError)) return;
        console.error(`raftd: ${e.message}; exiting (fix the flags, or remove ${config.dataDir} to start afresh)`);
        void shutdown(1);
      }));
    }
    background.push(addressKeeper(self, address, peerAddress, node!, kv, logger, () => shuttingDown));
    // A removed node says so and stops serving as a member; its data directory is marked so it never does again.
    background.push(
      watchRemoval({
        self,
        cluster: identity!.cluster,
        node: node!,
        addresses: () => book.all(),
        dialer,
        electionTimeoutMs: config.electionTimeoutMs,
        stopped: () => shuttingDown,
      }).then(async (reason) => {
        if (reason === undefined || shuttingDown) return;
        logger.log("info", `removed from cluster ${identity!.cluster}: ${reason}; stopping for good`);
        identity = { ...identity!, removed: `${reason}, noticed ${new Date().toISOString()}` };
        const marked = identity;
        saving = saving.then(() => saveIdentity(fs, config.dataDir, marked)).catch((e) =>
          logger.log("info", `could not mark ${config.dataDir} as removed: ${e}`)
        );
        await shutdown(0);
      }),
    );
  });

  await Promise.race([Promise.allSettled(background), sleep(500)]);
  return exitCode;
}

/** The port of `host:port`. */
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** `host:port` with the port moved by `by` (the groups' mTLS listener sits one above the node's). */
function shiftPort(address: string, by: number): string {
  return `${address.slice(0, address.lastIndexOf(":"))}:${portOf(address) + by}`;
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
