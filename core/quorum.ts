/**
 * Quorum arithmetic (paper §5.2, §5.3; thesis §4.3): the index a majority has
 * reached, vote counting, and whether a set of nodes is a quorum. A joint
 * configuration needs a majority of each of its two voter sets.
 *
 * @module
 */

import type { Index, Membership, NodeId } from "./types.ts";

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
