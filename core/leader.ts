/**
 * The leader's side of replication: appending, pipelined sends with flow
 * control, handling acknowledgements, advancing the commit index, heartbeats,
 * check-quorum, ReadIndex and leadership transfer.
 *
 * @module
 */

import { header, send, setTimer, type StepContext } from "./context.ts";
import { appendToLog, entryAt, entrySize, lastIndex, lastIndexOfTerm, sliceLog, termAt } from "./log.ts";
import {
  allMembers,
  applyConfChange,
  committedIndex,
  hasQuorum,
  isJoint,
  isVoter,
  leaveJoint,
  promotable,
} from "./membership.ts";
import {
  becomeProbe,
  becomeReplicate,
  canSend,
  freeInflight,
  newProgress,
  type Progress,
  sentAppend,
} from "./progress.ts";
import { type LeaderRole, type LeaseRound, membershipOf, type PendingRead } from "./state.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  ConfChange,
  Entry,
  Index,
  InstallSnapshotResponse,
  Membership,
  NodeId,
  Proposal,
} from "./types.ts";

/** The leader role of the current state (callers check the role first). */
function leaderRole(ctx: StepContext): LeaderRole {
  const role = ctx.s.role;
  if (role.kind !== "leader") throw new Error("not leader");
  return role;
}

function setRole(ctx: StepContext, role: LeaderRole): void {
  ctx.s = { ...ctx.s, role };
}

function setProgress(ctx: StepContext, id: NodeId, pr: Progress): void {
  const role = leaderRole(ctx);
  setRole(ctx, { ...role, progress: new Map(role.progress).set(id, pr) });
}

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

/** Records a new configuration and, on the leader, starts/stops tracking members. */
export function adoptConfig(ctx: StepContext, index: Index, membership: Membership): void {
  ctx.s = { ...ctx.s, configs: [...ctx.s.configs, { index, membership }] };
  ctx.fx.push({ type: "MembershipChanged", membership, index });
  const role = ctx.s.role;
  if (role.kind !== "leader") return;
  const members = new Set(allMembers(membership));
  const progress = new Map(role.progress);
  for (const id of members) {
    if (id !== ctx.s.config.id && !progress.has(id)) progress.set(id, newProgress(lastIndex(ctx.s.log) + 1));
  }
  for (const id of progress.keys()) if (!members.has(id)) progress.delete(id);
  setRole(ctx, { ...role, progress });
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
  const s = ctx.s;
  const role = leaderRole(ctx);
  let pr = role.progress.get(to);
  if (!pr) return;
  const config = s.config;
  const last = lastIndex(s.log);
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
    const message: AppendEntries = {
      ...header(ctx, to),
      type: "AppendEntries",
      prevIndex,
      prevTerm,
      entries,
      commit: ctx.s.commit,
      seq: leaderRole(ctx).seq,
    };
    send(ctx, message);
    pr = sentAppend(pr, prevIndex + entries.length, bytes);
    if (pr.state !== "replicate") break;
  }
  setProgress(ctx, to, pr);
}

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
export function broadcastHeartbeat(ctx: StepContext): void {
  const role = leaderRole(ctx);
  const seq = role.seq + 1;
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of role.progress) {
    const known = termAt(ctx.s.log, pr.match) === undefined ? 0 : pr.match;
    const message: AppendEntries = {
      ...header(ctx, id),
      type: "AppendEntries",
      prevIndex: known,
      prevTerm: termAt(ctx.s.log, known) ?? 0,
      entries: [],
      commit: Math.min(ctx.s.commit, known),
      seq,
    };
    send(ctx, message);
    // A lost probe must not stall a follower forever: allow another one.
    progress.set(id, pr.state === "probe" ? { ...pr, probeSent: false } : pr);
  }
  setRole(ctx, { ...role, seq, progress, rounds: recordRound(ctx, role.rounds, seq) });
}

/** Remembers when round `seq` was sent (bounded), if the input carried a clock reading. */
function recordRound(ctx: StepContext, rounds: readonly LeaseRound[], seq: number): readonly LeaseRound[] {
  if (!ctx.s.config.leaseReads || ctx.now === undefined) return rounds;
  const kept = rounds.length >= 32 ? rounds.slice(rounds.length - 31) : rounds;
  return [...kept, { seq, at: ctx.now }];
}

/** The highest heartbeat round acknowledged by a quorum (the leader acks every round it sends). */
function confirmedRound(ctx: StepContext): number {
  const role = leaderRole(ctx);
  const self = ctx.s.config.id;
  return committedIndex(membershipOf(ctx.s), (id) => id === self ? role.seq : (role.progress.get(id)?.ackSeq ?? 0));
}

/**
 * Whether this leader holds a lease (thesis §6.4.1): a quorum acknowledged a
 * round sent less than an election timeout ago (shortened by the clock-drift
 * bound), and those followers ignore vote requests for an election timeout
 * after hearing from us (leader stickiness), so no other leader can exist yet.
 * A transfer voids the lease: TimeoutNow lets the target bypass stickiness.
 */
function leaseHolds(ctx: StepContext): boolean {
  const role = leaderRole(ctx);
  const config = ctx.s.config;
  if (!config.leaseReads || ctx.now === undefined || role.transfer !== undefined || role.leaseRevoked) return false;
  if (ctx.s.commit < role.noopIndex) return false;
  const confirmed = confirmedRound(ctx);
  let at: number | undefined;
  for (let i = role.rounds.length - 1; i >= 0; i--) {
    if (role.rounds[i]!.seq <= confirmed) {
      at = role.rounds[i]!.at;
      break;
    }
  }
  return at !== undefined && ctx.now - at < config.electionTimeoutMs * (1 - config.clockDrift);
}

/** Leader heartbeat timer fired. */
export function onHeartbeatTimer(ctx: StepContext): void {
  broadcastHeartbeat(ctx);
  setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);
}

/**
 * Check-quorum (thesis §6.2): if no quorum was heard from during the last
 * election timeout, this leader may be partitioned away; step down so that
 * clients go elsewhere and it stops serving reads.
 * Returns false when the leader must step down.
 */
export function checkQuorum(ctx: StepContext): boolean {
  const role = leaderRole(ctx);
  const active = new Set<NodeId>([ctx.s.config.id]);
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of role.progress) {
    if (pr.active) active.add(id);
    let next: Progress = { ...pr, active: false };
    // A snapshot transfer with no progress for a whole round was lost (a dropped
    // message, a follower that crashed while installing): probe and resend it,
    // or that follower stays behind until the next leader. `probeSent` marks
    // "no progress since the last round" in snapshot state.
    if (pr.state === "snapshot") next = pr.probeSent ? becomeProbe(next) : { ...next, probeSent: true };
    progress.set(id, next);
  }
  setRole(ctx, { ...role, progress });
  setTimer(ctx, "quorum", ctx.s.config.electionTimeoutMs);
  return hasQuorum(membershipOf(ctx.s), active);
}

/** Handles a follower's answer to AppendEntries. */
export function handleAppendResponse(ctx: StepContext, m: AppendEntriesResponse): void {
  const role = leaderRole(ctx);
  const before = role.progress.get(m.from);
  if (!before) return;
  let pr: Progress = { ...before, active: true, ackSeq: Math.max(before.ackSeq, m.seq) };
  if (m.success) {
    if (m.index > pr.match) {
      pr = { ...pr, match: m.index, next: Math.max(pr.next, m.index + 1) };
      if (pr.state === "probe") pr = becomeReplicate(pr);
      else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr = becomeReplicate(pr);
      pr = freeInflight(pr, m.index);
    } else if (pr.state === "probe") {
      // A heartbeat ack, or a probe that matched where we already knew.
      pr = m.index === pr.next - 1 ? becomeReplicate(pr) : { ...pr, probeSent: false };
    } else if (pr.state === "replicate" && pr.match < lastIndex(ctx.s.log)) {
      // An ack without progress while entries are outstanding: appends may have been
      // lost, and an idle leader would never resend them. An empty append anchored at
      // `next - 1` is rejected if they were, which moves the follower back to probe.
      const prevTerm = termAt(ctx.s.log, pr.next - 1);
      if (prevTerm !== undefined) {
        const probe: AppendEntries = {
          ...header(ctx, m.from),
          type: "AppendEntries",
          prevIndex: pr.next - 1,
          prevTerm,
          entries: [],
          commit: Math.min(ctx.s.commit, pr.match),
          seq: role.seq,
        };
        send(ctx, probe);
      }
    }
    setProgress(ctx, m.from, pr);
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
    serveReads(ctx);
    maybePromoteLearners(ctx);
  }
}

/** Handles a follower's answer to a snapshot transfer. */
export function handleSnapshotResponse(ctx: StepContext, m: InstallSnapshotResponse): void {
  const role = leaderRole(ctx);
  const pr = role.progress.get(m.from);
  if (!pr) return;
  if (!m.done) {
    setProgress(ctx, m.from, { ...pr, active: true, probeSent: false });
    return;
  }
  if (m.success && pr.state === "snapshot") {
    setProgress(ctx, m.from, becomeProbe({ ...pr, active: true, match: Math.max(pr.match, m.index) }));
  } else if (pr.state === "snapshot") {
    setProgress(ctx, m.from, becomeProbe({ ...pr, active: true }));
  }
  sendAppend(ctx, m.from);
}

/** The interpreter could not reach `to`: stop pipelining to it and probe again. */
export function handleUnreachable(ctx: StepContext, to: NodeId): void {
  const pr = leaderRole(ctx).progress.get(to);
  // A snapshot in flight to an unreachable peer is presumed lost: probe again, which
  // restarts the snapshot if it is still needed (as etcd's ReportSnapshot failure).
  if (pr && pr.state !== "probe") setProgress(ctx, to, becomeProbe(pr));
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
  const membership = membershipOf(s);
  const candidate = committedIndex(
    membership,
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
 * waiting for the next heartbeat. A follower that gets new entries now learns it
 * from them; one that has everything gets an empty append.
 */
function announceCommit(ctx: StepContext): void {
  for (const [id, before] of leaderRole(ctx).progress) {
    const sentBefore = ctx.fx.length;
    sendAppend(ctx, id);
    if (ctx.fx.length !== sentBefore) continue;
    const pr = leaderRole(ctx).progress.get(id) ?? before;
    // Only an idle follower needs it: one with appends in flight learns the commit from
    // the next append, and announcing on every ack under load would double the traffic.
    if (pr.state !== "replicate" || pr.inflight.length > 0) continue;
    const prevTerm = termAt(ctx.s.log, pr.next - 1);
    if (prevTerm === undefined) continue;
    const message: AppendEntries = {
      ...header(ctx, id),
      type: "AppendEntries",
      prevIndex: pr.next - 1,
      prevTerm,
      entries: [],
      commit: ctx.s.commit,
      seq: leaderRole(ctx).seq,
    };
    send(ctx, message);
  }
}

/**
 * How far (in entries) a learner marked for promotion may trail the commit
 * index and still count as caught up, while it is being replicated to in
 * pipelined mode: under a steady write load it is always a window behind.
 */
const PROMOTE_MAX_LAG = 32;

/**
 * Promotes a learner marked for promotion once it has caught up (thesis
 * §4.2.1: a new server becomes a voter only when adding it cannot stall
 * commits). One change at a time (§4.1): nothing happens while a
 * configuration is uncommitted or joint, nor during a transfer (which
 * pauses proposals).
 */
function maybePromoteLearners(ctx: StepContext): void {
  const role = leaderRole(ctx);
  const membership = membershipOf(ctx.s);
  if (role.transfer || isJoint(membership) || hasUncommittedConfig(ctx)) return;
  const commit = ctx.s.commit;
  for (const id of promotable(membership)) {
    const pr = role.progress.get(id);
    if (!pr) continue;
    const caughtUp = pr.match >= commit || (pr.state === "replicate" && pr.match + PROMOTE_MAX_LAG >= commit);
    if (!caughtUp) continue;
    const next = applyConfChange(membership, { type: "promote", node: id });
    if (typeof next === "string") continue;
    appendLocal(ctx, [configEntry(ctx, next)]);
    broadcastAppend(ctx);
    return;
  }
}

/**
 * Membership bookkeeping once the latest configuration commits: leave a joint
 * configuration automatically (§4.3), and step down if this leader is no
 * longer a voter (§4.2.2).
 */
function onConfigCommitted(ctx: StepContext): void {
  const latest = ctx.s.configs[ctx.s.configs.length - 1]!;
  if (latest.index > ctx.s.commit || latest.index === 0) return;
  if (isJoint(latest.membership)) {
    if (!hasUncommittedConfig(ctx)) {
      appendLocal(ctx, [configEntry(ctx, leaveJoint(latest.membership))]);
      broadcastAppend(ctx);
    }
    return;
  }
  if (!isVoter(latest.membership, ctx.s.config.id)) {
    // Tell followers about the commit first, so the new configuration can elect promptly.
    broadcastHeartbeat(ctx);
    ctx.fx.push({ type: "RoleChanged", role: "follower", term: ctx.s.term });
    ctx.fx.push({ type: "LeaderChanged", leader: undefined, term: ctx.s.term });
    const role = leaderRole(ctx);
    rejectPendingReads(ctx, role.reads);
    // A transfer in progress ends with the leadership it was handing over (§3.10).
    if (role.transfer) {
      ctx.fx.push({ type: "TransferDone", requestId: role.transfer.requestId, ok: role.transfer.sent });
    }
    ctx.s = { ...ctx.s, role: { kind: "follower", leader: undefined, recent: false } };
  }
}

function hasUncommittedConfig(ctx: StepContext): boolean {
  return ctx.s.configs[ctx.s.configs.length - 1]!.index > ctx.s.commit;
}

function configEntry(ctx: StepContext, membership: Membership): Entry {
  return {
    term: ctx.s.term,
    index: lastIndex(ctx.s.log) + 1,
    kind: "config",
    data: new Uint8Array(0),
    config: membership,
  };
}

/** Appends client proposals as one batch and replicates them. */
export function proposeAsLeader(
  ctx: StepContext,
  proposals: readonly Proposal[],
  reply: (requestId: number, index: Index) => void,
): void {
  const role = leaderRole(ctx);
  if (role.transfer) {
    for (const p of proposals) reply(p.requestId, 0);
    return;
  }
  const entries: Entry[] = [];
  let index = lastIndex(ctx.s.log);
  let bytes = role.uncommittedBytes;
  for (const p of proposals) {
    const entry: Entry = { term: ctx.s.term, index: index + 1, kind: "command", data: p.data, config: undefined };
    const size = entrySize(entry);
    // Bound memory held by uncommitted entries (always admit one, so huge entries can't wedge).
    if (bytes > 0 && bytes + size > ctx.s.config.maxUncommittedBytes) {
      reply(p.requestId, -1);
      continue;
    }
    bytes += size;
    index++;
    entries.push(entry);
    reply(p.requestId, entry.index);
  }
  if (entries.length === 0) return;
  appendLocal(ctx, entries);
  broadcastAppend(ctx);
}

/** Proposes a membership change (one at a time, thesis §4.1). */
export function proposeConfChange(ctx: StepContext, requestId: number, change: ConfChange): void {
  const role = leaderRole(ctx);
  const reject = (reason: "conf-change-pending" | "unsafe-conf-change" | "transferring") =>
    ctx.fx.push({ type: "Reject", requestId, reason, leader: ctx.s.config.id });
  if (role.transfer) return void reject("transferring");
  if (hasUncommittedConfig(ctx)) return void reject("conf-change-pending");
  const next = applyConfChange(membershipOf(ctx.s), change);
  if (next === "joint-pending") return void reject("conf-change-pending");
  if (next === "unsafe") return void reject("unsafe-conf-change");
  // Removing the leader of a two-voter cluster can wedge it (DESIGN.md): should the
  // leader crash before the change commits, it no longer campaigns (not a voter in
  // its latest configuration, §4.1) and the survivor, lacking that entry, cannot win
  // its vote. Transfer leadership first, then remove the old leader.
  if (membershipOf(ctx.s).voters.length === 2 && !next.voters.includes(ctx.s.config.id)) {
    return void reject("unsafe-conf-change");
  }
  const entry = configEntry(ctx, next);
  appendLocal(ctx, [entry]);
  ctx.fx.push({ type: "Proposed", requestId, index: entry.index, term: entry.term });
  broadcastAppend(ctx);
}

/**
 * Registers a linearizable read (§6.4): its read index is the commit index
 * (or this term's no-op, if not yet committed), served once a quorum has
 * acknowledged a heartbeat round sent after the read arrived.
 */
export function readIndex(ctx: StepContext, requestId: number, origin: NodeId): void {
  if (origin === ctx.s.config.id && leaseHolds(ctx)) {
    ctx.fx.push({ type: "ReadReady", requestId, index: ctx.s.commit });
    return;
  }
  const role = leaderRole(ctx);
  const read: PendingRead = {
    requestId,
    origin,
    index: Math.max(ctx.s.commit, role.noopIndex),
    seq: role.seq + 1,
  };
  setRole(ctx, { ...role, reads: [...role.reads, read] });
  if (role.progress.size === 0) {
    setRole(ctx, { ...leaderRole(ctx), seq: read.seq });
  } else {
    broadcastHeartbeat(ctx);
  }
  serveReads(ctx);
}

/** Answers every pending read whose round a quorum acknowledged and whose index is committed. */
export function serveReads(ctx: StepContext): void {
  const role = leaderRole(ctx);
  if (role.reads.length === 0) return;
  const confirmed = confirmedRound(ctx);
  let served = 0;
  for (const read of role.reads) {
    if (read.seq > confirmed || read.index > ctx.s.commit) break;
    answerRead(ctx, read, read.index);
    served++;
  }
  if (served > 0) setRole(ctx, { ...leaderRole(ctx), reads: role.reads.slice(served) });
}

function answerRead(ctx: StepContext, read: PendingRead, index: Index): void {
  if (read.origin === ctx.s.config.id) {
    if (index > 0) ctx.fx.push({ type: "ReadReady", requestId: read.requestId, index });
    else ctx.fx.push({ type: "Reject", requestId: read.requestId, reason: "not-leader", leader: undefined });
  } else {
    send(ctx, { ...header(ctx, read.origin), type: "ReadIndexResponse", requestId: read.requestId, index });
  }
}

/** Fails reads that can no longer be confirmed (leadership lost). */
export function rejectPendingReads(ctx: StepContext, reads: readonly PendingRead[]): void {
  for (const read of reads) answerRead(ctx, read, 0);
}

/**
 * Starts a leadership transfer (§3.10): bring the target up to date, then
 * send it TimeoutNow. Proposals are refused meanwhile; a timer aborts it.
 */
export function startTransfer(ctx: StepContext, requestId: number, to: NodeId): void {
  const role = leaderRole(ctx);
  if (to === ctx.s.config.id) {
    ctx.fx.push({ type: "TransferDone", requestId, ok: true });
    return;
  }
  if (!isVoter(membershipOf(ctx.s), to) || !role.progress.has(to) || role.transfer) {
    ctx.fx.push({ type: "TransferDone", requestId, ok: false });
    return;
  }
  setRole(ctx, { ...role, transfer: { to, requestId, sent: false } });
  setTimer(ctx, "transfer", ctx.s.config.electionTimeoutMs);
  maybeSendTimeoutNow(ctx, to);
  if (!leaderRole(ctx).transfer?.sent) sendAppend(ctx, to);
}

function maybeSendTimeoutNow(ctx: StepContext, from: NodeId): void {
  const role = leaderRole(ctx);
  const transfer = role.transfer;
  if (!transfer || transfer.to !== from || transfer.sent) return;
  if (role.progress.get(from)?.match !== lastIndex(ctx.s.log)) return;
  send(ctx, { ...header(ctx, from), type: "TimeoutNow" });
  setRole(ctx, { ...role, transfer: { ...transfer, sent: true }, leaseRevoked: true });
}

/** The transfer timer fired: give up and accept proposals again. */
export function abortTransfer(ctx: StepContext): void {
  const role = leaderRole(ctx);
  if (!role.transfer) return;
  ctx.fx.push({ type: "TransferDone", requestId: role.transfer.requestId, ok: false });
  setRole(ctx, { ...role, transfer: undefined });
}
