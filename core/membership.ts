/**
 * Who is who in a configuration: voters, learners, the joint pair (thesis
 * chapter 4). What a quorum is lives in `quorum.ts`; how a change request
 * becomes the next configuration in `confchange.ts`.
 *
 * @module
 */

import type { Membership, NodeId } from "./types.ts";

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

/** Whether two memberships have the same members in each role (order-insensitive). */
export function sameMembership(a: Membership, b: Membership): boolean {
  const eq = (x: readonly NodeId[] | undefined, y: readonly NodeId[] | undefined) =>
    x === undefined || y === undefined ? x === y : x.length === y.length && x.every((id) => y.includes(id));
  return eq(a.voters, b.voters) && eq(a.learners, b.learners) && eq(a.outgoing, b.outgoing) &&
    eq(a.promote ?? [], b.promote ?? []);
}
