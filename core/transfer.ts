/**
 * Leadership transfer (thesis §3.10): the leader brings the target up to
 * date, then tells it to campaign at once (`TimeoutNow`); proposals are
 * refused meanwhile and a timer abandons the transfer.
 *
 * A transfer campaign may bypass leader stickiness (§4.2.3), so a voter
 * honours it only when it can tie it to its own leader: the leader announces
 * the target to every voter in the same `TimeoutNow` round, and a voter lets
 * only that target, campaigning in the very next term, through. A vote
 * request merely *claiming* to be a transfer is an ordinary one.
 *
 * @module
 */

import { header, send, setTimer, type StepContext } from "./context.ts";
import { campaign } from "./election.ts";
import { leaderRole, setRole } from "./leader.ts";
import { lastIndex } from "./log.ts";
import { allMembers, isVoter } from "./membership.ts";
import { maybeLeaveJoint } from "./reconfig.ts";
import { sendAppend } from "./replication.ts";
import { membershipOf, type RaftState } from "./state.ts";
import type { NodeId, RequestVote, TimeoutNow } from "./types.ts";

/** Whether `id` votes in the configuration that will remain once a joint one is left (the incoming voters). */
function staysVoter(state: RaftState, id: NodeId): boolean {
  return membershipOf(state).voters.includes(id);
}

/**
 * Starts a leadership transfer to `to`: refused unless `to` is a voter that
 * stays one (not only in the outgoing half of a joint configuration).
 */
export function startTransfer(ctx: StepContext, requestId: number, to: NodeId): void {
  const role = leaderRole(ctx);
  if (to === ctx.s.config.id) {
    ctx.fx.push({ type: "TransferDone", requestId, ok: true });
    return;
  }
  if (!staysVoter(ctx.s, to) || !role.progress.has(to) || role.transfer) {
    ctx.fx.push({ type: "TransferDone", requestId, ok: false });
    return;
  }
  setRole(ctx, { ...role, transfer: { to, requestId, sent: false } });
  setTimer(ctx, "transfer", ctx.s.config.electionTimeoutMs);
  maybeSendTimeoutNow(ctx, to);
  if (!leaderRole(ctx).transfer?.sent) sendAppend(ctx, to);
}

/**
 * Once the target holds the leader's whole log, sends `TimeoutNow` to it and
 * the announcement of it to every other voter. From then on the leader serves
 * no lease reads this term: the target may win at any moment.
 */
export function maybeSendTimeoutNow(ctx: StepContext, from: NodeId): void {
  const role = leaderRole(ctx);
  const transfer = role.transfer;
  if (!transfer || transfer.to !== from || transfer.sent) return;
  if (role.progress.get(from)?.match !== lastIndex(ctx.s.log) || !staysVoter(ctx.s, from)) return;
  const self = ctx.s.config.id;
  const membership = membershipOf(ctx.s);
  // Announcements first: they then usually arrive before the target's vote request.
  for (const id of allMembers(membership)) {
    if (id !== self && id !== from && isVoter(membership, id)) {
      send(ctx, { ...header(ctx, id), type: "TimeoutNow", candidate: from });
    }
  }
  send(ctx, { ...header(ctx, from), type: "TimeoutNow", candidate: from });
  setRole(ctx, { ...role, transfer: { ...transfer, sent: true }, leaseRevoked: true });
}

/** The transfer timer fired: give up and accept proposals (and membership changes) again. */
export function abortTransfer(ctx: StepContext): void {
  const role = leaderRole(ctx);
  if (!role.transfer) return;
  ctx.fx.push({ type: "TransferDone", requestId: role.transfer.requestId, ok: false });
  setRole(ctx, { ...role, transfer: undefined });
  // Leaving a committed joint configuration waited for the transfer to end.
  maybeLeaveJoint(ctx);
}

/**
 * A follower hears `TimeoutNow` from its leader of this term (the caller
 * checks that): the target campaigns at once, skipping pre-vote; any other
 * voter remembers whom the leader is handing over to.
 */
export function handleTimeoutNow(ctx: StepContext, m: TimeoutNow): void {
  const role = ctx.s.role;
  if (role.kind !== "follower") return;
  if (m.candidate === ctx.s.config.id) campaign(ctx, false, true);
  else ctx.s = { ...ctx.s, role: { ...role, transferTo: m.candidate } };
}

/**
 * Whether a vote request's transfer flag is vouched for here: it comes from
 * the target this node's leader announced (or, on the leader, the target it
 * sent TimeoutNow to), campaigning in the next term.
 */
export function transferVouched(state: RaftState, m: RequestVote): boolean {
  if (!m.transfer || m.preVote || m.term !== state.term + 1) return false;
  const role = state.role;
  if (role.kind === "follower") return role.leader !== undefined && role.transferTo === m.from;
  if (role.kind === "leader") return role.transfer?.sent === true && role.transfer.to === m.from;
  return false;
}
