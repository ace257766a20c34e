/**
 * Recovery after permanent quorum loss (etcd's `--force-new-cluster`,
 * hashicorp/raft's `RecoverCluster`): when a majority of the voters is gone
 * for good, no leader can be elected and nothing can commit, ever. This
 * rewrites one survivor's stores so that it becomes the single voter of a
 * new cluster and keeps everything its log holds.
 *
 * What it writes is one distinct, durable record at the end of the log: a
 * configuration entry naming `id` as the only voter, in a term above every
 * term the log has seen, with a hard state that commits it (so every entry
 * before it commits too, as the new cluster's only voter decides). Nothing
 * is removed. It runs on stores that no node has open, before the node
 * starts; it never happens as part of a normal start, and it refuses
 * stores whose latest configuration already makes `id` the only member (a
 * flag left on a command line does not recover twice).
 *
 * Entries the old cluster had not committed become committed here: the
 * survivor's log is the new truth. Writes acknowledged by the old cluster
 * that this survivor never received are lost — recover the most up-to-date
 * survivor (highest last term, then highest last index). The other old
 * members must never run again with their old data: wipe them and add them
 * back as new members.
 *
 * @module
 */

import { membershipOf } from "../core/membership.ts";
import type { Entry, Index, Membership, NodeId, Term } from "../core/types.ts";
import type { LogStorePort, SnapshotStorePort } from "./ports/mod.ts";

/** What {@link forceNewCluster} wrote. */
export interface ForcedCluster {
  /** The index of the configuration entry making `id` the single voter. */
  readonly index: Index;
  /** Its term (above every term in the log). */
  readonly term: Term;
  /** The membership the survivor's data had before. */
  readonly previous: Membership;
}

/** The stores cannot be recovered this way (no data, not a member, already single). */
export class RecoveryRefused extends Error {
  /** Discriminator. */
  readonly _tag = "RecoveryRefused" as const;
  /**
   * Creates the error.
   * @param message why
   */
  constructor(message: string) {
    super(message);
    this.name = "RecoveryRefused";
  }
}

/** Options of {@link forceNewCluster}. */
export interface ForceNewClusterOptions {
  /** The survivor's id: the new cluster's single voter. */
  readonly id: NodeId;
  /** Its log store, not in use by a running node; left open (the caller closes it). */
  readonly logStore: LogStorePort;
  /** Its snapshot store (read only). */
  readonly snapshotStore: SnapshotStorePort;
  /**
   * The members the cluster started with (the `peers` of its nodes' first
   * start). Needed only when neither the log nor a snapshot holds a
   * configuration: a cluster whose membership never changed.
   */
  readonly peers?: readonly NodeId[];
}

/**
 * Makes the survivor `id` the single voter of a new cluster, keeping its
 * whole log (see the module doc). Then start it as usual (`createNode`, or
 * `startNode` on the same data directory) and add new members to it.
 *
 * @throws RecoveryRefused when the stores hold no cluster state, `id` is not
 *   in their latest configuration, or it is already the only member
 */
export async function forceNewCluster(options: ForceNewClusterOptions): Promise<ForcedCluster> {
  const { id, logStore, snapshotStore } = options;
  const recovered = await logStore.load();
  const snapshot = (await snapshotStore.latest())?.meta;
  const entries = recovered.entries;
  const lastEntry: Entry | undefined = entries.at(-1);
  const last = lastEntry !== undefined && lastEntry.index >= (snapshot?.index ?? 0)
    ? { index: lastEntry.index, term: lastEntry.term }
    : { index: snapshot?.index ?? 0, term: snapshot?.term ?? 0 };
  if (last.index === 0) throw new RecoveryRefused("the stores hold no log: there is no cluster to recover");
  const configEntry = entries.findLast((e) => e.kind === "config" && e.config !== undefined);
  const previous = configEntry !== undefined && configEntry.index > (snapshot?.index ?? 0)
    ? configEntry.config!
    : snapshot?.membership;
  const known = previous ?? (options.peers === undefined ? undefined : membershipOf(options.peers));
  if (known === undefined) {
    throw new RecoveryRefused(
      "the stores hold no configuration (the membership never changed): pass peers, the members it started with",
    );
  }
  const members = new Set([...known.voters, ...(known.outgoing ?? []), ...known.learners]);
  if (!members.has(id)) {
    throw new RecoveryRefused(`${id} is not a member of the configuration these stores hold`);
  }
  if (members.size === 1 && known.voters.length === 1 && known.outgoing === undefined) {
    throw new RecoveryRefused(`${id} is already the only member: nothing to recover`);
  }
  const term = Math.max(recovered.hardState.term, last.term) + 1;
  const entry: Entry = {
    index: last.index + 1,
    term,
    kind: "config",
    data: new Uint8Array(0),
    config: membershipOf([id]),
  };
  await logStore.append({ hardState: { term, vote: id, commit: entry.index }, entries: [entry] });
  await logStore.sync();
  return { index: entry.index, term, previous: known };
}
