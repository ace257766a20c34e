/**
 * The leader's view of one follower (etcd's Progress): how far it matches,
 * what to send next, and how much is in flight, so replication is pipelined
 * but bounded in messages and bytes.
 *
 * @module
 */

import type { Index } from "./types.ts";

/**
 * Replication mode of one follower:
 * - `probe`: we don't know where its log matches; one append at a time.
 * - `replicate`: it is keeping up; appends are pipelined within the window.
 * - `snapshot`: it needs a snapshot; appends pause until it is installed.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** One append in flight: the last index it carried and its entry bytes. */
export interface Inflight {
  /** Last index carried by the message. */
  readonly last: Index;
  /** Entry bytes carried by the message. */
  readonly bytes: number;
}

/** The leader's record of one peer. */
export interface Progress {
  /** Highest index known replicated (and durable) on the peer. */
  readonly match: Index;
  /** Next index to send. */
  readonly next: Index;
  /** Replication mode. */
  readonly state: ProgressState;
  /** Appends sent and not yet acknowledged (replicate mode), oldest first. */
  readonly inflight: readonly Inflight[];
  /** Sum of `inflight[].bytes`. */
  readonly inflightBytes: number;
  /** In probe mode: an append is outstanding, wait for its answer or the next heartbeat. */
  readonly probeSent: boolean;
  /** Heard from since the last check-quorum round. */
  readonly active: boolean;
  /** Highest heartbeat round the peer has acknowledged (confirms leadership for reads). */
  readonly ackSeq: number;
  /** Snapshot index being sent, in snapshot mode. */
  readonly pendingSnapshot: Index;
  /**
   * Highest commit index sent to the peer that it can adopt (an append's
   * commit, capped at the append's last index, §5.3): one at or below it
   * needs no message of its own.
   */
  readonly sentCommit: Index;
}

/** Progress for a peer whose log position is unknown (probe from the leader's last index). */
export function newProgress(next: Index): Progress {
  return {
    match: 0,
    next,
    state: "probe",
    inflight: [],
    inflightBytes: 0,
    probeSent: false,
    active: true,
    ackSeq: 0,
    pendingSnapshot: 0,
    sentCommit: 0,
  };
}

/** Switches to probe mode, resending from after `match`. */
export function becomeProbe(pr: Progress): Progress {
  const next = pr.state === "snapshot" ? Math.max(pr.match + 1, pr.pendingSnapshot + 1) : pr.match + 1;
  return { ...pr, state: "probe", next, inflight: [], inflightBytes: 0, probeSent: false, pendingSnapshot: 0 };
}

/**
 * A snapshot transfer failed or was lost (as etcd's ReportSnapshot failure):
 * forget it and probe from after `match` — which asks for the snapshot again
 * if the entries the follower needs are still compacted — but only once the
 * follower shows signs of life (the next heartbeat round lifts the pause), so
 * a peer that is down is not sent snapshot after snapshot.
 */
export function abortSnapshot(pr: Progress): Progress {
  return { ...becomeProbe({ ...pr, pendingSnapshot: 0 }), probeSent: true };
}

/** Switches to pipelined replication from after `match`. */
export function becomeReplicate(pr: Progress): Progress {
  return { ...pr, state: "replicate", next: pr.match + 1, inflight: [], inflightBytes: 0, probeSent: false };
}

/** Whether another append may be sent now under the window limits. */
export function canSend(pr: Progress, maxMessages: number, maxBytes: number): boolean {
  switch (pr.state) {
    case "probe":
      return !pr.probeSent;
    case "replicate":
      return pr.inflight.length < maxMessages && pr.inflightBytes < maxBytes;
    case "snapshot":
      return false;
  }
}

/** Records an append of entries up to `last` carrying `bytes`. */
export function sentAppend(pr: Progress, last: Index, bytes: number): Progress {
  if (pr.state === "replicate") {
    return {
      ...pr,
      next: last + 1,
      inflight: [...pr.inflight, { last, bytes }],
      inflightBytes: pr.inflightBytes + bytes,
    };
  }
  return { ...pr, probeSent: true };
}

/** Notes the commit index an append to the peer carried (capped at the append's last index, as the peer caps it). */
export function sentCommit(pr: Progress, commit: Index, last: Index): Progress {
  const adoptable = Math.min(commit, last);
  return adoptable > pr.sentCommit ? { ...pr, sentCommit: adoptable } : pr;
}

/** Frees every in-flight append carrying nothing beyond `index`. */
export function freeInflight(pr: Progress, index: Index): Progress {
  let n = 0;
  let bytes = 0;
  while (n < pr.inflight.length && pr.inflight[n]!.last <= index) bytes += pr.inflight[n++]!.bytes;
  if (n === 0) return pr;
  return { ...pr, inflight: pr.inflight.slice(n), inflightBytes: pr.inflightBytes - bytes };
}
