/**
 * `raftd -force-new-cluster`: recovery after permanent quorum loss, from one
 * survivor's data directory. The node becomes the single member of a new
 * cluster and keeps everything its log holds (`forceNewClusterInDir` of
 * `@plank/raft/deno` or `/bun`: one configuration entry in a new term).
 *
 * Guarded so that it cannot happen by accident: it needs the flag, a data
 * directory that holds a member's log, and no other member of the old
 * cluster answering (if one does, the quorum may not be lost: fix the
 * network instead). The new cluster gets a new cluster id, so the old
 * members' data can never talk to it again: wipe them and `-join` them as
 * new members. The library refuses a node that is already the only member,
 * so a flag left on a command line does nothing the second time.
 *
 * @module
 */

import type { Identity } from "./identity.ts";
import { type Dialer, fetchStatus } from "./join.ts";

/** What the recovery needs. */
export interface ForceNewClusterStep {
  /** The data directory's identity (undefined for a new directory: refused). */
  readonly identity: Identity | undefined;
  /** The data directory. */
  readonly dataDir: string;
  /** How to ask the other members whether they are alive. */
  readonly dialer: Dialer;
  /** The runtime's `forceNewClusterInDir`. */
  readonly recover: (
    options: { id: string; dataDir: string; peers?: readonly string[] },
  ) => Promise<{ index: number; term: number }>;
  /** The new cluster id. */
  readonly newClusterId: string;
  /** Where the loud lines go. */
  readonly log: (message: string) => void;
}

/** Runs the recovery; resolves with the identity to start with (new cluster id, this node alone). */
export async function forceNewClusterStep(o: ForceNewClusterStep): Promise<Identity> {
  const identity = o.identity;
  if (identity === undefined) {
    throw new Error(`${o.dataDir} holds no node: give the data directory of a surviving member`);
  }
  for (const [id, address] of Object.entries(identity.members)) {
    if (id === identity.id) continue;
    try {
      const s = await fetchStatus(o.dialer, address, 2000);
      if (s.cluster === identity.cluster) {
        throw new Error(
          `member ${s.id} at ${address} answers (${s.role}, term ${s.term}): the cluster is not lost; refused`,
        );
      }
    } catch (e) {
      if (e instanceof Error && e.message.includes("the cluster is not lost")) throw e;
      // Nothing (of this cluster) answers there: as expected of a lost member.
    }
  }
  // A founder whose cluster never changed has no configuration entry: it started alone.
  const forced = await o.recover({
    id: identity.id,
    dataDir: o.dataDir,
    peers: identity.founder ? [identity.id] : undefined,
  });

  o.log(
    `FORCED A NEW CLUSTER: node ${identity.id} is now the only member of cluster ${o.newClusterId} ` +
      `(was ${identity.cluster}), from its own data up to index ${forced.index - 1}; configuration entry ` +
      `${forced.index} in term ${forced.term}. Do not restart the old members with their data: wipe them and ` +
      "-join them as new members.",
  );
  return { ...identity, cluster: o.newClusterId, founder: true, members: { [identity.id]: identity.address } };
}
