/// <reference types="bun" />
/**
 * Bun adapter for plank (storage, transport, clock on Bun APIs).
 *
 * `startNode` runs a node on this runtime: a write-ahead log and snapshot
 * files under `dataDir`, and TCP between peers by default:
 *
 * ```ts
 * import { startNode } from "@plank/raft/bun";
 *
 * const node = await startNode({
 *   id: "a",
 *   peers: { a: "127.0.0.1:7001", b: "127.0.0.1:7002", c: "127.0.0.1:7003" },
 *   dataDir: "./data/a",
 *   stateMachine: { apply: (n: number) => n * 2 },
 * });
 * // Wait until the cluster has a leader.
 * while (node.status().leader === undefined) await new Promise((r) => setTimeout(r, 50));
 * console.log(await node.propose(21)); // 42
 * await node.stop();
 * ```
 *
 * Or over any {@link PeerTransport} you pass, such as the HTTP one served by
 * your own HTTP server (peers' addresses are then those servers'):
 *
 * ```ts
 * import { createHttpTransport, startNode } from "@plank/raft/bun";
 *
 * const transport = createHttpTransport({ clusterId: "demo", self: "a" });
 * const node = await startNode({
 *   id: "a",
 *   peers: { a: "127.0.0.1:8001", b: "127.0.0.1:8002", c: "127.0.0.1:8003" },
 *   dataDir: "./data/a",
 *   transport, // your server on 127.0.0.1:8001 answers `transport.handler(req)` under /raft
 *   stateMachine: { apply: (n: number) => n * 2 },
 * });
 * ```
 *
 * Storage: `BunFs` (the runtime's {@link DurableFs}), the
 * {@link WriteAheadLog} and the {@link FileSnapshotStore} built on it.
 *
 * Transport: `BunTcpTransport` (TCP), {@link createHttpTransport} (HTTP, mounted on
 * your own server) and {@link Http2Transport} (the HTTP transport's mutual-TLS
 * mode: HTTP/2 streams on its own listener), all implementing {@link PeerTransport}.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";

export { BunFs } from "./fs.ts";
export * from "../common.ts";

// Peer transports: TCP on this runtime's sockets (the HTTP transport comes from common.ts).
export { bunStreamDriver, BunTcpTransport, bunTlsDriver } from "./tcp.ts";
export { bunTlsClient } from "./tls.ts";

import type { CommandOf, RaftNode, ResultOf, UserStateMachine } from "../../effects/raft_node.ts";
import { type ForceNewClusterInDirOptions, forceNewClusterOn, startNodeOn, type StartNodeOptions } from "../common.ts";
import type { ForcedCluster } from "../../effects/recovery.ts";
import { BunFs } from "./fs.ts";
import { BunTcpTransport } from "./tcp.ts";
import { createHttpTransportWith, type HttpTransport, type RuntimeHttpTransportOptions } from "../transport/http.ts";
import { bunWebSocketUpgrade } from "./websocket.ts";
import { bunTlsClient } from "./tls.ts";

export { bunWebSocketUpgrade, peerWebSocket } from "./websocket.ts";

/**
 * Starts a node on Bun: opens (and locks) the write-ahead log and snapshot
 * store in `dataDir`, listens for peers over TCP unless a `transport` is
 * given, recovers and joins the cluster. `stop()` finishes the in-flight
 * sync and closes everything (the given transport included). If starting
 * fails, everything opened here is closed again (a given transport too).
 */
// deno-lint-ignore no-explicit-any
export function startNode<SM extends UserStateMachine<any, any>>(
  options: StartNodeOptions<SM>,
): Promise<RaftNode<CommandOf<SM>, ResultOf<SM>, SM>> {
  return startNodeOn({ fs: () => new BunFs(), tcp: (o) => new BunTcpTransport(o) }, options);
}

/**
 * Recovery after permanent quorum loss, on Bun: makes the survivor `options.id`
 * the single voter of a new cluster from its data directory, keeping
 * everything its log holds (see `forceNewCluster` in `@plank/raft`). Run it
 * while no node has the directory open, then `startNode` on it and add new
 * members. Refuses (`RecoveryRefused`) a directory with no log, or whose
 * node is already the only member.
 */
export function forceNewClusterInDir(options: ForceNewClusterInDirOptions): Promise<ForcedCluster> {
  return forceNewClusterOn({ fs: () => new BunFs() }, options);
}

/**
 * The HTTP transport with peer streams on Bun
: peers send over one WebSocket
 * each (upgraded on the same port under `${prefix}/stream`), falling back to
 * POST for a peer that does not upgrade. For peer streams, mount it as `fetch: (req, server) => transport.handler(req, server) ?? app(req)`
 * and pass `websocket: peerWebSocket` to `Bun.serve`; without them peers send POSTs instead.
 * Pass `streams: false` for POST only; `tls` to reach peers over https/wss
 * (trusting `tls.ca`); `secret` for the shared-secret mode (streams only).
 */
export function createHttpTransport(opts: RuntimeHttpTransportOptions): HttpTransport {
  return createHttpTransportWith(opts, bunWebSocketUpgrade, bunTlsClient);
}
