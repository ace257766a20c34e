/**
 * `step(state, input) → { state, effects }`: the whole Raft protocol as one
 * pure function, and `start`, which builds a node's state from what it
 * persisted.
 *
 * @module
 */

import type { RaftConfig } from "./config.ts";
import { electionJitter, newContext, resetElectionTimer, send, setTimer, type StepContext } from "./context.ts";
import { becomeFollower, campaign, handleRequestVote, handleVoteResponse } from "./election.ts";
import { handleAppendEntries, handleInstallSnapshot, restoreSnapshot } from "./follower.ts";
import { onHeartbeatTimer, onQuorumTimer, proposeAsLeader } from "./leader.ts";
import { readIndex, serveReads } from "./reads.ts";
import { afterQuiescingHeartbeat, forgetWake, isQuiescent, quiesceOnPeerUp, wake, wakes } from "./quiesce.ts";
import { proposeConfChange } from "./reconfig.ts";
import { handleAppendResponse, handleSnapshotResponse, handleUnreachable, maybeCommit } from "./replication.ts";
import { abortTransfer, handleTimeoutNow, startTransfer, transferVouched } from "./transfer.ts";
import { compactLog, lastIndex, logFromEntries, markStable, sliceLog, termAt } from "./log.ts";
import { type ConfigPoint, inLease, leaderOf, type RaftState } from "./state.ts";
import type {
  DeferredEffect,
  Entry,
  HardState,
  Index,
  Input,
  Membership,
  Message,
  NodeId,
  Proposal,
  RaftEffect,
  SnapshotMeta,
} from "./types.ts";

/** The new state and the effects the interpreter must carry out, in order. */
export interface StepResult {
  /** The node's state after the input. */
  readonly state: RaftState;
  /** What to do, in order (see docs/DESIGN.md "Ordering rules"). */
  readonly effects: readonly RaftEffect[];
}

/** What a node recovered from storage, plus its bootstrap membership. */
export interface StartOptions {
  /** Membership to use when neither the snapshot nor the log carries one (a new cluster's initial voters, or empty for a node that will be added). */
  readonly membership: Membership;
  /** Persisted hard state (term, vote, commit). */
  readonly hardState?: HardState;
  /** Durable log entries, contiguous (they may begin before the snapshot's index). */
  readonly entries?: readonly Entry[];
  /** The latest durable snapshot. */
  readonly snapshot?: SnapshotMeta;
}

/**
 * Builds a follower's state from what it persisted (paper Figure 2:
 * currentTerm, votedFor, log[]) and arms its election timer. Committed
 * entries beyond the snapshot come back as an Apply effect for replay.
 */
export function start(config: RaftConfig, options: StartOptions): StepResult {
  const snapshot = options.snapshot;
  let entries = options.entries ?? [];
  if (snapshot) {
    // Keep the log only if it still reaches the snapshot's last entry with the same term (§7).
    const covering = entries.find((e) => e.index === snapshot.index);
    const behind = entries.length > 0 && entries[entries.length - 1]!.index < snapshot.index;
    if (behind || (covering !== undefined && covering.term !== snapshot.term)) entries = [];
  }
  let offset = snapshot?.index ?? 0;
  let offsetTerm = snapshot?.term ?? 0;
  if (entries.length > 0 && entries[0]!.index !== offset + 1) {
    if (entries[0]!.index > offset + 1) {
      throw new RangeError(`log starts at ${entries[0]!.index} but the snapshot ends at ${offset}`);
    }
    // The log reaches back behind the snapshot: anchor it at its own first entry.
    offset = entries[0]!.index;
    offsetTerm = entries[0]!.term;
    entries = entries.slice(1);
  }
  const log = logFromEntries(offset, offsetTerm, entries);
  const configs: ConfigPoint[] = [{
    index: snapshot?.index ?? 0,
    membership: snapshot?.membership ?? options.membership,
  }];
  for (const e of entries) {
    if (e.kind === "config" && e.index > configs[0]!.index) configs.push({ index: e.index, membership: e.config! });
  }
  const hard = options.hardState ?? { term: 0, vote: undefined, commit: 0 };
  const base = snapshot?.index ?? 0;
  const state: RaftState = {
    config,
    term: Math.max(hard.term, lastTermOf(entries, offsetTerm)),
    vote: hard.vote,
    commit: Math.min(Math.max(hard.commit, base), lastIndex(log)),
    applied: base,
    log,
    snapshot,
    configs,
    // Sticky from the start (see FollowerRole.sticky): no vote for an election timeout.
    role: { kind: "follower", leader: undefined, sticky: true },
    rng: config.seed | 0 || 1,
    snapshotRequested: base,
  };
  const ctx = newContext(state);
  resetElectionTimer(ctx);
  return finish(ctx, state);
}

function lastTermOf(entries: readonly Entry[], fallback: number): number {
  return entries.length > 0 ? entries[entries.length - 1]!.term : fallback;
}

/** Advances the node by one input. Pure: `state` is not modified. */
export function step(state: RaftState, input: Input): StepResult {
  const ctx = newContext(state);
  if (input.type === "Timeout" || input.type === "ReadIndex") ctx.now = input.now;
  if (isQuiescent(state) && wakes(state, input)) wake(ctx, input);
  forgetWake(ctx, input);
  switch (input.type) {
    case "Receive":
      receive(ctx, input.message);
      break;
    case "Propose":
      propose(ctx, input.proposals);
      break;
    case "ProposeConfChange":
      if (ctx.s.role.kind === "leader") proposeConfChange(ctx, input.requestId, input.change);
      else notLeader(ctx, input.requestId);
      break;
    case "ReadIndex":
      read(ctx, input.requestId);
      break;
    case "TransferLeadership":
      if (ctx.s.role.kind === "leader") startTransfer(ctx, input.requestId, input.to);
      else notLeader(ctx, input.requestId);
      break;
    case "Timeout":
      timeout(ctx, input.timer);
      break;
    case "Persisted":
      ctx.s = { ...ctx.s, log: markStable(ctx.s.log, input.index, input.term) };
      if (ctx.s.role.kind === "leader") {
        maybeCommit(ctx);
        if (ctx.s.role.kind === "leader") serveReads(ctx);
      }
      break;
    case "SnapshotTaken":
      snapshotTaken(ctx, input.meta);
      break;
    case "SnapshotRestored":
      restoreSnapshot(ctx, input.meta);
      break;
    case "Unreachable":
      if (ctx.s.role.kind === "leader") handleUnreachable(ctx, input.to);
      break;
    case "PeerDown":
      break; // Only a quiescent node acts on it: it woke above.
    case "PeerUp":
      quiesceOnPeerUp(ctx, input.peer);
      break;
  }
  return finish(ctx, state);
}

function notLeader(ctx: StepContext, requestId: number): void {
  ctx.fx.push({ type: "Reject", requestId, reason: "not-leader", leader: leaderOf(ctx.s) });
}

function propose(ctx: StepContext, proposals: readonly Proposal[]): void {
  const s = ctx.s;
  if (s.role.kind === "leader") {
    const transferring = s.role.transfer !== undefined;
    proposeAsLeader(ctx, proposals, (requestId, index) => {
      if (index > 0) ctx.fx.push({ type: "Proposed", requestId, index, term: ctx.s.term });
      else {
        const reason = transferring ? "transferring" : "too-large";
        ctx.fx.push({ type: "Reject", requestId, reason, leader: s.config.id });
      }
    });
    return;
  }
  const leader = leaderOf(s);
  if (leader !== undefined && s.config.forwardProposals) {
    send(ctx, { group: s.config.group, from: s.config.id, to: leader, term: s.term, type: "Propose", proposals });
    return;
  }
  for (const p of proposals) notLeader(ctx, p.requestId);
}

function read(ctx: StepContext, requestId: number): void {
  const s = ctx.s;
  if (s.role.kind === "leader") return readIndex(ctx, requestId, s.config.id);
  const leader = leaderOf(s);
  if (leader === undefined) return notLeader(ctx, requestId);
  send(ctx, { group: s.config.group, from: s.config.id, to: leader, term: s.term, type: "ReadIndex", requestId });
}

function timeout(ctx: StepContext, timer: "election" | "heartbeat" | "quorum" | "transfer"): void {
  const isLeader = ctx.s.role.kind === "leader";
  // A quiescent node's timers are left to lapse (core/quiesce.ts): one firing each, ignored.
  if (isQuiescent(ctx.s)) return;
  switch (timer) {
    case "election": {
      // A leader's stale election timer is ignored; everyone else campaigns (§5.2).
      const role = ctx.s.role;
      if (role.kind === "follower" && role.sticky) {
        // One full election timeout without the leader: stop ignoring vote requests,
        // then wait the random rest of a randomized timeout before campaigning ourselves.
        ctx.s = { ...ctx.s, role: { ...role, sticky: false } };
        setTimer(ctx, "election", electionJitter(ctx));
      } else if (!isLeader) campaign(ctx, ctx.s.config.preVote, false);
      break;
    }
    case "heartbeat":
      if (isLeader) onHeartbeatTimer(ctx);
      break;
    case "quorum":
      if (isLeader) onQuorumTimer(ctx);
      break;
    case "transfer":
      if (isLeader) abortTransfer(ctx);
      break;
  }
}

/** Messages for request forwarding are answered whatever their term: they carry no Raft state. */
function isForwarding(m: Message): boolean {
  return m.type === "Propose" || m.type === "ProposeResponse" || m.type === "ReadIndex" ||
    m.type === "ReadIndexResponse";
}

function receive(ctx: StepContext, m: Message): void {
  const s = ctx.s;
  if (m.group !== s.config.group || m.to !== s.config.id || m.from === s.config.id) return;
  // The host's (failure detector, coalesced heartbeats it expands before any group sees them), not Raft's.
  if (m.type === "HostHeartbeat" || m.type === "Heartbeats" || m.type === "HeartbeatResponses") return;
  if (isForwarding(m)) return receiveForwarding(ctx, m);
  // A transfer campaign our leader announced may bypass stickiness (§3.10); a claimed one may not.
  const vouched = m.type === "RequestVote" && transferVouched(s, m);
  // TimeoutNow counts only from the leader we follow in its own term.
  const fromOurLeader = s.role.kind === "follower" && s.role.leader === m.from && m.term === s.term;
  if (m.term > s.term) {
    if (m.type === "RequestVote") {
      // Leader stickiness (thesis §4.2.3): a node that heard from a leader within
      // the election timeout ignores vote requests, so removed or partitioned
      // nodes cannot unseat a healthy leader. The leader we follow asking for votes is no longer
      // leading (it stepped down, e.g. by check-quorum): its campaign cuts no lease short.
      const ownLeader = s.role.kind === "follower" && s.role.leader === m.from;
      if (!vouched && !ownLeader && inLease(s)) return;
      if (!m.preVote) becomeFollower(ctx, m.term, undefined);
    } else if (m.type === "RequestVoteResponse" && m.preVote && m.granted) {
      // Granted pre-votes carry the probed term; nothing to adopt.
    } else {
      const fromLeader = m.type === "AppendEntries" || m.type === "InstallSnapshot" || m.type === "TimeoutNow";
      becomeFollower(ctx, m.term, fromLeader ? m.from : undefined);
    }
  } else if (m.term < s.term) {
    if (m.type === "AppendEntries" || m.type === "InstallSnapshot") {
      // Tell a deposed leader about the newer term so it steps down.
      send(ctx, {
        group: s.config.group,
        from: s.config.id,
        to: m.from,
        term: s.term,
        type: "AppendEntriesResponse",
        success: false,
        index: 0,
        conflictTerm: 0,
        conflictIndex: 0,
        seq: 0,
      });
    } else if (m.type === "RequestVote" && m.preVote) {
      send(ctx, {
        group: s.config.group,
        from: s.config.id,
        to: m.from,
        term: s.term,
        type: "RequestVoteResponse",
        preVote: true,
        granted: false,
      });
    }
    return;
  }
  switch (m.type) {
    case "RequestVote":
      return handleRequestVote(ctx, m, vouched);
    case "RequestVoteResponse":
      return handleVoteResponse(ctx, m);
    case "AppendEntries":
    case "InstallSnapshot":
      if (ctx.s.role.kind === "leader") return; // Election safety makes this impossible.
      followLeader(ctx, m.from);
      if (m.type === "InstallSnapshot") return handleInstallSnapshot(ctx, m);
      handleAppendEntries(ctx, m);
      if (m.quiesce === true && ctx.s.config.quiesce) afterQuiescingHeartbeat(ctx, m);
      return;
    case "AppendEntriesResponse":
      if (ctx.s.role.kind === "leader") handleAppendResponse(ctx, m);
      return;
    case "InstallSnapshotResponse":
      if (ctx.s.role.kind === "leader") handleSnapshotResponse(ctx, m);
      return;
    case "TimeoutNow":
      if (fromOurLeader) handleTimeoutNow(ctx, m);
      return;
  }
}

/** Hearing from the leader of our term: follow it and push the election back. */
function followLeader(ctx: StepContext, leader: NodeId): void {
  const role = ctx.s.role;
  if (role.kind !== "follower") becomeFollower(ctx, ctx.s.term, leader);
  else {
    if (role.leader !== leader || !role.sticky) {
      // An announced transfer is the announcing leader's: it lapses with a new leader.
      const keep = role.leader === leader && role.transferTo !== undefined;
      ctx.s = {
        ...ctx.s,
        role: keep ? { ...role, sticky: true } : { kind: "follower", leader, sticky: true },
      };
      if (role.leader !== leader) ctx.fx.push({ type: "LeaderChanged", leader, term: ctx.s.term });
    }
    resetElectionTimer(ctx);
  }
}

function receiveForwarding(ctx: StepContext, m: Message): void {
  const s = ctx.s;
  const reply = { group: s.config.group, from: s.config.id, to: m.from, term: s.term };
  switch (m.type) {
    case "Propose": {
      const results: { requestId: number; index: Index }[] = [];
      if (s.role.kind === "leader") {
        proposeAsLeader(ctx, m.proposals, (requestId, index) => results.push({ requestId, index: Math.max(0, index) }));
      } else {
        for (const p of m.proposals) results.push({ requestId: p.requestId, index: 0 });
      }
      send(ctx, { ...reply, term: ctx.s.term, type: "ProposeResponse", results });
      return;
    }
    case "ProposeResponse":
      for (const r of m.results) {
        if (r.index > 0) ctx.fx.push({ type: "Proposed", requestId: r.requestId, index: r.index, term: m.term });
        else ctx.fx.push({ type: "Reject", requestId: r.requestId, reason: "not-leader", leader: leaderOf(s) });
      }
      return;
    case "ReadIndex":
      if (s.role.kind === "leader") readIndex(ctx, m.requestId, m.from);
      else send(ctx, { ...reply, type: "ReadIndexResponse", requestId: m.requestId, index: 0 });
      return;
    case "ReadIndexResponse":
      if (m.index > 0) ctx.fx.push({ type: "ReadReady", requestId: m.requestId, index: m.index });
      else ctx.fx.push({ type: "Reject", requestId: m.requestId, reason: "not-leader", leader: leaderOf(s) });
      return;
  }
}

/**
 * The state machine's snapshot covering `meta.index` is durable: remember it
 * and compact the log, keeping `keepAfterSnapshot` entries for slow followers.
 */
function snapshotTaken(ctx: StepContext, meta: SnapshotMeta): void {
  const s = ctx.s;
  if (s.snapshot && meta.index <= s.snapshot.index) return;
  const cut = Math.min(meta.index - s.config.keepAfterSnapshot, s.applied);
  let log = s.log;
  let configs = s.configs;
  if (cut > log.offset) {
    const cutTerm = termAt(log, cut);
    if (cutTerm !== undefined) {
      log = compactLog(log, cut, cutTerm);
      // Keep the configuration in force at the cut and everything after it.
      const firstKept = configs.findLastIndex((c) => c.index <= cut);
      configs = configs.slice(Math.max(0, firstKept));
    }
  }
  ctx.s = { ...s, snapshot: meta, log, configs };
  if (log.offset > s.log.offset) ctx.fx.push({ type: "Compact", index: log.offset });
}

/**
 * Whether `m` may leave before the writes of its step are durable (ordering
 * rule 1, see {@link PersistEffect}): request forwarding always; a leader's
 * appends and TimeoutNow once the write of its term is durable — the term was
 * persisted with, or before, the no-op it appended on election.
 */
function leavesAtOnce(m: Message, termDurable: boolean): boolean {
  if (isForwarding(m)) return true;
  return termDurable && (m.type === "AppendEntries" || m.type === "TimeoutNow");
}

/** Places the step's Persist first (with what must wait for it), then applies newly committed durable entries. */
function finish(ctx: StepContext, before: RaftState): StepResult {
  let s = ctx.s;
  const hardChanged = s.term !== before.term || s.vote !== before.vote;
  const termDurable = s.role.kind === "leader" && s.log.stable >= s.role.noopIndex;
  let fx = ctx.fx;
  const after: DeferredEffect[] = [];
  if (
    fx.some((e) =>
      (e.type === "Send" && !leavesAtOnce(e.message, termDurable)) || (e.type === "SendSnapshot" && !termDurable)
    )
  ) {
    fx = [];
    for (const e of ctx.fx) {
      const deferred = e.type === "Send"
        ? !leavesAtOnce(e.message, termDurable)
        : e.type === "SendSnapshot" && !termDurable;
      if (deferred) after.push(e as DeferredEffect);
      else fx.push(e);
    }
  }
  if (hardChanged || ctx.appended.length > 0 || ctx.truncatedFrom !== undefined || after.length > 0) {
    fx.unshift({
      type: "Persist",
      hardState: hardChanged ? { term: s.term, vote: s.vote, commit: s.commit } : undefined,
      entries: ctx.appended,
      truncateFrom: ctx.truncatedFrom,
      after,
    });
  }
  // Apply only entries that are both committed and durable here (Figure 2: apply in log order).
  const upTo = Math.min(s.commit, s.log.stable);
  if (upTo > s.applied) {
    fx.push({ type: "Apply", entries: sliceLog(s.log, s.applied + 1, upTo) });
    s = { ...s, applied: upTo };
  }
  const every = s.config.snapshotEvery;
  if (every > 0 && s.applied - s.snapshotRequested >= every) {
    fx.push({ type: "TakeSnapshot", index: s.applied });
    s = { ...s, snapshotRequested: s.applied };
  }
  return { state: s, effects: fx };
}
