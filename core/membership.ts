/**
 * Membership arithmetic: who votes, what a quorum is, and how a change
 * request turns into the next configuration (thesis chapter 4).
 *
 * @module
 */

import type { ConfChange, Index, Membership, NodeId } from "./types.ts";

/** A membership with the given voters and no learners. */
export function membershipOf(voters: readonly NodeId[], learners: readonly NodeId[] = []): Membership {
  return { voters: [...voters], learners: [...learners], outgoing: undefined };
}

/** The empty membership of a node that has not yet been told its cluster. */
export const emptyMembership: Membership = { voters: [], learners: [], outgoing: undefined };

/** Whether `id` votes in `m` (in either half of a joint configuration). */
export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id) || (m.outgoing !== undefined && m.outgoing.includes(id));
}

/** Whether `id` is a learner in `m`. */
export function isLearner(m: Membership, id: NodeId): boolean {
  return m.learners.includes(id) && !isVoter(m, id);
}

/** Every node that receives the log: voters of both halves and learners, without duplicates. */
export function allMembers(m: Membership): NodeId[] {
  const set = new Set<NodeId>(m.voters);
  if (m.outgoing) { for (const id of m.outgoing) set.add(id); }
  for (const id of m.learners) set.add(id);
  return [...set];
}

/** Whether `m` is a joint configuration (thesis §4.3). */
export function isJoint(m: Membership): boolean {
  return m.outgoing !== undefined;
}

/**
 * The largest index that a majority of `voters` has reached, given each
 * voter's match index. Empty voter sets impose no constraint (Infinity).
 */
export function quorumIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => Index): Index {
  if (voters.length === 0) return Infinity;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)]!;
}

/** The committed index under `m`: a majority of each voter set (both halves when joint). */
export function committedIndex(m: Membership, matchOf: (id: NodeId) => Index): Index {
  const incoming = quorumIndex(m.voters, matchOf);
  const outgoing = m.outgoing ? quorumIndex(m.outgoing, matchOf) : Infinity;
  return Math.min(incoming, outgoing);
}

/** The outcome of a vote count. */
export type VoteResult = "won" | "lost" | "pending";

function tally(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const majority = Math.floor(voters.length / 2) + 1;
  if (granted >= majority) return "won";
  if (rejected > voters.length - majority) return "lost";
  return "pending";
}

/** Counts votes under `m`: winning needs a majority of each voter set (§4.3). */
export function voteResult(m: Membership, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = tally(m.voters, votes);
  const b = m.outgoing ? tally(m.outgoing, votes) : "won";
  if (a === "won" && b === "won") return "won";
  if (a === "lost" || b === "lost") return "lost";
  return "pending";
}

/** Whether the nodes in `active` form a quorum of `m`. */
export function hasQuorum(m: Membership, active: ReadonlySet<NodeId>): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of active) votes.set(id, true);
  return voteResult(m, votes) === "won";
}

/** Why a change cannot be applied to a membership. */
export type ConfChangeProblem = "joint-pending" | "unsafe";

/**
 * The configuration that follows `change`. Single-server steps (§4.1) move
 * straight to the new set; a `joint` change of several voters enters the
 * joint configuration C_old,new (§4.3), which the leader leaves with
 * {@link leaveJoint} once it commits. `addVoter` of a node that is not yet a
 * member adds it as a learner marked for promotion (§4.2.1: a new server
 * catches up without a vote, so it cannot stall commits while it is behind).
 */
export function applyConfChange(m: Membership, change: ConfChange): Membership | ConfChangeProblem {
  if (isJoint(m)) return "joint-pending";
  const voters = new Set(m.voters);
  const learners = new Set(m.learners);
  const promote = new Set(m.promote ?? []);
  switch (change.type) {
    case "addVoter":
      if (!voters.has(change.node) && !learners.has(change.node)) {
        learners.add(change.node);
        promote.add(change.node);
        break;
      }
      learners.delete(change.node);
      voters.add(change.node);
      break;
    case "promote":
      learners.delete(change.node);
      voters.add(change.node);
      break;
    case "addLearner":
      if (voters.has(change.node)) return "unsafe";
      learners.add(change.node);
      // An explicit learner stays one until promoted on request.
      promote.delete(change.node);
      break;
    case "remove":
      voters.delete(change.node);
      learners.delete(change.node);
      break;
    case "joint": {
      const next = [...new Set(change.voters)];
      if (next.length === 0) return "unsafe";
      const nextLearners = (change.learners ?? []).filter((id) => !next.includes(id));
      return withPromote({ voters: next, learners: nextLearners, outgoing: [...m.voters] }, promote);
    }
  }
  if (voters.size === 0) return "unsafe";
  // A single-server step may change the voter set by at most one node (§4.1).
  const added = [...voters].filter((id) => !m.voters.includes(id)).length;
  const removed = m.voters.filter((id) => !voters.has(id)).length;
  if (added + removed > 1) return "unsafe";
  return withPromote({ voters: [...voters], learners: [...learners], outgoing: undefined }, promote);
}

/** `m` marked to promote those of `promote` that are still its learners (no field when none). */
function withPromote(m: Membership, promote: ReadonlySet<NodeId>): Membership {
  const marked = m.learners.filter((id) => promote.has(id));
  return marked.length > 0 ? { ...m, promote: marked } : m;
}

/** Learners of `m` marked for automatic promotion (§4.2.1). */
export function promotable(m: Membership): readonly NodeId[] {
  return (m.promote ?? []).filter((id) => isLearner(m, id));
}

/** The configuration C_new that ends a joint change. */
export function leaveJoint(m: Membership): Membership {
  return withPromote({ voters: m.voters, learners: m.learners, outgoing: undefined }, new Set(m.promote ?? []));
}

/** Whether two memberships have the same members in each role (order-insensitive). */
export function sameMembership(a: Membership, b: Membership): boolean {
  const eq = (x: readonly NodeId[] | undefined, y: readonly NodeId[] | undefined) =>
    x === undefined || y === undefined ? x === y : x.length === y.length && x.every((id) => y.includes(id));
  return eq(a.voters, b.voters) && eq(a.learners, b.learners) && eq(a.outgoing, b.outgoing) &&
    eq(a.promote ?? [], b.promote ?? []);
}
