/**
 * Linearizable reads on the leader (thesis §6.4): ReadIndex confirmed by a
 * heartbeat round a quorum acknowledged, and lease reads (§6.4.1) served
 * without a round trip while the leader's lease holds.
 *
 * @module
 */

import { header, send, type StepContext } from "./context.ts";
import { committedInTerm, leaderRole, setRole } from "./leader.ts";
import { committedIndex } from "./quorum.ts";
import { broadcastHeartbeat } from "./replication.ts";
import { type LeaseRound, membershipOf, type PendingRead } from "./state.ts";
import type { Index, NodeId } from "./types.ts";

/** Heartbeat rounds remembered with their send time, for leases. */
const LEASE_ROUNDS = 32;

/** Remembers when round `seq` was sent (bounded), if the input carried a clock reading. */
export function recordRound(ctx: StepContext, rounds: readonly LeaseRound[], seq: number): readonly LeaseRound[] {
  if (!ctx.s.config.leaseReads || ctx.now === undefined) return rounds;
  const kept = rounds.length >= LEASE_ROUNDS ? rounds.slice(rounds.length - LEASE_ROUNDS + 1) : rounds;
  return [...kept, { seq, at: ctx.now }];
}

/** The highest heartbeat round acknowledged by a quorum (the leader acks every round it sends). */
function confirmedRound(ctx: StepContext): number {
  const role = leaderRole(ctx);
  const self = ctx.s.config.id;
  return committedIndex(membershipOf(ctx.s), (id) => id === self ? role.seq : (role.progress.get(id)?.ackSeq ?? 0));
}

/**
 * Whether this leader holds a lease (thesis §6.4.1): a quorum acknowledged a
 * round sent less than an election timeout ago (shortened by the clock-drift
 * bound), and those followers ignore vote requests for an election timeout
 * after hearing from us (leader stickiness; a restarted follower is sticky
 * too), so no other leader can exist yet. Only once this term's no-op has
 * committed does the leader know the latest commit index (§6.4). A transfer
 * voids the lease: TimeoutNow lets the target bypass stickiness.
 */
function leaseHolds(ctx: StepContext): boolean {
  const role = leaderRole(ctx);
  const config = ctx.s.config;
  if (!config.leaseReads || ctx.now === undefined || role.transfer !== undefined || role.leaseRevoked) return false;
  if (!committedInTerm(ctx)) return false;
  const confirmed = confirmedRound(ctx);
  let at: number | undefined;
  for (let i = role.rounds.length - 1; i >= 0; i--) {
    if (role.rounds[i]!.seq <= confirmed) {
      at = role.rounds[i]!.at;
      break;
    }
  }
  return at !== undefined && ctx.now - at < config.electionTimeoutMs * (1 - config.clockDrift);
}

/**
 * Registers a linearizable read (§6.4): its read index is the commit index
 * (or this term's no-op, if not yet committed), served once a quorum has
 * acknowledged a heartbeat round sent after the read arrived.
 */
export function readIndex(ctx: StepContext, requestId: number, origin: NodeId): void {
  if (origin === ctx.s.config.id && leaseHolds(ctx)) {
    ctx.fx.push({ type: "ReadReady", requestId, index: ctx.s.commit });
    return;
  }
  const role = leaderRole(ctx);
  const read: PendingRead = {
    requestId,
    origin,
    index: Math.max(ctx.s.commit, role.noopIndex),
    seq: role.seq + 1,
  };
  setRole(ctx, { ...role, reads: [...role.reads, read] });
  if (role.progress.size === 0) {
    setRole(ctx, { ...leaderRole(ctx), seq: read.seq });
  } else {
    broadcastHeartbeat(ctx);
  }
  serveReads(ctx);
}

/** Answers every pending read whose round a quorum acknowledged and whose index is committed. */
export function serveReads(ctx: StepContext): void {
  const role = leaderRole(ctx);
  if (role.reads.length === 0) return;
  const confirmed = confirmedRound(ctx);
  let served = 0;
  for (const read of role.reads) {
    if (read.seq > confirmed || read.index > ctx.s.commit) break;
    answerRead(ctx, read, read.index);
    served++;
  }
  if (served > 0) setRole(ctx, { ...leaderRole(ctx), reads: role.reads.slice(served) });
}

function answerRead(ctx: StepContext, read: PendingRead, index: Index): void {
  if (read.origin === ctx.s.config.id) {
    if (index > 0) ctx.fx.push({ type: "ReadReady", requestId: read.requestId, index });
    else ctx.fx.push({ type: "Reject", requestId: read.requestId, reason: "not-leader", leader: undefined });
  } else {
    send(ctx, { ...header(ctx, read.origin), type: "ReadIndexResponse", requestId: read.requestId, index });
  }
}

/** Fails reads that can no longer be confirmed (leadership lost). */
export function rejectPendingReads(ctx: StepContext, reads: readonly PendingRead[]): void {
  for (const read of reads) answerRead(ctx, read, 0);
}
