/**
 * The ports a node runs on, as plain Promise-style objects: where its log
 * and snapshots are stored and how its messages travel. `createNode` takes
 * them directly; `@plank/raft/effect` turns them into effect services.
 * plank's own `WriteAheadLog`, file `SnapshotStore` and `PeerTransport`s
 * fit them structurally, and so do the in-memory ones of
 * `@plank/raft/memory`. Nothing here depends on `effect`.
 *
 * @module
 */

import type { Entry, HardState, Index, Message, NodeId, SnapshotMeta } from "../core/types.ts";

/** What a log store recovered: the last hard state and the durable entries (contiguous). */
export interface RecoveredLog {
  /** The last hard state written (all zero for a new log). */
  readonly hardState: HardState;
  /** Durable entries after the compaction point, in index order. */
  readonly entries: readonly Entry[];
  /** Index of the first entry the log holds or will hold (compaction point + 1), when the store knows it. */
  readonly firstIndex?: Index;
}

/** One group-commit batch of the core's `Persist` effects, merged: truncate, then append, with the hard state. */
export interface PersistBatch {
  /** The hard state to record, if it changed. */
  readonly hardState?: HardState | undefined;
  /** Entries to append; the first follows the log's last index after truncation. */
  readonly entries: readonly Entry[];
  /** Drop entries from this index on before appending. */
  readonly truncateFrom?: Index | undefined;
}

/** A snapshot held by a snapshot store. */
export interface StoredSnapshot {
  /** What it covers. */
  readonly meta: SnapshotMeta;
  /** Size of the state machine's bytes. */
  readonly size: number;
  /** CRC-32C of the state machine's bytes, as they were stored (a leader sends it with the last chunk). */
  readonly checksum: number;
  /**
   * Streams the bytes from `offset` in chunks of at most `chunkBytes`. A read
   * from offset 0 fails before handing out the last chunk if the bytes do not
   * match {@link StoredSnapshot.checksum}: a damaged snapshot is never restored.
   */
  read(offset?: number, chunkBytes?: number): AsyncIterable<Uint8Array>;
}

/** Outcome of writing one received chunk. */
export interface ChunkResult {
  /** Whether the chunk was written (its offset was the one expected). */
  readonly accepted: boolean;
  /** The offset expected next. */
  readonly expected: number;
}

/** A log store with Promise methods (e.g. a `WriteAheadLog` plus what it recovered). */
export interface LogStorePort {
  /** Reads what survived the last run. */
  load(): Promise<RecoveredLog>;
  /** Writes a batch without syncing. */
  append(batch: PersistBatch): Promise<void>;
  /** Makes earlier appends durable. */
  sync(): Promise<void>;
  /** Drops entries up to `index`. */
  compact(index: Index): Promise<void>;
  /** Releases the store; called when the node stops. */
  close?(): Promise<void>;
}

/** A received snapshot in progress, Promise style. */
export interface SnapshotReceiverPort {
  /** Appends `bytes` at `offset` if it is the next expected one. */
  writeChunk(offset: number, bytes: Uint8Array): Promise<ChunkResult>;
  /**
   * Makes it durable and current, provided its bytes have the sender's
   * CRC-32C `checksum`; otherwise (or without one) drops it and rejects with
   * `SnapshotChecksumMismatch`, and nothing becomes current.
   */
  finish(checksum: number | undefined): Promise<StoredSnapshot>;
  /** Drops it. */
  abort(): Promise<void>;
}

/** A snapshot store with Promise methods (plank's file `SnapshotStore` fits). */
export interface SnapshotStorePort {
  /** The newest snapshot, if any. */
  latest(): Promise<StoredSnapshot | undefined>;
  /** Stores a snapshot from its chunks. */
  write(meta: SnapshotMeta, chunks: Iterable<Uint8Array>): Promise<StoredSnapshot>;
  /** Starts receiving a snapshot. */
  receive(meta: SnapshotMeta): Promise<SnapshotReceiverPort>;
  /** Releases the store; called when the node stops. */
  close?(): Promise<void>;
}

/**
 * Moves messages between nodes, best effort and never blocking: `send`
 * returns false instead of waiting when a peer is unknown or its queue is
 * full (plank's `PeerTransport`s fit). The node owns the address book: it
 * calls `setPeers` with the full book whenever that changes.
 */
export interface TransportPort {
  /** Enqueues `message`; false when it cannot be delivered. */
  send(message: Message): boolean;
  /** Installs the receive handler. */
  onMessage(handler: (message: Message) => void): void;
  /** Installs the unreachable-peer handler. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Replaces the address book (`"host:port"` per peer, this node excluded). */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Stops the transport; called when the node stops. */
  close(): Promise<void>;
}
