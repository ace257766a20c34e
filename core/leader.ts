/**
 * The leader role: access to its role value, client proposals, and its two
 * periodic timers — heartbeats, and the round every election timeout that
 * checks the quorum (thesis §6.2) and retries stalled snapshot transfers.
 *
 * The leader's other duties live beside it, one module each, as etcd's raft
 * keeps `tracker/`, `quorum/`, `confchange/` and `read_only.go` apart:
 * `replication.ts` (appends, flow control, commit), `reads.ts` (ReadIndex and
 * leases), `reconfig.ts` (membership changes) and `transfer.ts` (leadership
 * transfer).
 *
 * @module
 */

import { setTimer, type StepContext } from "./context.ts";
import { becomeFollower } from "./election.ts";
import { entrySize, lastIndex } from "./log.ts";
import { abortSnapshot, type Progress } from "./progress.ts";
import { quiesceOnHeartbeat } from "./quiesce.ts";
import { hasQuorum } from "./quorum.ts";
import { appendLocal, broadcastAppend, broadcastHeartbeat } from "./replication.ts";
import { type LeaderRole, membershipOf } from "./state.ts";
import type { Entry, Index, NodeId, Proposal } from "./types.ts";

/** The leader role of the current state (callers check the role first). */
export function leaderRole(ctx: StepContext): LeaderRole {
  const role = ctx.s.role;
  if (role.kind !== "leader") throw new Error("not leader");
  return role;
}

/** Replaces the leader role value. */
export function setRole(ctx: StepContext, role: LeaderRole): void {
  ctx.s = { ...ctx.s, role };
}

/** Replaces the progress of one follower. */
export function setProgress(ctx: StepContext, id: NodeId, pr: Progress): void {
  const role = leaderRole(ctx);
  setRole(ctx, { ...role, progress: new Map(role.progress).set(id, pr) });
}

/** Whether this leader has committed an entry of its own term (its no-op, thesis §6.4). */
export function committedInTerm(ctx: StepContext): boolean {
  return ctx.s.commit >= leaderRole(ctx).noopIndex;
}

/**
 * Appends client proposals as one batch and replicates them. `reply` hears
 * the index each landed at, 0 when refused during a transfer (§3.10: the
 * leader stops accepting proposals) and -1 when over the uncommitted-bytes
 * bound.
 */
export function proposeAsLeader(
  ctx: StepContext,
  proposals: readonly Proposal[],
  reply: (requestId: number, index: Index) => void,
): void {
  const role = leaderRole(ctx);
  if (role.transfer) {
    for (const p of proposals) reply(p.requestId, 0);
    return;
  }
  const entries: Entry[] = [];
  let index = lastIndex(ctx.s.log);
  let bytes = role.uncommittedBytes;
  for (const p of proposals) {
    const entry: Entry = { term: ctx.s.term, index: index + 1, kind: "command", data: p.data, config: undefined };
    const size = entrySize(entry);
    // Bound memory held by uncommitted entries (always admit one, so huge entries can't wedge).
    if (bytes > 0 && bytes + size > ctx.s.config.maxUncommittedBytes) {
      reply(p.requestId, -1);
      continue;
    }
    bytes += size;
    index++;
    entries.push(entry);
    reply(p.requestId, entry.index);
  }
  if (entries.length === 0) return;
  appendLocal(ctx, entries);
  broadcastAppend(ctx);
}

/** Leader heartbeat timer fired. */
export function onHeartbeatTimer(ctx: StepContext): void {
  if (ctx.s.config.quiesce) return quiesceOnHeartbeat(ctx);
  broadcastHeartbeat(ctx);
  setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);
}

/**
 * The leader's round, once per election timeout (the `quorum` timer), over
 * what it heard from each follower since the last one:
 * - check-quorum (thesis §6.2, when enabled): if no quorum answered, this
 *   leader may be partitioned away; it steps down so clients go elsewhere and
 *   it stops serving reads;
 * - a snapshot transfer that made no progress for a whole round was lost (a
 *   dropped chunk, a follower that crashed while installing): it is abandoned
 *   and probed again, which restarts it if still needed. This runs whether or
 *   not check-quorum is on, or such a follower would stay behind for good.
 *   (`probeSent` marks "no progress since the last round" in snapshot state.)
 */
export function onQuorumTimer(ctx: StepContext): void {
  const role = leaderRole(ctx);
  const active = new Set<NodeId>([ctx.s.config.id]);
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of role.progress) {
    if (pr.active) active.add(id);
    let next: Progress = { ...pr, active: false };
    if (pr.state === "snapshot") next = pr.probeSent ? abortSnapshot(next) : { ...next, probeSent: true };
    progress.set(id, next);
  }
  setRole(ctx, { ...role, progress });
  setTimer(ctx, "quorum", ctx.s.config.electionTimeoutMs);
  if (ctx.s.config.checkQuorum && !hasQuorum(membershipOf(ctx.s), active)) becomeFollower(ctx, ctx.s.term, undefined);
}
