/**
 * An in-memory log store for tests and examples. It keeps what was synced
 * apart from what was only appended, so a test can "crash" it (losing
 * unsynced writes), count `sync` calls (group commit) and slow `sync` down
 * (ordering rule 1).
 *
 * @module
 */

import type { Entry, HardState, Index } from "../../core/types.ts";
import type { LogStorePort, PersistBatch, RecoveredLog } from "../../effects/ports/mod.ts";

/** Options of {@link MemoryLogStore}. */
export interface MemoryLogStoreOptions {
  /** Awaited inside every `sync` before the data becomes durable (e.g. a delay, to test ordering). */
  readonly beforeSync?: () => Promise<void>;
}

/** A log store in memory. Reuse one instance across node restarts to model a disk that survives them. */
export class MemoryLogStore implements LogStorePort {
  private durableHard: HardState = { term: 0, vote: undefined, commit: 0 };
  private durableEntries: Entry[] = [];
  private unsynced: PersistBatch[] = [];
  private compacted: Index = 0;
  /** Number of `append` calls so far. */
  appendCalls = 0;
  /** Number of `sync` calls so far. */
  syncCalls = 0;

  /**
   * An empty store.
   * @param options hooks for tests
   */
  constructor(private readonly options: MemoryLogStoreOptions = {}) {}

  /** The hard state as of the last completed `sync`. */
  get durableHardState(): HardState {
    return this.durableHard;
  }

  /** Index of the last durable entry (the compaction point when none). */
  get durableLastIndex(): Index {
    const n = this.durableEntries.length;
    return n > 0 ? this.durableEntries[n - 1]!.index : this.compacted;
  }

  /** Durable entries (after the compaction point). */
  get entries(): readonly Entry[] {
    return this.durableEntries;
  }

  /** Returns what was synced. */
  load(): Promise<RecoveredLog> {
    return Promise.resolve({ hardState: this.durableHard, entries: this.durableEntries.slice() });
  }

  /** Queues a batch; it becomes durable at the next `sync`. */
  append(batch: PersistBatch): Promise<void> {
    this.appendCalls++;
    this.unsynced.push(batch);
    return Promise.resolve();
  }

  /** Makes every earlier append durable. */
  async sync(): Promise<void> {
    this.syncCalls++;
    const batches = this.unsynced;
    this.unsynced = [];
    if (this.options.beforeSync) await this.options.beforeSync();
    for (const b of batches) this.applyBatch(b);
  }

  /** Drops entries up to `index`. */
  compact(index: Index): Promise<void> {
    if (index > this.compacted) {
      this.durableEntries = this.durableEntries.filter((e) => e.index > index);
      this.compacted = index;
    }
    return Promise.resolve();
  }

  /** Loses every write not yet synced, as a crash would. */
  crash(): void {
    this.unsynced = [];
  }

  /** Makes one appended batch durable. */
  private applyBatch(b: PersistBatch): void {
    if (b.hardState !== undefined) this.durableHard = b.hardState;
    if (b.truncateFrom !== undefined) {
      if (b.truncateFrom <= this.compacted) throw new RangeError(`truncate from ${b.truncateFrom} into compacted log`);
      this.durableEntries = this.durableEntries.filter((e) => e.index < b.truncateFrom!);
    }
    let expected = this.durableLastIndex + 1;
    for (const e of b.entries) {
      if (e.index !== expected) {
        throw new RangeError(`entry ${e.index} does not continue the log (expected ${expected})`);
      }
      this.durableEntries.push(e);
      expected++;
    }
  }
}
