/**
 * What the Deno and Bun adapters share: the storage and transport exports,
 * and `startNode` over a runtime's bindings (file system, TCP).
 *
 * @module
 */

export {
  type AppendFile,
  CorruptLogError,
  DataDirLockedError,
  type DirLock,
  type DurableFs,
  joinPath,
  type OverwriteFile,
  type ReadFile,
  StorageError,
} from "./storage/fs.ts";
export { DEFAULT_SEGMENT_BYTES, type OpenedWal, type WalOptions, WriteAheadLog } from "./storage/wal.ts";
export type { PersistBatch, RecoveredLog } from "../effects/ports/mod.ts";
export {
  type ChunkResult,
  FileSnapshotStore,
  type SnapshotReceiver,
  type StoredSnapshot,
} from "./storage/snapshots.ts";

export * from "./transport/mod.ts";

import type { CommandOf, NodeSpec, RaftNode, ResultOf, UserStateMachine } from "../effects/raft_node.ts";
import { type ForcedCluster, forceNewCluster } from "../effects/recovery.ts";
import type { NodeId } from "../core/types.ts";

import { createNode, peerMap } from "../effects/raft_node.ts";
import type { PeerTransport } from "./transport/transport.ts";
import { FileSnapshotStore } from "./storage/snapshots.ts";
import { type WalOptions as FileWalOptions, WriteAheadLog as FileWal } from "./storage/wal.ts";
import type { DurableFs } from "./storage/fs.ts";
import type { StreamTransport, StreamTransportOptions } from "./transport/stream.ts";

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
  /** TCP only: transport tunables (queue bounds, reconnect back-off) and peer authentication (`tls`, `secret`). */
  readonly transportOptions?: Omit<StreamTransportOptions, "clusterId" | "self" | "peers" | "listen">;
  /** Write-ahead log tunables. */
  readonly wal?: FileWalOptions;
}

/** What a runtime supplies to {@link startNodeOn}: its file system and its TCP transport. */
export interface RuntimeBindings {
  /** The runtime's durable file system. */
  readonly fs: () => DurableFs;
  /** A TCP transport on the runtime's sockets. */
  readonly tcp: (options: StreamTransportOptions) => StreamTransport;
}

/**
 * Starts a node with a runtime's bindings: opens (and locks) the write-ahead
 * log and snapshot store in `dataDir`, listens for peers over TCP unless a
 * `transport` is given, recovers and joins the cluster. `stop()` finishes the
 * in-flight sync and closes everything (the given transport included). If
 * starting fails, everything opened here is closed again (a given transport too).
 * Each runtime's `startNode` is this with its bindings.
 */
// deno-lint-ignore no-explicit-any
export async function startNodeOn<SM extends UserStateMachine<any, any>>(
  runtime: RuntimeBindings,
  options: StartNodeOptions<SM>,
): Promise<RaftNode<CommandOf<SM>, ResultOf<SM>, SM>> {
  const peers = peerMap(options.peers);
  let transport: PeerTransport | undefined = options.transport;
  let wal: FileWal | undefined;
  try {
    const fs = runtime.fs();
    const opened = await FileWal.open(fs, options.dataDir, options.wal);
    wal = opened.wal;
    const snapshotStore = await FileSnapshotStore.open(fs, options.dataDir);

    if (transport === undefined) {
      const listen = options.listen ?? peers.get(options.id);
      if (listen === undefined) throw new TypeError(`no listen address: peers has no entry for ${options.id}`);
      peers.delete(options.id);
      const tcp = runtime.tcp({
        ...options.transportOptions,
        clusterId: options.clusterId ?? "plank",
        self: options.id,
        peers,
        listen,
      });
      transport = tcp;
      await tcp.start();
    }
    return await createNode({
      ...options,
      logStore: wal,
      snapshotStore,
      transport,
    });
  } catch (e) {
    await transport?.close().catch(() => {});
    await wal?.close().catch(() => {});
    throw e;
  }
}

/** Options of {@link forceNewClusterOn} (and each runtime's `forceNewClusterInDir`). */
export interface ForceNewClusterInDirOptions {
  /** The survivor's id: the new cluster's single voter. */
  readonly id: NodeId;
  /** Its data directory (locked while this runs: no node may have it open). */
  readonly dataDir: string;
  /** Write-ahead log tunables. */
  readonly wal?: FileWalOptions;
  /** The members the cluster started with, if its membership never changed (see {@link forceNewCluster}). */
  readonly peers?: readonly NodeId[];
}

/**
 * Recovery after permanent quorum loss, on a data directory: makes the
 * survivor `id` the single voter of a new cluster, keeping everything its
 * log holds ({@link forceNewCluster}: one configuration entry in a new term,
 * nothing removed). Then start it with `startNode` on the same directory,
 * and add new members. Each runtime's `forceNewClusterInDir` is this with its file system.
 */
export async function forceNewClusterOn(
  runtime: Pick<RuntimeBindings, "fs">,
  options: ForceNewClusterInDirOptions,
): Promise<ForcedCluster> {
  const fs = runtime.fs();
  const { wal } = await FileWal.open(fs, options.dataDir, options.wal);
  try {
    const snapshotStore = await FileSnapshotStore.open(fs, options.dataDir);
    return await forceNewCluster({ id: options.id, logStore: wal, snapshotStore, peers: options.peers });
  } finally {
    await wal.close();
  }
}
export { MultiGroupLog } from "./storage/multi_log.ts";
