/**
 * How a membership change request becomes the next configuration (thesis
 * §4.1 single-server steps, §4.2.1 learners caught up before they vote, §4.3
 * joint consensus). Pure arithmetic on {@link Membership}; when a change may
 * be appended at all is the leader's rule (`reconfig.ts`).
 *
 * @module
 */

import { isJoint, isLearner } from "./membership.ts";
import type { ConfChange, Membership, NodeId } from "./types.ts";

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
