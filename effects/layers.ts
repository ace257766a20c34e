/**
 * Conversions from the Promise ports of `ports.ts` to the effect services of
 * `services.ts`, as service values and as Layers that close the port when
 * their scope closes.
 *
 * @module
 */

import { Effect, Layer } from "effect";
import { SnapshotChecksumMismatch, StorageFailure } from "./errors.ts";
import type { LogStorePort, SnapshotStorePort, TransportPort } from "./ports.ts";
import { LogStore, SnapshotStore, Transport } from "./services.ts";

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
