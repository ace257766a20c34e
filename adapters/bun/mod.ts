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
 * {@link WriteAheadLog} and the {@link SnapshotStore} built on it.
 *
 * Transport: `BunTcpTransport` (TCP) and {@link createHttpTransport} (HTTP, mounted on
 * your own server), both implementing {@link PeerTransport}.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";

export { BunFs } from "./fs.ts";
export {
  type AppendFile,
  CorruptLogError,
  DataDirLockedError,
  type DirLock,
  type DurableFs,
  joinPath,
  type ReadFile,
  StorageError,
} from "../storage/fs.ts";
export {
  DEFAULT_SEGMENT_BYTES,
  type OpenedWal,
  type PersistBatch,
  type RecoveredLog,
  type WalOptions,
  WriteAheadLog,
} from "../storage/wal.ts";
export { type ChunkResult, type SnapshotReceiver, SnapshotStore, type StoredSnapshot } from "../storage/snapshots.ts";

// Peer transports: TCP on this runtime's sockets, plus the runtime-independent HTTP transport.
export { bunStreamDriver, BunTcpTransport } from "./tcp.ts";
export * from "../transport/mod.ts";

import type { CommandOf, NodeSpec, RaftNode, ResultOf, UserStateMachine } from "../../effects/node.ts";
import { createNode, peerMap } from "../../effects/node.ts";
import type { PeerTransport, TransportOptions } from "../transport/transport.ts";
import { SnapshotStore as FileSnapshotStore } from "../storage/snapshots.ts";
import { type WalOptions as FileWalOptions, WriteAheadLog as FileWal } from "../storage/wal.ts";
import { BunFs as Fs } from "./fs.ts";
import { BunTcpTransport as Tcp } from "./tcp.ts";

/** Options of {@link startNode}: a node's spec plus where its data lives and how its peers connect. */
// deno-lint-ignore no-explicit-any
export interface StartNodeOptions<SM extends UserStateMachine<any, any>> extends NodeSpec<SM> {
  /** Directory of this node's log and snapshots (locked while the node runs). */
  readonly dataDir: string;
  /**
   * The peer transport, ready to use (e.g. {@link createHttpTransport}'s,
   * served by your own HTTP server). The node manages its address book and
   * closes it on `stop()`. Default: a TCP transport built from `listen`,
   * `clusterId` and `transportOptions`.
   */
  readonly transport?: PeerTransport;
  /** TCP only: address to listen on, `"host:port"` (default: this node's entry in `peers`). */
  readonly listen?: string;
  /** TCP only: cluster identity checked in the transport handshake (default `"plank"`). */
  readonly clusterId?: string;
  /** TCP only: transport tunables (queue bounds, reconnect back-off). */
  readonly transportOptions?: Omit<TransportOptions, "clusterId" | "self" | "peers">;
  /** Write-ahead log tunables. */
  readonly wal?: FileWalOptions;
}

/**
 * Starts a node on Bun: opens (and locks) the write-ahead log and snapshot
 * store in `dataDir`, listens for peers over TCP unless a `transport` is
 * given, recovers and joins the cluster. `stop()` finishes the in-flight
 * sync and closes everything (the given transport included). If starting
 * fails, everything opened here is closed again (a given transport too).
 */
// deno-lint-ignore no-explicit-any
export async function startNode<SM extends UserStateMachine<any, any>>(
  options: StartNodeOptions<SM>,
): Promise<RaftNode<CommandOf<SM>, ResultOf<SM>, SM>> {
  const peers = peerMap(options.peers);
  let transport: PeerTransport | undefined = options.transport;
  let wal: FileWal | undefined;
  try {
    const fs = new Fs();
    const opened = await FileWal.open(fs, options.dataDir, options.wal);
    wal = opened.wal;
    const { recovered } = opened;
    const snapshotStore = await FileSnapshotStore.open(fs, options.dataDir);
    if (transport === undefined) {
      const listen = options.listen ?? peers.get(options.id);
      if (listen === undefined) throw new TypeError(`no listen address: peers has no entry for ${options.id}`);
      peers.delete(options.id);
      const tcp = new Tcp({
        ...options.transportOptions,
        clusterId: options.clusterId ?? "plank",
        self: options.id,
        peers,
        listen,
      });
      transport = tcp;
      await tcp.start();
    }
    const log = wal;
    return await createNode({
      ...options,
      logStore: {
        load: () => Promise.resolve({ hardState: recovered.hardState, entries: recovered.entries }),
        append: (batch) => log.append(batch),
        sync: () => log.sync(),
        compact: (index) => log.compact(index),
        close: () => log.close(),
      },
      snapshotStore,
      transport,
    });
  } catch (e) {
    await transport?.close().catch(() => {});
    await wal?.close().catch(() => {});
    throw e;
  }
}
