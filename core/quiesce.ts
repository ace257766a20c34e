/**
 * Quiescence (many groups per process): an idle, fully replicated group stops
 * heartbeating and ticking until something wakes it — CockroachDB's quiescent
 * ranges, TiKV's hibernating regions. Off unless `RaftConfig.quiesce`.
 *
 * The rule:
 * - **Quiescing.** On a heartbeat tick, a leader is idle when its whole log is
 *   durable and committed (its no-op included), no read, transfer, joint
 *   configuration or promotion is pending, and every member's progress
 *   replicates with `match` at the last index and nothing in flight. An idle
 *   leader sends its round with `quiesce` set; on the next tick, if it is still
 *   idle, no other round went out and the log did not grow, and every member
 *   acknowledged that round, it becomes quiescent and re-arms no timer.
 * - **Followers.** A follower that gets a quiescing heartbeat from its leader
 *   (of its term) and holds exactly the leader's log, committed to its end,
 *   becomes quiescent: it ignores its election timer and so stays sticky.
 * - **Waking.** Any input wakes a quiescent node except those that carry
 *   nothing new for an idle group: `Persisted`, `SnapshotTaken`,
 *   `SnapshotRestored`, timer firings, `Unreachable` (a shared transport's
 *   hint; the host's failure detector speaks for quiescent groups), the
 *   leader's successful acknowledgements in its term, the follower's quiescing
 *   heartbeats from its leader, and `PeerDown` of a peer the node does not
 *   depend on. `PeerDown(p)` wakes a leader when `p` votes, a follower when `p`
 *   is its leader. A woken leader marks every follower inactive, sends a
 *   heartbeat round and re-arms its heartbeat and quorum timers; a woken
 *   follower re-arms its election timer (sticky: a full timeout first).
 * - **Back up.** `PeerUp(p)`: the failure detector hears `p` again. A
 *   follower that `PeerDown(p)` of its leader woke, that heard nothing from
 *   or for its group since (no message, request or snapshot), and whose log
 *   is committed to its end, quiesces again, sticky. The loss was false (the
 *   leader's process was late: a stall, an overloaded machine) or short, and
 *   the leader's group, quiescent, would send nothing that stops the
 *   follower's campaign; without this, every follower of a late process
 *   campaigns one timeout later and unseats leaders that never failed —
 *   thousands at once for a host of thousands of groups, whose elections
 *   load the machine further.
 *
 * Why it is safe (the argument, in short):
 * - Election safety and log matching do not involve timers at all.
 * - Leases: a quiescent leader sends no rounds, so its lease lapses one
 *   election timeout after its last confirmed round, as if its heartbeats were
 *   lost; the followers that confirmed that round stay sticky at least that
 *   long (quiescence only lengthens stickiness, and a wake re-arms a full
 *   timeout). The first read after that wakes the group and runs a round.
 * - Check-quorum: a quiescent leader cut off from a quorum hears `PeerDown`
 *   for the lost voters once the host's failure detector times out (one
 *   election timeout without beacons), wakes with every follower inactive, and
 *   steps down at its next quorum round, one election timeout later, unless a
 *   quorum answered meanwhile.
 * - Liveness: a follower that missed the quiescing heartbeat keeps its timer,
 *   campaigns, and its (pre-)vote request wakes the leader and the others; a
 *   leader that is lost is noticed by the followers' failure detector. A
 *   follower quiesced again by `PeerUp` is as one that never woke: its
 *   leader's process is heard, and anything its group sends wakes it; should
 *   the leader's group have stepped down meanwhile, its campaign wakes it
 *   (a follower weighs its own leader's vote request despite stickiness).
 *
 * @module
 */

import { resetElectionTimer, setTimer, type StepContext } from "./context.ts";
import { leaderRole, setRole } from "./leader.ts";
import { lastIndex } from "./log.ts";
import type { Progress } from "./progress.ts";
import { broadcastHeartbeat } from "./replication.ts";
import { type LeaderRole, membershipOf, type RaftState } from "./state.ts";
import type { AppendEntries, Input, NodeId } from "./types.ts";

/** Whether the node is quiescent (leader or follower). */
export function isQuiescent(s: RaftState): boolean {
  return (s.role.kind === "leader" || s.role.kind === "follower") && s.role.quiescent === true;
}

/** Whether `input` wakes the quiescent node `s` (see the module's rule). */
export function wakes(s: RaftState, input: Input): boolean {
  const role = s.role;
  switch (input.type) {
    case "Persisted":
    case "SnapshotTaken":
    case "SnapshotRestored":
    case "Timeout":
    case "Unreachable":
    case "PeerUp":
      return false;
    case "PeerDown": {
      if (role.kind === "follower") return role.leader === input.peer;
      const m = membershipOf(s);
      return m.voters.includes(input.peer) || (m.outgoing ?? []).includes(input.peer);
    }
    case "Receive": {
      const m = input.message;
      if (m.group !== s.config.group || m.to !== s.config.id || m.from === s.config.id) return false;
      if (m.type === "HostHeartbeat" || m.type === "Heartbeats" || m.type === "HeartbeatResponses") return false;
      if (role.kind === "leader") return !(m.type === "AppendEntriesResponse" && m.success && m.term === s.term);
      return !(m.type === "AppendEntries" && m.quiesce === true && role.kind === "follower" &&
        m.from === role.leader && m.term === s.term);
    }
    default:
      return true;
  }
}

/**
 * Wakes a quiescent node: a leader resumes its rounds and timers, a follower
 * its election timer (remembering a `PeerDown` of its leader that woke it).
 */
export function wake(ctx: StepContext, input: Input): void {
  const role = ctx.s.role;
  if (role.kind === "follower") {
    const { quiescent: _, ...awake } = role;
    const byLeader = input.type === "PeerDown" && input.peer === role.leader;
    ctx.s = { ...ctx.s, role: byLeader ? { ...awake, wokenBy: input.peer } : awake };
    resetElectionTimer(ctx);
    return;
  }
  if (role.kind !== "leader") return;
  const { quiescent: _q, quiescing: _r, ...awake } = role;
  // Nothing heard while quiescent counts for the next quorum round: it must be answered afresh.
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of awake.progress) progress.set(id, { ...pr, active: false });
  setRole(ctx, { ...awake, progress });
  broadcastHeartbeat(ctx);
  setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);
  setTimer(ctx, "quorum", ctx.s.config.electionTimeoutMs);
}

/** Whether this leader is idle and its followers hold its whole log (see the module's rule). */
function idle(ctx: StepContext, role: LeaderRole): boolean {
  const s = ctx.s;
  const last = lastIndex(s.log);
  if (s.commit !== last || s.log.stable < last || s.commit < role.noopIndex) return false;
  if (role.transfer !== undefined || role.reads.length > 0) return false;
  const m = membershipOf(s);
  if (m.outgoing !== undefined || (m.promote?.length ?? 0) > 0) return false;
  for (const pr of role.progress.values()) {
    if (pr.match !== last || pr.state !== "replicate" || pr.inflight.length > 0) return false;
  }
  return true;
}

/**
 * The leader's heartbeat tick with quiescence on: an ordinary round while
 * busy; a quiescing round once idle; quiescent (no timer re-armed) once every
 * member acknowledged that round and nothing happened since.
 */
export function quiesceOnHeartbeat(ctx: StepContext): void {
  const role = leaderRole(ctx);
  if (!idle(ctx, role)) {
    if (role.quiescing !== undefined) {
      const { quiescing: _, ...busy } = role;
      setRole(ctx, busy);
    }
    broadcastHeartbeat(ctx);
    setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);
    return;
  }
  const q = role.quiescing;
  const last = lastIndex(ctx.s.log);
  if (q !== undefined && q.seq === role.seq && q.index === last) {
    let acked = true;
    for (const pr of role.progress.values()) if (pr.ackSeq < q.seq) acked = false;
    if (acked) {
      setRole(ctx, { ...role, quiescent: true });
      return;
    }
  }
  broadcastHeartbeat(ctx, true);
  const next = leaderRole(ctx);
  setRole(ctx, { ...next, quiescing: { seq: next.seq, index: last } });
  setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);
}

/**
 * A follower handled a quiescing heartbeat from its leader: it quiesces if it
 * holds exactly the leader's log, committed to its end; otherwise it stays
 * awake (its election timer was re-armed on hearing the leader).
 */
export function afterQuiescingHeartbeat(ctx: StepContext, m: AppendEntries): void {
  const s = ctx.s;
  const role = s.role;
  if (role.kind !== "follower" || role.leader !== m.from) return;
  const holds = m.entries.length === 0 && m.commit === m.prevIndex && lastIndex(s.log) === m.prevIndex &&
    s.commit === m.prevIndex;
  if (holds) ctx.s = { ...s, role: { ...role, quiescent: true } };
  else if (role.quiescent) {
    const { quiescent: _, ...awake } = role;
    ctx.s = { ...s, role: awake };
  }
}

/** Inputs that carry nothing from or for the group: a follower woken by `PeerDown` still heard nothing since. */
function carriesNothing(input: Input): boolean {
  return input.type === "Timeout" || input.type === "Persisted" || input.type === "SnapshotTaken" ||
    input.type === "Unreachable" || input.type === "PeerDown" || input.type === "PeerUp";
}

/** Before `input` is handled: a follower woken by `PeerDown` forgets it once anything reaches its group. */
export function forgetWake(ctx: StepContext, input: Input): void {
  const role = ctx.s.role;
  if (role.kind !== "follower" || role.wokenBy === undefined || carriesNothing(input)) return;
  const { wokenBy: _, ...rest } = role;
  ctx.s = { ...ctx.s, role: rest };
}

/** `PeerUp(peer)`: a follower its leader's loss woke, having heard nothing since, quiesces again (the rule above). */
export function quiesceOnPeerUp(ctx: StepContext, peer: NodeId): void {
  const s = ctx.s;
  const role = s.role;
  // `wokenBy` names the leader: set by its PeerDown, cleared by any message (which alone can change the leader).
  if (role.kind !== "follower" || role.wokenBy !== peer) return;
  if (s.commit !== lastIndex(s.log)) return;
  const { wokenBy: _, ...rest } = role;
  ctx.s = { ...s, role: { ...rest, sticky: true, quiescent: true } };
}
