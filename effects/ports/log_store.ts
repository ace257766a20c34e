/**
 * The log-store port: where a node's Raft log and hard state are kept.
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
import type { Entry, HardState, Index } from "../../core/types.ts";
import type { StorageFailure } from "../errors.ts";
import { attempt, closing } from "./attempt.ts";

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

/** The {@link LogStore} service over a Promise port. */
export function logStoreFromPort(port: LogStorePort): LogStore {
  return {
    load: attempt("load", () => port.load()),
    append: (batch) => attempt("append", () => port.append(batch)),
    sync: attempt("sync", () => port.sync()),
    compact: (index) => attempt("compact", () => port.compact(index)),
  };
}

/** A Layer providing {@link LogStore} from a port; the port is closed when the layer's scope closes. */
export function logStoreLayer(port: LogStorePort): Layer.Layer<LogStore> {
  return Layer.effect(
    LogStore,
    Effect.acquireRelease(Effect.succeed(logStoreFromPort(port)), () => closing(port.close?.bind(port))),
  );
}
