/**
 * Promise-based versions of the ports, for users (and runtime adapters) that
 * do not write Effect code, and the conversions that turn them into the
 * effect services of `services.ts` as Layers. Their shapes match plank's own
 * `WriteAheadLog`, `SnapshotStore` and `PeerTransport` structurally.
 *
 * @module
 */

import { Effect, Layer } from "effect";
import type { Index, Message, NodeId, SnapshotMeta } from "../core/types.ts";
import { StorageFailure } from "./errors.ts";
import {
  type ChunkResult,
  LogStore,
  type PersistBatch,
  type RecoveredLog,
  SnapshotStore,
  type StoredSnapshot,
  Transport,
} from "./services.ts";

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
  /** Makes it durable and current. */
  finish(): Promise<StoredSnapshot>;
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

/** A transport with Promise `close` (plank's `PeerTransport` fits). */
export interface TransportPort {
  /** Enqueues `message`; false when it cannot be delivered. */
  send(message: Message): boolean;
  /** Installs the receive handler. */
  onMessage(handler: (message: Message) => void): void;
  /** Installs the unreachable-peer handler. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Replaces the address book. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Stops the transport; called when the node stops. */
  close(): Promise<void>;
}

function attempt<A>(operation: string, f: () => Promise<A>): Effect.Effect<A, StorageFailure> {
  return Effect.tryPromise({
    try: f,
    catch: (e) => e instanceof StorageFailure ? e : new StorageFailure(operation, e),
  });
}

/** The {@link LogStore} service over a Promise port. */
export function logStoreFromPort(port: LogStorePort): LogStore {
  return {
    load: attempt("load", () => port.load()),
    append: (batch) => attempt("append", () => port.append(batch)),
    sync: attempt("sync", () => port.sync()),
    compact: (index) => attempt("compact", () => port.compact(index)),
  };
}

/** The {@link SnapshotStore} service over a Promise port. */
export function snapshotStoreFromPort(port: SnapshotStorePort): SnapshotStore {
  return {
    latest: attempt("snapshot read", () => port.latest()),
    write: (meta, bytes) => attempt("snapshot write", () => port.write(meta, [bytes])),
    receive: (meta) =>
      Effect.map(attempt("snapshot receive", () => port.receive(meta)), (rx) => ({
        meta,
        writeChunk: (offset, bytes) => attempt("snapshot receive", () => rx.writeChunk(offset, bytes)),
        finish: attempt("snapshot receive", () => rx.finish()),
        abort: Effect.promise(() => rx.abort().catch(() => {})),
      })),
  };
}

/** The {@link Transport} service over a Promise port. */
export function transportFromPort(port: TransportPort): Transport {
  return {
    send: (message) => port.send(message),
    listen: (handlers) => {
      port.onMessage((m) => handlers.onMessage(m));
      port.onUnreachable((peer) => handlers.onUnreachable(peer));
    },
    setPeers: (peers) => port.setPeers(peers),
  };
}

function closing(close: (() => Promise<void>) | undefined): Effect.Effect<void> {
  return close === undefined ? Effect.void : Effect.promise(() => close().catch(() => {}));
}

/** A Layer providing {@link LogStore} from a port; the port is closed when the layer's scope closes. */
export function logStoreLayer(port: LogStorePort): Layer.Layer<LogStore> {
  return Layer.effect(
    LogStore,
    Effect.acquireRelease(Effect.succeed(logStoreFromPort(port)), () => closing(port.close?.bind(port))),
  );
}

/** A Layer providing {@link SnapshotStore} from a port; closed with the layer's scope. */
export function snapshotStoreLayer(port: SnapshotStorePort): Layer.Layer<SnapshotStore> {
  return Layer.effect(
    SnapshotStore,
    Effect.acquireRelease(Effect.succeed(snapshotStoreFromPort(port)), () => closing(port.close?.bind(port))),
  );
}

/** A Layer providing {@link Transport} from a port; the transport is closed with the layer's scope. */
export function transportLayer(port: TransportPort): Layer.Layer<Transport> {
  return Layer.effect(
    Transport,
    Effect.acquireRelease(Effect.succeed(transportFromPort(port)), () => closing(() => port.close())),
  );
}
