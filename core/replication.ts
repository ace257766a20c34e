/**
 * The leader's side of log replication (paper §5.3, Figure 2): appending to
 * its own log, pipelined sends under etcd-style flow control, heartbeats,
 * acknowledgements and back-off, snapshots for followers that fell behind
 * the compaction point, and the commit rule (§5.4.2).
 *
 * @module
 */

import { header, send, type StepContext } from "./context.ts";
import { leaderRole, setProgress, setRole } from "./leader.ts";
import { appendToLog, entryAt, entrySize, lastIndex, lastIndexOfTerm, sliceLog, termAt } from "./log.ts";
import {
  abortSnapshot,
  becomeProbe,
  becomeReplicate,
  canSend,
  freeInflight,
  type Progress,
  sentAppend,
  sentCommit,
} from "./progress.ts";
import { committedIndex } from "./quorum.ts";
import { recordRound, serveReads } from "./reads.ts";
import { adoptConfig, maybePromoteLearners, onConfigCommitted } from "./reconfig.ts";
import { membershipOf } from "./state.ts";
import { maybeSendTimeoutNow } from "./transfer.ts";
import type { AppendEntries, AppendEntriesResponse, Entry, InstallSnapshotResponse, NodeId } from "./types.ts";

/**
 * Appends entries to the leader's own log and schedules them for persistence.
 * Config entries take effect on append (thesis §4.1).
 */
export function appendLocal(ctx: StepContext, entries: readonly Entry[]): void {
  let bytes = 0;
  for (const e of entries) bytes += entrySize(e);
  ctx.s = { ...ctx.s, log: appendToLog(ctx.s.log, entries) };
  for (const e of entries) ctx.appended.push(e);
  const role = leaderRole(ctx);
  setRole(ctx, { ...role, uncommittedBytes: role.uncommittedBytes + bytes });
  for (const e of entries) if (e.kind === "config") adoptConfig(ctx, e.index, e.config!);
}

/** Sends whatever each follower can take now. */
export function broadcastAppend(ctx: StepContext): void {
  for (const id of leaderRole(ctx).progress.keys()) sendAppend(ctx, id);
}

/**
 * Sends the next batch of entries to `to` if flow control allows: one probe
 * at a time in probe mode, a bounded window of messages and bytes in
 * replicate mode, and a snapshot when the entries it needs are compacted.
 */
export function sendAppend(ctx: StepContext, to: NodeId): void {
  let pr = leaderRole(ctx).progress.get(to);
  if (!pr) return;
  const config = ctx.s.config;
  const last = lastIndex(ctx.s.log);
  // Keep filling the window while there is something to send (pipelining).
  for (;;) {
    if (!canSend(pr, config.maxInflightMessages, config.maxInflightBytes)) break;
    const prevIndex = pr.next - 1;
    const prevTerm = termAt(ctx.s.log, prevIndex);
    if (prevTerm === undefined) {
      startSnapshot(ctx, to, pr);
      return;
    }
    const entries = pr.next <= last ? sliceLog(ctx.s.log, pr.next, last, config.maxMessageBytes) : [];
    // A probe goes out even when empty: it is how we learn where the logs match.
    if (entries.length === 0 && pr.state !== "probe") break;
    let bytes = 0;
    for (const e of entries) bytes += entrySize(e);
    send(ctx, appendTo(ctx, to, prevIndex, prevTerm, entries, ctx.s.commit, leaderRole(ctx).seq));
    // A probe may be refused, so only an append in replicate mode counts as telling the commit.
    if (pr.state === "replicate") pr = sentCommit(pr, ctx.s.commit, prevIndex + entries.length);
    pr = sentAppend(pr, prevIndex + entries.length, bytes);
    if (pr.state !== "replicate") break;
  }
  setProgress(ctx, to, pr);
}

function appendTo(
  ctx: StepContext,
  to: NodeId,
  prevIndex: number,
  prevTerm: number,
  entries: readonly Entry[],
  commit: number,
  seq: number,
): AppendEntries {
  return { ...header(ctx, to), type: "AppendEntries", prevIndex, prevTerm, entries, commit, seq };
}

/** The entries `to` needs are compacted: stream the latest snapshot instead (Figure 13). */
function startSnapshot(ctx: StepContext, to: NodeId, pr: Progress): void {
  const snapshot = ctx.s.snapshot;
  if (!snapshot) return; // Nothing compacted without a snapshot; cannot happen.
  setProgress(ctx, to, {
    ...pr,
    state: "snapshot",
    pendingSnapshot: snapshot.index,
    inflight: [],
    inflightBytes: 0,
    probeSent: false,
  });
  ctx.fx.push({ type: "SendSnapshot", to, term: ctx.s.term, meta: snapshot });
}

/**
 * Sends a heartbeat round: an empty append anchored at each follower's known
 * match, carrying the commit index it can safely adopt and the round number
 * that confirms leadership for pending reads (§6.4).
 */
export function broadcastHeartbeat(ctx: StepContext, quiesce = false): void {
  const role = leaderRole(ctx);
  const seq = role.seq + 1;
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of role.progress) {
    const known = termAt(ctx.s.log, pr.match) === undefined ? 0 : pr.match;
    const prevTerm = termAt(ctx.s.log, known) ?? 0;
    const m = appendTo(ctx, id, known, prevTerm, [], Math.min(ctx.s.commit, known), seq);
    send(ctx, quiesce ? { ...m, quiesce: true } : m);
    // A lost probe must not stall a follower forever: allow another one.
    progress.set(id, sentCommit(pr.state === "probe" ? { ...pr, probeSent: false } : pr, m.commit, known));
  }
  setRole(ctx, { ...role, seq, progress, rounds: recordRound(ctx, role.rounds, seq) });
}

/**
 * Handles a follower's answer to AppendEntries. Only a successful answer
 * moves `match` (Figure 2: matchIndex is what the follower confirmed); a
 * rejection moves `next` back with the follower's hint.
 */
export function handleAppendResponse(ctx: StepContext, m: AppendEntriesResponse): void {
  const role = leaderRole(ctx);
  const before = role.progress.get(m.from);
  if (!before) return;
  let pr: Progress = { ...before, active: true, ackSeq: Math.max(before.ackSeq, m.seq) };
  if (m.seq > before.ackSeq) ctx.fx.push({ type: "RoundAcked", from: m.from, seq: m.seq });
  if (m.success) {
    if (m.index > pr.match) {
      pr = { ...pr, match: m.index, next: Math.max(pr.next, m.index + 1) };
      if (pr.state === "probe") pr = becomeReplicate(pr);
      else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr = becomeReplicate(pr);
      pr = freeInflight(pr, m.index);
    } else if (pr.state === "probe") {
      // A heartbeat ack, or a probe that matched where we already knew.
      pr = m.index === pr.next - 1 ? becomeReplicate(pr) : { ...pr, probeSent: false };
    } else if (pr.state === "replicate" && pr.match < lastIndex(ctx.s.log) && m.seq > before.ackSeq) {
      // A heartbeat round's first ack without progress while entries are outstanding:
      // appends may have been lost, and an idle leader would never resend them. An empty
      // append anchored at `next - 1` is rejected if they were, which moves the follower
      // back to probe. Only a new round's ack (as etcd checks only on heartbeat answers):
      // the answer to an empty append would otherwise send another, one per round trip.
      const prevTerm = termAt(ctx.s.log, pr.next - 1);
      if (prevTerm !== undefined) {
        const commit = Math.min(ctx.s.commit, pr.match);
        send(ctx, appendTo(ctx, m.from, pr.next - 1, prevTerm, [], commit, role.seq));
        pr = sentCommit(pr, commit, pr.match);
      } else {
        // What we sent after `match` was compacted away since (§7): no append can repair
        // the gap, and a full window would never send again. Probe, which sends the snapshot.
        pr = becomeProbe(pr);
      }
    }
    setProgress(ctx, m.from, pr);
    if (pr.state === "probe" && before.state === "replicate") sendAppend(ctx, m.from);
    maybeCommit(ctx);
    // Committing our own removal makes us a follower (§4.2.2): no transfer to finish then.
    if (ctx.s.role.kind === "leader") maybeSendTimeoutNow(ctx, m.from);
  } else {
    // Ignore stale rejections (of appends we already know the answer to).
    const stale = pr.state === "replicate" ? m.index <= pr.match : m.index !== pr.next - 1;
    if (stale) {
      setProgress(ctx, m.from, pr);
    } else {
      // Fast back-off with the follower's hint (thesis §5.3 optimisation):
      // skip the whole conflicting term, or jump to the end of its short log.
      let next = m.conflictIndex;
      if (m.conflictTerm > 0) {
        const ours = lastIndexOfTerm(ctx.s.log, m.conflictTerm);
        if (ours !== undefined) next = ours + 1;
      }
      next = Math.max(pr.match + 1, Math.min(next, m.index));
      setProgress(ctx, m.from, { ...becomeProbe(pr), next });
    }
  }
  if (ctx.s.role.kind === "leader") {
    sendAppend(ctx, m.from);
    sendCommit(ctx, m.from);
    serveReads(ctx);
    maybePromoteLearners(ctx);
  }
}

/**
 * Handles a follower's answer about a snapshot transfer: a chunk
 * acknowledgement shows progress; the final answer moves it back to probing,
 * from after the snapshot if it was installed, else from its old match.
 */
export function handleSnapshotResponse(ctx: StepContext, m: InstallSnapshotResponse): void {
  const pr = leaderRole(ctx).progress.get(m.from);
  if (!pr) return;
  const { from, term, index, offset, done, success } = m;
  ctx.fx.push({ type: "SnapshotAck", from, term, index, offset, done, success });
  if (!m.done) {
    setProgress(ctx, m.from, { ...pr, active: true, probeSent: false });
    return;
  }
  if (pr.state === "snapshot") {
    const next = m.success
      ? becomeProbe({ ...pr, active: true, match: Math.max(pr.match, m.index) })
      : abortSnapshot({ ...pr, active: true });
    setProgress(ctx, m.from, next);
  }
  sendAppend(ctx, m.from);
}

/**
 * The interpreter could not reach `to`: stop pipelining to it and probe
 * again. A snapshot in flight to it is presumed lost (as etcd's
 * ReportSnapshot failure): probing restarts it if it is still needed.
 */
export function handleUnreachable(ctx: StepContext, to: NodeId): void {
  const pr = leaderRole(ctx).progress.get(to);
  if (!pr || pr.state === "probe") return;
  setProgress(ctx, to, pr.state === "snapshot" ? abortSnapshot(pr) : becomeProbe(pr));
}

/**
 * Advances the commit index to the highest index stored on a quorum, but only
 * if that entry is from the current term (paper §5.4.2). The leader counts
 * itself only for entries it has made durable (thesis §10.2.1).
 */
export function maybeCommit(ctx: StepContext): void {
  const s = ctx.s;
  const role = leaderRole(ctx);
  const self = s.config.id;
  const candidate = committedIndex(
    membershipOf(s),
    (id) => id === self ? s.log.stable : (role.progress.get(id)?.match ?? 0),
  );
  if (candidate === Infinity || candidate <= s.commit || termAt(s.log, candidate) !== s.term) return;
  // Only this term's entries were counted on append; earlier terms' were never added.
  let bytes = 0;
  for (let i = s.commit + 1; i <= candidate; i++) {
    const e = entryAt(s.log, i);
    if (e && e.term === s.term) bytes += entrySize(e);
  }
  ctx.s = { ...s, commit: candidate };
  setRole(ctx, { ...role, uncommittedBytes: Math.max(0, role.uncommittedBytes - bytes) });
  ctx.fx.push({ type: "Committed", index: candidate });
  onConfigCommitted(ctx);
  if (ctx.s.role.kind === "leader") maybePromoteLearners(ctx);
  if (ctx.s.role.kind === "leader") announceCommit(ctx);
}

/**
 * Tells followers about a new commit index at once (as etcd's bcastAppend after
 * a commit), so they apply — and answer forwarded proposals and reads — without
 * waiting for the next heartbeat: new entries carry it, else {@link sendCommit}.
 */
function announceCommit(ctx: StepContext): void {
  for (const id of leaderRole(ctx).progress.keys()) {
    sendAppend(ctx, id);
    sendCommit(ctx, id);
  }
}

/**
 * An empty append carrying the commit index to a follower that has not been
 * sent it and will hear no append soon: nothing is in flight to it (a pending
 * ack would bring it here again) and nothing new is left to send. Without it a
 * follower whose ack came after the others' had committed an entry would learn
 * the commit only from the next heartbeat, and so would a proposal forwarded
 * through it (etcd's raft does the same since 3.6, tracking what it sent).
 */
function sendCommit(ctx: StepContext, id: NodeId): void {
  const role = leaderRole(ctx);
  const pr = role.progress.get(id);
  if (pr === undefined || pr.state !== "replicate" || pr.inflight.length > 0) return;
  // A transfer target sent TimeoutNow is campaigning: it would only refuse the append.
  if (role.transfer?.to === id && role.transfer.sent) return;
  const last = pr.next - 1;
  if (Math.min(ctx.s.commit, last) <= pr.sentCommit) return;
  const prevTerm = termAt(ctx.s.log, last);
  if (prevTerm === undefined) return;
  send(ctx, appendTo(ctx, id, last, prevTerm, [], ctx.s.commit, role.seq));
  setProgress(ctx, id, sentCommit(pr, ctx.s.commit, last));
}
