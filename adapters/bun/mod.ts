/// <reference types="bun" />
/**
 * Bun adapter for plank (storage, transport, clock on Bun APIs).
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
