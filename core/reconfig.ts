/**
 * Membership changes on the leader (thesis chapter 4): when a configuration
 * entry may be appended, proposing one, promoting caught-up learners
 * (§4.2.1), leaving a joint configuration (§4.3), and stepping down once the
 * leader's own removal commits (§4.2.2). Configurations take effect on append
 * (§4.1), on every node.
 *
 * @module
 */

import type { StepContext } from "./context.ts";
import { applyConfChange, leaveJoint, promotable } from "./confchange.ts";
import { committedInTerm, leaderRole, setRole } from "./leader.ts";
import { lastIndex } from "./log.ts";
import { allMembers, isJoint, isVoter } from "./membership.ts";
import { newProgress } from "./progress.ts";
import { rejectPendingReads } from "./reads.ts";
import { appendLocal, broadcastAppend, broadcastHeartbeat } from "./replication.ts";
import { membershipOf } from "./state.ts";
import type { ConfChange, Entry, Index, Membership, RejectReason } from "./types.ts";

/**
 * How far (in entries) a learner marked for promotion may trail the commit
 * index and still count as caught up, while it is being replicated to in
 * pipelined mode: under a steady write load it is always a window behind.
 */
const PROMOTE_MAX_LAG = 32;

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

/**
 * Why the leader may not append a configuration entry now, or undefined if
 * it may. The one place this rule lives; proposals, promotions and leaving a
 * joint configuration all ask it.
 * - During a leadership transfer nothing is appended (§3.10), so the target
 *   can catch up and campaign with the leader's whole log.
 * - One change at a time (§4.1): the latest configuration must have committed.
 * - Not before this leader has committed an entry of its own term (Ongaro's
 *   2015 raft-dev errata to §4.1): an uncommitted configuration entry of an
 *   earlier term may still be in force on other servers, and a single-server
 *   step from a different base could yield two disjoint majorities.
 */
function changeRefused(ctx: StepContext): RejectReason | undefined {
  if (leaderRole(ctx).transfer) return "transferring";
  if (hasUncommittedConfig(ctx) || !committedInTerm(ctx)) return "conf-change-pending";
  return undefined;
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

function appendConfig(ctx: StepContext, membership: Membership): Entry {
  const entry = configEntry(ctx, membership);
  appendLocal(ctx, [entry]);
  broadcastAppend(ctx);
  return entry;
}

/** Proposes a membership change (one at a time, thesis §4.1). */
export function proposeConfChange(ctx: StepContext, requestId: number, change: ConfChange): void {
  const reject = (reason: RejectReason) => ctx.fx.push({ type: "Reject", requestId, reason, leader: ctx.s.config.id });
  const refused = changeRefused(ctx);
  if (refused) return void reject(refused);
  const current = membershipOf(ctx.s);
  const next = applyConfChange(current, change);
  if (next === "joint-pending") return void reject("conf-change-pending");
  if (next === "unsafe") return void reject("unsafe-conf-change");
  // Removing the leader of a two-voter cluster can wedge it (docs/DESIGN.md): should the
  // leader crash before the change commits, it no longer campaigns (not a voter in
  // its latest configuration, §4.1) and the survivor, lacking that entry, cannot win
  // its vote. Transfer leadership first, then remove the old leader.
  if (current.voters.length === 2 && !next.voters.includes(ctx.s.config.id)) {
    return void reject("unsafe-conf-change");
  }
  const entry = appendConfig(ctx, next);
  ctx.fx.push({ type: "Proposed", requestId, index: entry.index, term: entry.term });
}

/**
 * Promotes a learner marked for promotion once it has caught up (thesis
 * §4.2.1: a new server becomes a voter only when adding it cannot stall
 * commits). A promotion is a membership change like any other: never while
 * joint, and only when {@link changeRefused} allows one.
 */
export function maybePromoteLearners(ctx: StepContext): void {
  const membership = membershipOf(ctx.s);
  if (isJoint(membership) || changeRefused(ctx)) return;
  const commit = ctx.s.commit;
  const progress = leaderRole(ctx).progress;
  for (const id of promotable(membership)) {
    const pr = progress.get(id);
    if (!pr) continue;
    const caughtUp = pr.match >= commit || (pr.state === "replicate" && pr.match + PROMOTE_MAX_LAG >= commit);
    if (!caughtUp) continue;
    const next = applyConfChange(membership, { type: "promote", node: id });
    if (typeof next === "string") continue;
    appendConfig(ctx, next);
    return;
  }
}

/**
 * Leaves a committed joint configuration (§4.3) by appending C_new, unless
 * {@link changeRefused} defers it (a transfer in progress: it is left once the
 * transfer ends, here or under the new leader).
 */
export function maybeLeaveJoint(ctx: StepContext): void {
  const latest = ctx.s.configs[ctx.s.configs.length - 1]!;
  if (!isJoint(latest.membership) || changeRefused(ctx)) return;
  appendConfig(ctx, leaveJoint(latest.membership));
}

/**
 * Membership bookkeeping once the latest configuration commits: leave a joint
 * configuration (§4.3), and step down if this leader is no longer a voter
 * (§4.2.2).
 */
export function onConfigCommitted(ctx: StepContext): void {
  const latest = ctx.s.configs[ctx.s.configs.length - 1]!;
  if (latest.index > ctx.s.commit || latest.index === 0) return;
  if (isJoint(latest.membership)) return maybeLeaveJoint(ctx);
  if (isVoter(latest.membership, ctx.s.config.id)) return;
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
  ctx.s = { ...ctx.s, role: { kind: "follower", leader: undefined, sticky: false } };
}
