/**
 * Plain wire messages for transport tests and benchmarks (group 0).
 *
 * @module
 */

import type { AppendEntries, Message, NodeId } from "../../core/types.ts";

/** An AppendEntries from `from` to `to` carrying one command entry at index `seq`; `seq` also orders the stream. */
export function appendEntries(
  from: NodeId,
  to: NodeId,
  seq: number,
  data: Uint8Array = new Uint8Array(0),
): AppendEntries {
  return {
    type: "AppendEntries",
    group: 0,
    from,
    to,
    term: 1,
    prevIndex: seq - 1,
    prevTerm: 1,
    entries: [{ term: 1, index: seq, kind: "command", data, config: undefined }],
    commit: 0,
    seq,
  };
}

/** A TimeoutNow, the smallest message there is. */
export function timeoutNow(from: NodeId, to: NodeId, term = 1): Message {
  return { type: "TimeoutNow", group: 0, from, to, term, candidate: to };
}
