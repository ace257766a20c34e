/**
 * A second catalogue of protocol mutations (see `catalogue.ts` for the
 * format): rules whose breakage is mostly a loss of liveness, efficiency or
 * hygiene rather than of safety — timers re-armed, back-off bounds, reads
 * answered when leadership ends, quiescence conditions — plus safety rules
 * the first catalogue does not name. `deno task mutate --extended` runs them
 * with the first catalogue; the simulator target is stated over the
 * first catalogue, and the whole suite must kill both.
 *
 * @module
 */

import type { Mutation } from "./catalogue.ts";

/** The extended catalogue. */
export const extended: readonly Mutation[] = [
  // --- the follower's side of AppendEntries (Figure 2) ---
  {
    name: "success-index-overclaims",
    rule: "Figure 2 AppendEntries: a success confirms the entries up to the last new one, not the follower's whole log",
    file: "core/follower.ts",
    find: "index: Math.max(lastNew, Math.min(ctx.s.commit, lastIndex(ctx.s.log))),",
    replace: "index: lastIndex(ctx.s.log),",
  },
  {
    name: "truncate-on-match",
    rule: "Figure 2 AppendEntries: only a conflicting entry (same index, other term) truncates the log",
    file: "core/follower.ts",
    find: "if (ours !== e.term) {",
    replace: "if (ours === ours) {",
  },
  {
    name: "commit-regress",
    rule: "Figure 2 AppendEntries: the follower's commit index never decreases",
    file: "core/follower.ts",
    find: "if (commit > ctx.s.commit) {",
    replace: "if (commit !== ctx.s.commit) {",
  },
  {
    name: "snapshot-regress",
    rule: "§7 a snapshot at or below what was applied is not restored again",
    file: "core/follower.ts",
    find: "  if (meta.index <= s.applied) return;\n",
    replace: "",
  },
  {
    name: "stale-snapshot-installed",
    rule: "§7 an InstallSnapshot at or below the commit index is answered, not stored",
    file: "core/follower.ts",
    find: "if (m.meta.index <= ctx.s.commit) {",
    replace: "if (m.meta.index < 0) {",
  },
  // --- quorums and elections (§5.2, §4.2.1, §4.2.3) ---
  {
    name: "commit-counts-learners",
    rule: "§4.2.1 learners (non-voting members) do not count toward commitment",
    file: "core/quorum.ts",
    find: "const incoming = quorumIndex(m.voters, matchOf);",
    replace: "const incoming = quorumIndex([...m.voters, ...m.learners], matchOf);",
  },
  {
    name: "votes-count-learners",
    rule: "§4.2.1 learners do not count toward elections",
    file: "core/quorum.ts",
    find: "const a = tally(m.voters, votes);",
    replace: "const a = tally([...m.voters, ...m.learners], votes);",
  },
  {
    name: "higher-term-response-ignored",
    rule: "§5.1 any message with a higher term (responses too) makes the node a follower of that term",
    file: "core/step.ts",
    find: "      becomeFollower(ctx, m.term, fromLeader ? m.from : undefined);",
    replace: "      if (!fromLeader) return;\n      becomeFollower(ctx, m.term, m.from);",
  },
  {
    name: "candidate-ignores-leader",
    rule: "§5.2 a candidate that hears from a leader of its term becomes its follower",
    file: "core/step.ts",
    find: 'if (ctx.s.role.kind === "leader") return; // Election safety makes this impossible.',
    replace: 'if (ctx.s.role.kind !== "follower") return;',
  },
  {
    name: "append-no-timer-reset",
    rule: "§5.2 hearing from the leader resets the election timer",
    file: "core/step.ts",
    find: "    resetElectionTimer(ctx);\n  }\n}",
    replace: "  }\n}",
  },
  {
    name: "vote-grant-no-timer-reset",
    rule: "§5.2 granting a vote resets the election timer",
    file: "core/election.ts",
    find:
      "    // Granting a vote resets the election timer (§5.2), so we don't compete with the candidate.\n    resetElectionTimer(ctx);\n",
    replace: "",
  },
  {
    name: "fixed-election-timeout",
    rule: "§5.2 election timeouts are randomized (split votes are rare)",
    file: "core/context.ts",
    find: "return randomBelow(rng, ctx.s.config.electionTimeoutMs);",
    replace: "return 0;",
  },
  // --- the leader (§5.3, §6.2, §10.2.1) ---
  {
    name: "apply-uncommitted",
    rule: "Figure 2 rules for all servers: only committed entries are applied",
    file: "core/step.ts",
    find: "const upTo = Math.min(s.commit, s.log.stable);",
    replace: "const upTo = s.log.stable;",
  },
  {
    name: "leader-counts-unwritten-self",
    rule: "thesis §10.2.1 the leader counts itself toward commit only for entries it made durable",
    file: "core/replication.ts",
    find: "(id) => id === self ? s.log.stable : (role.progress.get(id)?.match ?? 0),",
    replace: "(id) => id === self ? lastIndex(s.log) : (role.progress.get(id)?.match ?? 0),",
  },
  {
    name: "backoff-below-match",
    rule: "§5.3 back-off never rewinds next below what the follower confirmed (match + 1)",
    file: "core/replication.ts",
    find: "next = Math.max(pr.match + 1, Math.min(next, m.index));",
    replace: "next = Math.max(1, Math.min(next, m.index));",
  },
  {
    name: "stale-rejection-honoured",
    rule: "§5.3 a rejection of an append already answered is ignored",
    file: "core/replication.ts",
    find: 'const stale = pr.state === "replicate" ? m.index <= pr.match : m.index !== pr.next - 1;',
    replace: "const stale = false;",
  },
  {
    name: "huge-entry-wedges",
    rule: "flow control: one proposal above maxUncommittedBytes is still admitted when nothing is pending",
    file: "core/leader.ts",
    find: "if (bytes > 0 && bytes + size > ctx.s.config.maxUncommittedBytes) {",
    replace: "if (bytes + size > ctx.s.config.maxUncommittedBytes) {",
  },
  {
    name: "check-quorum-counts-everyone",
    rule: "§6.2 check-quorum counts only the followers heard from this round",
    file: "core/leader.ts",
    find: "    if (pr.active) active.add(id);\n",
    replace: "    active.add(id);\n",
  },
  {
    name: "quorum-timer-not-rearmed",
    rule: "§6.2 each check-quorum round arms the next",
    file: "core/leader.ts",
    find: '  setTimer(ctx, "quorum", ctx.s.config.electionTimeoutMs);\n  if (ctx.s.config.checkQuorum',
    replace: "  if (ctx.s.config.checkQuorum",
  },
  {
    name: "heartbeat-not-rearmed",
    rule: "§5.2 the leader heartbeats periodically",
    file: "core/leader.ts",
    find: '  broadcastHeartbeat(ctx);\n  setTimer(ctx, "heartbeat", ctx.s.config.heartbeatMs);\n}',
    replace: "  broadcastHeartbeat(ctx);\n}",
  },
  {
    name: "read-index-below-noop",
    rule: "§6.4 a read's index is at least the new leader's no-op",
    file: "core/reads.ts",
    find: "index: Math.max(ctx.s.commit, role.noopIndex),",
    replace: "index: ctx.s.commit,",
  },
  // --- membership and transfer (§4.1–§4.3, §3.10) ---
  {
    name: "new-member-no-progress",
    rule: "§4.1 a configuration takes effect on append: the leader replicates to members it adds",
    file: "core/reconfig.ts",
    find: "if (id !== ctx.s.config.id && !progress.has(id)) progress.set(id, newProgress(lastIndex(ctx.s.log) + 1));",
    replace: 'if (id === "\\u0000") progress.set(id, newProgress(lastIndex(ctx.s.log) + 1));',
  },
  {
    name: "promote-lagging-learner",
    rule: "§4.2.1 a learner is promoted only once it has caught up",
    file: "core/reconfig.ts",
    find: 'const caughtUp = pr.match >= commit || (pr.state === "replicate" && pr.match + PROMOTE_MAX_LAG >= commit);',
    replace: "const caughtUp = true;",
  },
  {
    name: "joint-never-left",
    rule: "§4.3 once C_old,new commits the leader appends C_new",
    file: "core/reconfig.ts",
    find: "if (isJoint(latest.membership)) return maybeLeaveJoint(ctx);",
    replace: "if (isJoint(latest.membership)) return;",
  },
  {
    name: "two-voter-removal-allowed",
    rule: "a two-voter leader may not remove itself (the survivor could never be elected)",
    file: "core/reconfig.ts",
    find: "if (current.voters.length === 2 && !next.voters.includes(ctx.s.config.id)) {",
    replace: "if (current.voters.length === -2) {",
  },
  {
    name: "removed-leader-keeps-reads",
    rule: "§4.2.2 a leader whose removal commits answers its pending reads",
    file: "core/reconfig.ts",
    find: "  rejectPendingReads(ctx, role.reads);\n",
    replace: "",
  },
  {
    name: "transfer-to-learner",
    rule: "§3.10 leadership is transferred only to a voter",
    file: "core/transfer.ts",
    find: "if (!staysVoter(ctx.s, to) || !role.progress.has(to) || role.transfer) {",
    replace: "if (!role.progress.has(to) || role.transfer) {",
  },
  {
    name: "transfer-not-announced",
    rule: "§3.10 the voters learn of the transfer, so its campaign may bypass their stickiness",
    file: "core/transfer.ts",
    find: "    if (id !== self && id !== from && isVoter(membership, id)) {",
    replace: '    if (id === "\\u0000") {',
  },
  {
    name: "vouched-any-term",
    rule: "§3.10 a transfer vote is vouched for only in the term right after the announcing leader's",
    file: "core/transfer.ts",
    find: "if (!m.transfer || m.preVote || m.term !== state.term + 1) return false;",
    replace: "if (!m.transfer || m.preVote) return false;",
  },
  // --- quiescence (core/quiesce.ts) ---
  {
    name: "quiesce-with-undurable",
    rule: "quiescence: a leader quiesces only with its whole log durable and committed",
    file: "core/quiesce.ts",
    find: "if (s.commit !== last || s.log.stable < last || s.commit < role.noopIndex) return false;",
    replace: "if (s.commit < role.noopIndex) return false;",
  },
  {
    name: "quiesce-follower-behind",
    rule: "quiescence: a follower quiesces only holding the leader's whole log, committed",
    file: "core/quiesce.ts",
    find:
      "  const holds = m.entries.length === 0 && m.commit === m.prevIndex && lastIndex(s.log) === m.prevIndex &&\n    s.commit === m.prevIndex;",
    replace: "  const holds = m.entries.length === 0;",
  },
  {
    name: "quiesce-without-acks",
    rule: "quiescence: the leader stops only once every member acknowledged the quiescing round",
    file: "core/quiesce.ts",
    find: "for (const pr of role.progress.values()) if (pr.ackSeq < q.seq) acked = false;",
    replace: "",
  },
  {
    name: "quiescent-wake-keeps-active",
    rule: "quiescence + §6.2: nothing heard while quiescent counts for the woken leader's quorum round",
    file: "core/quiesce.ts",
    find: "for (const [id, pr] of awake.progress) progress.set(id, { ...pr, active: false });",
    replace: "for (const [id, pr] of awake.progress) progress.set(id, pr);",
  },
  // --- the log and restarts (Figure 2 persistent state, §7, thesis §10.2.1) ---
  {
    name: "truncate-keeps-stable",
    rule: "thesis §10.2.1 truncating the log lowers what counts as durable",
    file: "core/log.ts",
    find: "return { ...log, length: index - log.offset, stable: Math.min(log.stable, index) };",
    replace: "return { ...log, length: index - log.offset };",
  },
  {
    name: "stable-ignores-term",
    rule: "thesis §10.2.1 a Persisted report counts only for the entry (index and term) that was written",
    file: "core/log.ts",
    find: "if (index <= log.stable || termAt(log, index) !== term) return log;",
    replace: "if (index <= log.stable) return log;",
  },
  {
    name: "stable-regresses",
    rule: "thesis §10.2.1 a late Persisted report of a lower index never lowers what is durable",
    file: "core/log.ts",
    find: "if (index <= log.stable || termAt(log, index) !== term) return log;",
    replace: "if (termAt(log, index) !== term) return log;",
  },
  {
    name: "up-to-date-strict",
    rule: "§5.4.1 a log of the same last term and length is as up to date (the vote is granted)",
    file: "core/log.ts",
    find: "(candidateLastTerm === ourTerm && candidateLastIndex >= lastIndex(log))",
    replace: "(candidateLastTerm === ourTerm && candidateLastIndex > lastIndex(log))",
  },
  {
    name: "slice-overshoots-bytes",
    rule: "flow control: an entry larger than maxMessageBytes still goes out, alone",
    file: "core/log.ts",
    find: "if (out.length > 0 && bytes > maxBytes) break;",
    replace: "if (bytes > maxBytes) break;",
  },
  {
    name: "restart-commit-beyond-log",
    rule: "Figure 2: a restarted node never counts as committed entries it does not hold",
    file: "core/step.ts",
    find: "commit: Math.min(Math.max(hard.commit, base), lastIndex(log)),",
    replace: "commit: Math.max(hard.commit, base),",
  },
  {
    name: "restart-forgets-vote",
    rule: "Figure 2 persistent state: votedFor survives a restart",
    file: "core/step.ts",
    find: "    vote: hard.vote,\n",
    replace: "    vote: undefined,\n",
  },
  {
    name: "restart-term-below-log",
    rule: "§5.1 a node's term is at least that of every entry in its log",
    file: "core/step.ts",
    find: "term: Math.max(hard.term, lastTermOf(entries, offsetTerm)),",
    replace: "term: hard.term,",
  },
  {
    name: "restart-keeps-conflicting-log",
    rule: "§7 on restart a log that disagrees with the snapshot's last entry is discarded",
    file: "core/step.ts",
    find: "if (behind || (covering !== undefined && covering.term !== snapshot.term)) entries = [];",
    replace: "if (behind) entries = [];",
  },
  {
    name: "snapshot-cut-beyond-applied",
    rule: "§7 compaction keeps keepAfterSnapshot entries and never passes the applied index",
    file: "core/step.ts",
    find: "const cut = Math.min(meta.index - s.config.keepAfterSnapshot, s.applied);",
    replace: "const cut = meta.index;",
  },
  {
    name: "term-not-persisted",
    rule: "Figure 2 persistent state: currentTerm is on stable storage before the node answers in it",
    file: "core/step.ts",
    find: "const hardChanged = s.term !== before.term || s.vote !== before.vote;",
    replace: "const hardChanged = s.vote !== before.vote;",
  },
  {
    name: "prevote-adopts-term",
    rule: "thesis §9.6 a pre-vote request does not change the receiver's term",
    file: "core/step.ts",
    find: "      if (!m.preVote) becomeFollower(ctx, m.term, undefined);",
    replace: "      becomeFollower(ctx, m.term, undefined);",
  },
  {
    name: "stale-term-not-told",
    rule: "§5.1 a stale leader's AppendEntries is answered with the current term, so it steps down",
    file: "core/step.ts",
    find: 'if (m.type === "AppendEntries" || m.type === "InstallSnapshot") {\n      // Tell a deposed leader',
    replace: 'if (m.type === "Propose") {\n      // Tell a deposed leader',
  },
];
