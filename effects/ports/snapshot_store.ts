/**
 * The snapshot-store port: where a node's state-machine snapshots are kept, written whole or received chunk by chunk.
 *
 * As effect 4's own modules do, the port keeps its interface, its service
 * and its layers together: the Promise-style interface `createNode` takes,
 * the effect service the interpreter runs on (function-style
 * `Context.Service`, since class-style services fail JSR's no-slow-types
 * check), and the conversion and Layer between them.
 *
 * @module
 */

import { Context, Effect, Layer } from "effect";
import type { SnapshotMeta } from "../../core/types.ts";
import { SnapshotChecksumMismatch, StateMachineFailure, StorageFailure } from "../errors.ts";

import { attempt, closing } from "./attempt.ts";

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
   * `check: false` leaves that to the caller, which checksums what it reads
   * itself (a leader's stream, whose bursts each read a part).
   */
  read(offset?: number, chunkBytes?: number, check?: boolean): AsyncIterable<Uint8Array>;
  /**
   * Keeps this snapshot readable until the release it resolves to is
   * called, even if a newer one replaces it meanwhile (its removal waits for
   * the last release); resolves to undefined if the snapshot was already
   * removed when the hold was taken. A leader holds the snapshot it streams
   * to a follower: were it removed mid-stream, the transfer would start over
   * with the newer one, and a follower whose transfer takes longer than the
   * leader takes between snapshots would never catch up. A store whose
   * snapshots stay readable once replaced (the in-memory one) need not
   * implement it.
   */
  retain?(): Promise<(() => Promise<void>) | undefined>;
}

/** Outcome of writing one received chunk. */
export interface ChunkResult {
  /** Whether the chunk was written (its offset was the one expected). */
  readonly accepted: boolean;
  /** The offset expected next. */
  readonly expected: number;
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

/** A snapshot store with Promise methods (plank's `FileSnapshotStore` fits). */
export interface SnapshotStorePort {
  /** The newest snapshot, if any. */
  latest(): Promise<StoredSnapshot | undefined>;
  /** Stores a snapshot from its chunks (streamed: each chunk is written as it comes). */
  write(meta: SnapshotMeta, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<StoredSnapshot>;
  /** Starts receiving a snapshot. */
  receive(meta: SnapshotMeta): Promise<SnapshotReceiverPort>;
  /** Releases the store; called when the node stops. */
  close?(): Promise<void>;
}

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
  /**
   * Stores a snapshot the local state machine produces, durably, chunk by
   * chunk as `chunks` yields them. A `StateMachineFailure` thrown by the
   * chunk source fails the write as itself (the store is fine, the state
   * machine is not); any other failure is the store's.
   */
  write(
    meta: SnapshotMeta,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Effect.Effect<StoredSnapshot, StorageFailure | StateMachineFailure>;
  /** Starts receiving a snapshot from the leader. */
  receive(meta: SnapshotMeta): Effect.Effect<SnapshotSink, StorageFailure>;
}
/** The {@link SnapshotStore} service key. */
export const SnapshotStore: Context.Service<SnapshotStore, SnapshotStore> = Context.Service<SnapshotStore>(
  "@plank/raft/SnapshotStore",
);

/** The {@link SnapshotStore} service over a Promise port. */
export function snapshotStoreFromPort(port: SnapshotStorePort): SnapshotStore {
  return {
    latest: attempt("snapshot read", () => port.latest()),
    write: (meta, chunks) =>
      Effect.tryPromise({
        try: () => port.write(meta, chunks),
        catch: (e) =>
          e instanceof StorageFailure || e instanceof StateMachineFailure ? e : new StorageFailure("snapshot write", e),
      }),

    receive: (meta) =>
      Effect.map(attempt("snapshot receive", () => port.receive(meta)), (rx) => ({
        meta,
        writeChunk: (offset, bytes) => attempt("snapshot receive", () => rx.writeChunk(offset, bytes)),
        finish: (checksum) =>
          Effect.tryPromise({
            try: () => rx.finish(checksum),
            catch: (e) =>
              e instanceof SnapshotChecksumMismatch || e instanceof StorageFailure
                ? e
                : new StorageFailure("snapshot receive", e),
          }),
        abort: Effect.promise(() => rx.abort().catch(() => {})),
      })),
  };
}

/** A Layer providing {@link SnapshotStore} from a port; closed with the layer's scope. */
export function snapshotStoreLayer(port: SnapshotStorePort): Layer.Layer<SnapshotStore> {
  return Layer.effect(
    SnapshotStore,
    Effect.acquireRelease(Effect.succeed(snapshotStoreFromPort(port)), () => closing(port.close?.bind(port))),
  );
}
