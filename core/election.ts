/**
 * Elections: role changes, pre-vote (thesis §9.6), voting (paper §5.2,
 * §5.4.1) and becoming leader.
 *
 * @module
 */

import { header, resetElectionTimer, send, setTimer, type StepContext } from "./context.ts";
import { isUpToDate, lastIndex, lastTerm } from "./log.ts";
import { allMembers, isVoter } from "./membership.ts";
import { newProgress, type Progress } from "./progress.ts";
import { voteResult } from "./quorum.ts";
import { rejectPendingReads } from "./reads.ts";
import { appendLocal, broadcastAppend } from "./replication.ts";
import { inLease, leaderOf, membershipOf, type RaftState } from "./state.ts";
import type { NodeId, RequestVote, RequestVoteResponse, Term } from "./types.ts";

/**
 * Becomes a follower in `term` (adopting it if higher, which clears the vote;
 * paper §5.1), following `leader` if known.
 */
export function becomeFollower(ctx: StepContext, term: Term, leader: NodeId | undefined): void {
  const before = ctx.s;
  if (before.role.kind === "leader") {
    rejectPendingReads(ctx, before.role.reads);
    const transfer = before.role.transfer;
    if (transfer) ctx.fx.push({ type: "TransferDone", requestId: transfer.requestId, ok: transfer.sent });
  }
  ctx.s = {
    ...before,
    term,
    vote: term > before.term ? undefined : before.vote,
    role: { kind: "follower", leader, sticky: leader !== undefined },
  };
  if (before.role.kind !== "follower") ctx.fx.push({ type: "RoleChanged", role: "follower", term });
  if (leaderOf(before) !== leader) ctx.fx.push({ type: "LeaderChanged", leader, term });
  resetElectionTimer(ctx);
}

/**
 * Starts a pre-vote (§9.6) or a real election (§5.2). Only voters campaign;
 * a removed or not-yet-added node never disrupts the cluster.
 */
export function campaign(ctx: StepContext, preVote: boolean, transfer: boolean): void {
  const s = ctx.s;
  const membership = membershipOf(s);
  if (!mayCampaign(s)) {
    // No leader heard within an election timeout: forget it, or leader stickiness
    // (§4.2.3) would make this node ignore every vote request forever.
    if (leaderOf(s) !== undefined) becomeFollower(ctx, s.term, undefined);
    else resetElectionTimer(ctx);
    return;
  }
  const self = s.config.id;
  const hadLeader = leaderOf(s);
  if (preVote) {
    ctx.s = { ...s, role: { kind: "precandidate", votes: new Map([[self, true]]), transfer } };
  } else {
    ctx.s = {
      ...s,
      term: s.term + 1,
      vote: self,
      role: { kind: "candidate", votes: new Map([[self, true]]), transfer },
    };
  }
  ctx.fx.push({ type: "RoleChanged", role: ctx.s.role.kind as "precandidate" | "candidate", term: ctx.s.term });
  if (hadLeader !== undefined) ctx.fx.push({ type: "LeaderChanged", leader: undefined, term: ctx.s.term });
  resetElectionTimer(ctx);
  const term = preVote ? ctx.s.term + 1 : ctx.s.term;
  const log = ctx.s.log;
  for (const id of allMembers(membership)) {
    if (id === self || !isVoter(membership, id)) continue;
    const request: RequestVote = {
      ...header(ctx, id),
      term,
      type: "RequestVote",
      preVote,
      lastIndex: lastIndex(log),
      lastTerm: lastTerm(log),
      transfer,
    };
    send(ctx, request);
  }
  countVotes(ctx);
}

/**
 * Whether this node starts elections: a voter of its latest configuration,
 * or a voter of the one before while the latest (which removed it) is not yet
 * committed — thesis §4.2.2: such a server "should still start new elections,
 * as it might still be needed until the C_new entry is committed"; it does not
 * count its own vote (the tally uses the latest configuration). Without this,
 * a leader that appended C_new and lost leadership could hold the only copy of
 * C_new, refuse the others' votes (its log is longer) and never campaign.
 */
function mayCampaign(s: RaftState): boolean {
  const self = s.config.id;
  if (isVoter(membershipOf(s), self)) return true;
  const configs = s.configs;
  const latest = configs[configs.length - 1]!;
  const previous = configs[configs.length - 2];
  return latest.index > s.commit && previous !== undefined && isVoter(previous.membership, self);
}

/** Acts on the votes gathered so far: advance to the next phase, lead, or give up. */
function countVotes(ctx: StepContext): void {
  const role = ctx.s.role;
  if (role.kind !== "precandidate" && role.kind !== "candidate") return;
  const result = voteResult(membershipOf(ctx.s), role.votes);
  if (result === "won") {
    if (role.kind === "precandidate") campaign(ctx, false, role.transfer);
    else becomeLeader(ctx);
  } else if (result === "lost") {
    becomeFollower(ctx, ctx.s.term, undefined);
  }
}

/**
 * Answers a (pre-)vote request (paper §5.2, §5.4.1; thesis §9.6). The caller
 * has already handled the term: for real votes `m.term` equals ours here.
 */
export function handleRequestVote(ctx: StepContext, m: RequestVote, vouched: boolean): void {
  const s = ctx.s;
  // Leader stickiness (§4.2.3): no vote while we heard from a leader this election
  // timeout, unless our leader announced this candidate's transfer (§3.10). (A sticky
  // node drops vote requests of a higher term unread: see step.ts `receive`.)
  const free = !inLease(s) || vouched;
  const canVote = m.preVote
    // A pre-vote is granted to a higher would-be term (§9.6).
    ? m.term > s.term
    : s.vote === m.from || (s.vote === undefined && free);
  const granted = canVote && isUpToDate(s.log, m.lastIndex, m.lastTerm);
  if (granted && !m.preVote) {
    ctx.s = { ...ctx.s, vote: m.from };
    // Granting a vote resets the election timer (§5.2), so we don't compete with the candidate.
    resetElectionTimer(ctx);
  }
  const response: RequestVoteResponse = {
    ...header(ctx, m.from),
    // A granted pre-vote answers in the probed term so the candidate counts it.
    term: m.preVote && granted ? m.term : ctx.s.term,
    type: "RequestVoteResponse",
    preVote: m.preVote,
    granted,
  };
  send(ctx, response);
}

/** Counts a vote for the current campaign. */
export function handleVoteResponse(ctx: StepContext, m: RequestVoteResponse): void {
  const role = ctx.s.role;
  // Granted pre-votes carry the probed term; rejections carry the voter's (our) term.
  const preVoteCounts = m.term === ctx.s.term + 1 || (!m.granted && m.term === ctx.s.term);
  if (role.kind === "precandidate" && m.preVote && preVoteCounts) {
    ctx.s = { ...ctx.s, role: { ...role, votes: new Map(role.votes).set(m.from, m.granted) } };
    countVotes(ctx);
  } else if (role.kind === "candidate" && !m.preVote && m.term === ctx.s.term) {
    ctx.s = { ...ctx.s, role: { ...role, votes: new Map(role.votes).set(m.from, m.granted) } };
    countVotes(ctx);
  } else if (role.kind === "precandidate" && m.preVote && !m.granted && m.term > ctx.s.term) {
    // Rejected by a node already in a later term: join it.
    becomeFollower(ctx, m.term, undefined);
  }
}

/**
 * Takes leadership: progress for every member, a no-op entry of the new term
 * so earlier entries can commit (§5.4.2, thesis §6.4), heartbeats and the
 * check-quorum timer.
 */
export function becomeLeader(ctx: StepContext): void {
  const s = ctx.s;
  const self = s.config.id;
  const next = lastIndex(s.log) + 1;
  const progress = new Map<NodeId, Progress>();
  for (const id of allMembers(membershipOf(s))) if (id !== self) progress.set(id, newProgress(next));
  ctx.s = {
    ...s,
    role: {
      kind: "leader",
      progress,
      seq: 0,
      reads: [],
      uncommittedBytes: 0,
      transfer: undefined,
      noopIndex: next,
      rounds: [],
      leaseRevoked: false,
    },
  };
  ctx.fx.push({ type: "RoleChanged", role: "leader", term: s.term });
  ctx.fx.push({ type: "LeaderChanged", leader: self, term: s.term });
  setTimer(ctx, "heartbeat", s.config.heartbeatMs);
  // The leader's round (check-quorum and stalled snapshots) runs whether or not check-quorum is on.
  setTimer(ctx, "quorum", s.config.electionTimeoutMs);
  appendLocal(ctx, [{ term: s.term, index: next, kind: "noop", data: new Uint8Array(0), config: undefined }]);
  broadcastAppend(ctx);
}
