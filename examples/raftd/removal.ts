/**
 * Noticing that this node was removed from the cluster. A leader stops
 * replicating to a member once the configuration without it is in its log
 * (configurations take effect on append, thesis §4.1), so a removed
 * follower usually never sees its own removal: it hears nothing more, keeps
 * its old configuration, and would go on calling itself a voter. This
 * watch finds out, in one of two ways:
 *
 * - its own log's configuration no longer lists it (it received the
 *   change, or it was the leader that removed itself);
 * - it has had no leader for three election timeouts, and a leader of its
 *   cluster, in a term at least its own, answers `/status` with a
 *   membership that leaves it out — twice, an election timeout apart (an
 *   uncommitted removal can still be rolled back by a leader change).
 *
 * Only a node that has been a voter is watched: a learner whose join was
 * rolled back is not "removed", its join loop asks again. A `/status`
 * answer is not authenticated unless raftd serves HTTPS (`-cert`): a forged
 * one can make a node stop, which is a denial of service like cutting its
 * cable, never a safety problem (a stopped node cannot break agreement).
 *
 * @module
 */

import { type Dialer, fetchStatus, type StatusAnswer } from "./join.ts";
import { type KvNode, membersOf } from "./service.ts";

/** What the watch needs. */
export interface RemovalWatch {
  /** This node's id. */
  readonly self: string;
  /** Its cluster id (answers from another cluster are ignored). */
  readonly cluster: string;
  /** The running node. */
  readonly node: KvNode;
  /** Every other member's HTTP address this node knows. */
  readonly addresses: () => ReadonlyMap<string, string>;
  /** How to call them. */
  readonly dialer: Dialer;
  /** The base election timeout (ms). */
  readonly electionTimeoutMs: number;
  /** Whether raftd is shutting down. */
  readonly stopped: () => boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The reason this node no longer is a member, once it knows (undefined if raftd stopped first). */
export async function watchRemoval(w: RemovalWatch): Promise<string | undefined> {
  const { self, node } = w;
  const period = Math.max(200, w.electionTimeoutMs);
  let wasVoter = false;
  let leaderlessSince: number | undefined;
  let suspect: string | undefined;
  while (!w.stopped()) {
    const s = node.status();
    if (s.stopped) return undefined;
    const me = membersOf(s.membership).find((m) => m.id === self);
    if (me?.suffrage === "voter") wasVoter = true;
    if (wasVoter && me === undefined) {
      return `this node's log has a configuration without it (voters ${s.membership.voters.join(",")})`;
    }
    if (!wasVoter || s.leader !== undefined) {
      leaderlessSince = undefined;
      suspect = undefined;
    } else if (Date.now() - (leaderlessSince ??= Date.now()) >= 3 * w.electionTimeoutMs) {
      const answer = await leaderWithout(w, s.term);
      if (answer === undefined) suspect = undefined;
      else {
        const reason = `leader ${answer.id} (term ${answer.term}) lists the members ` +
          `${answer.members.map((m) => m.id).join(",")}, without this node`;
        if (suspect !== undefined) return reason;
        suspect = reason;
      }
    }
    await sleep(period);
  }
  return undefined;
}

/** A leader of this cluster, in `term` or later, whose membership leaves this node out, if one answers. */
async function leaderWithout(w: RemovalWatch, term: number): Promise<StatusAnswer | undefined> {
  for (const [id, address] of w.addresses()) {
    if (id === w.self) continue;
    try {
      const s = await fetchStatus(w.dialer, address, 2000);
      if (s.cluster === w.cluster && s.role === "leader" && s.term >= term && !s.members.some((m) => m.id === w.self)) {
        return s;
      }
    } catch {
      // Unreachable or not raftd: ask the next one.
    }
  }
  return undefined;
}
