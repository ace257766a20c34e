/**
 * Group commit: the `Persist` effects of one loop iteration merged into a
 * single batch, so the log store sees one `append` and one `sync` however
 * many inputs were stepped (docs/DESIGN.md ordering rule 4).
 *
 * @module
 */

import type { Entry, HardState, Index, RaftEffect } from "../core/types.ts";
import type { PersistBatch } from "./ports/mod.ts";

/** Accumulates Persist effects, in order, into one {@link PersistBatch}. */
export class BatchBuilder {
  private hardState: HardState | undefined = undefined;
  private truncateFrom: Index | undefined = undefined;
  private entries: Entry[] = [];
  private used = false;

  /** Whether anything was added. */
  get isEmpty(): boolean {
    return !this.used;
  }

  /** Adds one Persist: its truncation drops earlier batched entries at or after that index, then its entries follow. */
  add(p: Extract<RaftEffect, { type: "Persist" }>): void {
    this.used = true;
    if (p.hardState !== undefined) this.hardState = p.hardState;
    if (p.truncateFrom !== undefined) {
      const t = p.truncateFrom;
      const first = this.entries.length > 0 ? this.entries[0]!.index : undefined;
      if (first !== undefined && t > first) {
        // Only entries of this batch are cut: nothing durable is affected.
        this.entries = this.entries.filter((e) => e.index < t);
      } else {
        this.entries = [];
        this.truncateFrom = this.truncateFrom === undefined ? t : Math.min(this.truncateFrom, t);
      }
    }
    for (const e of p.entries) this.entries.push(e);
  }

  /** Whether the batch changes the hard state (term or vote), which must be durable before a leader's appends leave. */
  get hasHardState(): boolean {
    return this.hardState !== undefined;
  }

  /** The merged batch. */
  build(): PersistBatch {
    return { hardState: this.hardState, entries: this.entries, truncateFrom: this.truncateFrom };
  }

  /** The last entry of the batch, whose durability the core learns through `Persisted`. */
  get last(): Entry | undefined {
    return this.entries[this.entries.length - 1];
  }
}
