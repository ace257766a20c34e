/**
 * The simulator's replicated state machine: a small key-value store with
 * put, compare-and-set and a no-op, deduplicating commands by operation id
 * (client sessions, thesis §6.3) so that a proposal the network duplicated
 * takes effect once. It serializes to bytes for snapshots.
 *
 * @module
 */

import type { Entry, Index, SnapshotMeta } from "../../core/types.ts";
import type { KvOutput } from "../linearizability.ts";

/** A command carried in a log entry. `opId` is unique per client operation. */
export type KvCommand =
  | { readonly opId: number; readonly op: "put"; readonly key: string; readonly value: string }
  | {
    readonly opId: number;
    readonly op: "cas";
    readonly key: string;
    readonly prev: string | undefined;
    readonly value: string;
  }
  | { readonly opId: number; readonly op: "nop" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as entry data. */
export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** Decodes entry data written by {@link encodeCommand}. */
export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

/** One node's key-value store, fed committed entries in log order. */
export class KvMachine {
  /** Current values. */
  readonly values: Map<string, string>;
  /** Result of every operation applied so far, by operation id (dedup and late answers). */
  readonly results: Map<number, KvOutput>;
  /** Index of the last entry applied (or of the restored snapshot). */
  applied: Index;

  /** An empty store, or one restored from snapshot contents. */
  constructor(
    values: Map<string, string> = new Map(),
    results: Map<number, KvOutput> = new Map(),
    applied: Index = 0,
  ) {
    this.values = values;
    this.results = results;
    this.applied = applied;
  }

  /**
   * Applies `entry` (the next in log order). Returns the command's id and
   * result for command entries, undefined for no-op and config entries.
   */
  apply(entry: Entry): { readonly opId: number; readonly output: KvOutput; readonly first: boolean } | undefined {
    this.applied = entry.index;
    if (entry.kind !== "command") return undefined;
    const command = decodeCommand(entry.data);
    const seen = this.results.get(command.opId);
    if (seen !== undefined) return { opId: command.opId, output: seen, first: false };
    let output: KvOutput;
    switch (command.op) {
      case "put":
        this.values.set(command.key, command.value);
        output = {};
        break;
      case "cas": {
        const ok = this.values.get(command.key) === command.prev;
        if (ok) this.values.set(command.key, command.value);
        output = { ok };
        break;
      }
      case "nop":
        output = {};
        break;
    }
    this.results.set(command.opId, output);
    return { opId: command.opId, output, first: true };
  }

  /** The snapshot contents: values and the dedup table. */
  serialize(): Uint8Array {
    return encoder.encode(JSON.stringify({ values: [...this.values], results: [...this.results] }));
  }

  /** Rebuilds a store from {@link serialize}'s bytes, as of `index`. */
  static restore(data: Uint8Array, index: Index): KvMachine {
    const parsed = JSON.parse(decoder.decode(data)) as {
      values: [string, string][];
      results: [number, KvOutput][];
    };
    return new KvMachine(new Map(parsed.values), new Map(parsed.results), index);
  }
}

/** A snapshot as the simulator's storage holds it. */
export interface StoredSnapshot {
  /** What it covers. */
  readonly meta: SnapshotMeta;
  /** The serialized state machine. */
  readonly data: Uint8Array;
}
