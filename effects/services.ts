/**
 * The ports a running node needs, as effect services: where the log and
 * snapshots are stored, how messages travel, and the user's state machine.
 * Time comes from Effect's own `Clock` (`Effect.sleep`), so `TestClock`
 * drives a node in tests.
 *
 * Services use effect 4's function style (`Context.Service<Self, Shape>(key)`)
 * because class-style services fail JSR's no-slow-types check.
 *
 * @module
 */

import { Context, type Effect } from "effect";
import type { Entry, Index, Message, NodeId, SnapshotMeta } from "../core/types.ts";
import type { SnapshotChecksumMismatch, StorageFailure } from "./errors.ts";
import type { ChunkResult, PersistBatch, RecoveredLog, StoredSnapshot } from "./ports.ts";

/**
 * The durable Raft log. `append` writes without syncing; `sync` makes every
 * earlier append durable. The node calls `append` once and `sync` once per
 * loop iteration (group commit, docs/DESIGN.md ordering rule 4).
 */
export interface LogStore {
  /** Reads what survived the last run. */
  readonly load: Effect.Effect<RecoveredLog, StorageFailure>;
  /** Writes a batch; not durable until `sync`. */
  append(batch: PersistBatch): Effect.Effect<void, StorageFailure>;
  /** Makes every earlier `append` durable (one fsync). */
  readonly sync: Effect.Effect<void, StorageFailure>;
  /** Drops entries up to and including `index`, now covered by a snapshot. */
  compact(index: Index): Effect.Effect<void, StorageFailure>;
}

/** The {@link LogStore} service key. */
export const LogStore: Context.Service<LogStore, LogStore> = Context.Service<LogStore>("@plank/raft/LogStore");

/** A snapshot being received chunk by chunk (InstallSnapshot). */
export interface SnapshotSink {
  /** What is being received. */
  readonly meta: SnapshotMeta;
  /** Appends `bytes` if `offset` is the next expected one. */
  writeChunk(offset: number, bytes: Uint8Array): Effect.Effect<ChunkResult, StorageFailure>;
  /** Makes the snapshot durable and current if its bytes match the sender's `checksum` (else: dropped). */
  finish(checksum: number | undefined): Effect.Effect<StoredSnapshot, StorageFailure | SnapshotChecksumMismatch>;
  /** Drops what was received. */
  readonly abort: Effect.Effect<void>;
}

/** Durable snapshots of the state machine. */
export interface SnapshotStore {
  /** The newest snapshot, if any. */
  readonly latest: Effect.Effect<StoredSnapshot | undefined, StorageFailure>;
  /** Stores a snapshot the local state machine produced, durably. */
  write(meta: SnapshotMeta, bytes: Uint8Array): Effect.Effect<StoredSnapshot, StorageFailure>;
  /** Starts receiving a snapshot from the leader. */
  receive(meta: SnapshotMeta): Effect.Effect<SnapshotSink, StorageFailure>;
}

/** The {@link SnapshotStore} service key. */
export const SnapshotStore: Context.Service<SnapshotStore, SnapshotStore> = Context.Service<SnapshotStore>(
  "@plank/raft/SnapshotStore",
);

/** Callbacks a node installs on its transport. */
export interface TransportHandlers {
  /** A message for this node arrived. */
  onMessage(message: Message): void;
  /** A peer could not be reached (queue full, connection lost). */
  onUnreachable(peer: NodeId): void;
}

/**
 * Moves messages between nodes, best effort and never blocking: `send`
 * returns false instead of waiting when a peer is unknown or its queue is full.
 */
export interface Transport {
  /** Enqueues `message` for delivery to `message.to`. */
  send(message: Message): boolean;
  /** Installs the receive callbacks (once, when the node starts). */
  listen(handlers: TransportHandlers): void;
  /** Replaces the address book (`"host:port"` per node) after membership changes. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
}

/** The {@link Transport} service key. */
export const Transport: Context.Service<Transport, Transport> = Context.Service<Transport>("@plank/raft/Transport");

/**
 * The replicated state machine, at the byte level. Calls are made from the
 * node's single loop, in log order, each committed command exactly once.
 * Results may be values or Promises; the loop waits for a Promise before it
 * applies the next entry.
 */
export interface StateMachine {
  /** Applies one committed `command` entry and returns its result. A throw fails only that entry's proposal. */
  apply(entry: Entry): unknown;
  /**
   * Captures the state as of the last applied entry. Capture synchronously at
   * the call (the loop moves on); serializing may finish in the returned Promise.
   */
  snapshot(): Uint8Array | PromiseLike<Uint8Array>;
  /** Replaces the whole state with a snapshot's bytes. */
  restore(bytes: Uint8Array): void | PromiseLike<void>;
}

/** The {@link StateMachine} service key. */
export const StateMachine: Context.Service<StateMachine, StateMachine> = Context.Service<StateMachine>(
  "@plank/raft/StateMachine",
);
