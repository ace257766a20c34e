/**
 * The simulator's trace: a ring buffer of the most recent inputs, effects,
 * node states and simulator events. Records hold references to immutable
 * values and are rendered to text (with core/describe.ts) only when needed —
 * on a failure, or live when a listener asks for every line.
 *
 * @module
 */

import { describeEffect, describeInput, describeState } from "../../core/describe.ts";
import type { RaftState } from "../../core/state.ts";
import type { Input, RaftEffect } from "../../core/types.ts";

/** One trace record, rendered lazily. */
export type TraceRecord =
  | { readonly kind: "input"; readonly time: number; readonly node: string; readonly value: Input }
  | { readonly kind: "effect"; readonly time: number; readonly node: string; readonly value: RaftEffect }
  | { readonly kind: "state"; readonly time: number; readonly node: string; readonly value: RaftState }
  | { readonly kind: "note"; readonly time: number; readonly node: string; readonly value: string };

/** Renders one record as `   1234ms n2 <text>`. */
export function renderRecord(record: TraceRecord): string {
  let text: string;
  switch (record.kind) {
    case "input":
      text = `< ${describeInput(record.value)}`;
      break;
    case "effect":
      text = `> ${describeEffect(record.value)}`;
      break;
    case "state":
      text = `= ${describeState(record.value)}`;
      break;
    case "note":
      text = `* ${record.value}`;
      break;
  }
  return `${String(record.time).padStart(8)}ms ${record.node.padEnd(3)} ${text}`;
}

/** Keeps the last `capacity` records; optionally streams every rendered line to `listener`. */
export class Trace {
  readonly #ring: (TraceRecord | undefined)[];
  #next = 0;
  readonly #listener: ((line: string) => void) | undefined;

  /** A trace keeping `capacity` records. */
  constructor(capacity: number, listener?: (line: string) => void) {
    this.#ring = new Array(Math.max(1, capacity));
    this.#listener = listener;
  }

  /** Appends a record. */
  add(record: TraceRecord): void {
    this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#listener) this.#listener(renderRecord(record));
  }

  /** The kept records, oldest first, rendered. */
  lines(): string[] {
    const out: string[] = [];
    const n = this.#ring.length;
    for (let i = 0; i < n; i++) {
      const r = this.#ring[(this.#next + i) % n];
      if (r) out.push(renderRecord(r));
    }
    return out;
  }
}
