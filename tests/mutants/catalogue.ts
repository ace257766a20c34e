/**
 * A catalogue of deliberate protocol mutations of `core/` and of the shared
 * interpreter rules in `effects/driver/`: each breaks one named rule, by
 * replacing one exact piece of source text. `deno task
 * mutate` applies them one at a time to a copy of the repository and runs
 * the simulator sweep alone and then the whole suite against each; a
 * mutation the tests do not notice (a "survivor") is a rule nothing checks.
 *
 * `catalogue.test.ts` checks in CI that every `find` still occurs exactly
 * once in its file, so the catalogue cannot silently rot as `core/` changes.
 *
 * @module
 */

/** One mutation: in `file`, replace the one occurrence of `find` by `replace`. */
export interface Mutation {
  /** Short unique name. */
  readonly name: string;
  /** The rule it breaks, with its source (paper, thesis, errata). */
  readonly rule: string;
  /** Path from the repository root. */
  readonly file: string;
  /** Exact source text, occurring exactly once in `file`. */
  readonly find: string;
  /** What it becomes. */
  readonly replace: string;
}

/** Every mutation, grouped by area. */
export const catalogue: readonly Mutation[] = [
  // --- elections and votes (paper §5.2, §5.4.1; thesis §9.6, §4.2.3) ---
  {
    name: "vote-twice",
    rule: "Figure 2 RequestVote: vote for at most one candidate per term",
    file: "core/election.ts",
    find: ": s.vote === m.from || (s.vote === undefined && free);",
    replace: ": free;",
  },
  {
    name: "vote-ignores-log",
    rule: "§5.4.1 election restriction: vote only for a candidate whose log is at least as up to date",
    file: "core/election.ts",
    find: "const granted = canVote && isUpToDate(s.log, m.lastIndex, m.lastTerm);",
    replace: "const granted = canVote;",
  },
  {
    name: "up-to-date-by-length",
    rule: "§5.4.1 compare the last terms first, then the lengths",
    file: "core/log.ts",
    find:
      "return candidateLastTerm > ourTerm || (candidateLastTerm === ourTerm && candidateLastIndex >= lastIndex(log));",
    replace: "return candidateLastIndex >= lastIndex(log);",
  },
  {
    name: "vote-majority-off-by-one",
    rule: "§5.2 a candidate wins with votes from a majority",
    file: "core/quorum.ts",
    find: "const majority = Math.floor(voters.length / 2) + 1;",
    replace: "const majority = Math.floor(voters.length / 2);",
  },
  {
    name: "joint-election-ignores-old",
    rule: "§4.3 in C_old,new an election needs a majority of both configurations",
    file: "core/quorum.ts",
    find: 'const b = m.outgoing ? tally(m.outgoing, votes) : "won";',
    replace: 'const b = "won";',
  },
  {
    name: "forget-vote-same-term",
    rule: "§5.1 the vote is kept for the whole term (only a higher term clears it)",
    file: "core/election.ts",
    find: "vote: term > before.term ? undefined : before.vote,",
    replace: "vote: undefined,",
  },
  {
    name: "vote-not-persisted",
    rule: "Figure 2 persistent state: votedFor is on stable storage before the vote is answered",
    file: "core/step.ts",
    find: "const hardChanged = s.term !== before.term || s.vote !== before.vote;",
    replace: "const hardChanged = s.term !== before.term;",
  },
  {
    name: "prevote-ignores-leader",
    rule: "§9.6 + §4.2.3 a pre-vote is refused while a leader is heard from",
    file: "core/step.ts",
    find: "if (!vouched && !ownLeader && inLease(s)) return;",
    replace: "if (!vouched && !ownLeader && inLease(s) && !m.preVote) return;",
  },
  {
    name: "no-stickiness",
    rule: "§4.2.3 a follower that heard from a leader within the election timeout ignores vote requests",
    file: "core/state.ts",
    find: '(state.role.kind === "follower" && state.role.sticky)',
    replace: '(state.role.kind === "follower" && false)',
  },
  {
    name: "restart-not-sticky",
    rule: "§6.4.1 a restarted node must not vote before a lease it may have backed has run out",
    file: "core/step.ts",
    find: 'role: { kind: "follower", leader: undefined, sticky: true },',
    replace: 'role: { kind: "follower", leader: undefined, sticky: false },',
  },
  {
    name: "stale-term-accepted",
    rule: "Figure 2 AppendEntries/RequestVote: reply false if term < currentTerm",
    file: "core/step.ts",
    find: "} else if (m.term < s.term) {",
    replace: "} else if (m.term < s.term - 1) {",
  },
  {
    name: "removed-never-campaigns",
    rule: "§4.2.2 a server not in its uncommitted latest configuration still starts elections",
    file: "core/election.ts",
    find: "return latest.index > s.commit && previous !== undefined && isVoter(previous.membership, self);",
    replace: "return false;",
  },
  {
    name: "no-leader-noop",
    rule: "§5.4.2 / thesis §6.4 a new leader appends a no-op of its term so earlier entries can commit",
    file: "core/election.ts",
    find:
      'appendLocal(ctx, [{ term: s.term, index: next, kind: "noop", data: new Uint8Array(0), config: undefined }]);',
    replace: "appendLocal(ctx, []);",
  },
  // --- replication and commit (paper §5.3, §5.4.2; thesis §10.2.1) ---
  {
    name: "commit-quorum-off-by-one",
    rule: "§5.3 an entry is committed once stored on a majority",
    file: "core/quorum.ts",
    find: "return matches[Math.floor(voters.length / 2)]!;",
    replace: "return matches[Math.max(0, Math.floor(voters.length / 2) - 1)]!;",
  },
  {
    name: "joint-commit-ignores-old",
    rule: "§4.3 in C_old,new an entry commits only on a majority of both configurations",
    file: "core/quorum.ts",
    find: "return Math.min(incoming, outgoing);",
    replace: "return incoming;",
  },
  {
    name: "commit-older-term",
    rule: "§5.4.2 a leader commits by counting replicas only entries of its current term",
    file: "core/replication.ts",
    find: "if (candidate === Infinity || candidate <= s.commit || termAt(s.log, candidate) !== s.term) return;",
    replace: "if (candidate === Infinity || candidate <= s.commit) return;",
  },
  {
    name: "leader-counts-undurable",
    rule: "thesis §10.2.1 the leader counts itself only for entries it has made durable",
    file: "core/replication.ts",
    find: "(id) => id === self ? s.log.stable : (role.progress.get(id)?.match ?? 0),",
    replace: "(id) => id === self ? s.log.offset + s.log.length : (role.progress.get(id)?.match ?? 0),",
  },
  {
    name: "match-from-rejection",
    rule: "Figure 2 matchIndex: only a successful acknowledgement tells the leader what the follower holds",
    file: "core/replication.ts",
    find: "    const stale = pr.state",
    replace: "    pr = { ...pr, match: Math.max(pr.match, m.index) };\n    const stale = pr.state",
  },
  {
    name: "no-consistency-check",
    rule: "Figure 2 AppendEntries 2: reply false if the log has no entry at prevLogIndex with prevLogTerm",
    file: "core/follower.ts",
    find: "const prevMatches = m.prevIndex <= s.commit || termAt(log, m.prevIndex) === m.prevTerm;",
    replace: "const prevMatches = true;",
  },
  {
    name: "follower-commit-unverified",
    rule: "Figure 2 AppendEntries 5: commitIndex = min(leaderCommit, index of last new entry)",
    file: "core/follower.ts",
    find: "const commit = Math.min(m.commit, lastNew);",
    replace: "const commit = m.commit;",
  },
  {
    name: "truncation-keeps-config",
    rule:
      "§4.1 a server uses the latest configuration in its log, even uncommitted: a truncated config entry is undone",
    file: "core/follower.ts",
    find: "const configs = ctx.s.configs.filter((c) => c.index < from);",
    replace: "const configs = ctx.s.configs;",
  },
  {
    name: "apply-undurable",
    rule: "Figure 2 apply committed entries: a follower applies only what it has made durable",
    file: "core/step.ts",
    find: "const upTo = Math.min(s.commit, s.log.stable);",
    replace: "const upTo = s.commit;",
  },
  {
    name: "sends-outrun-disk",
    rule: "ordering rule 1: votes and acknowledgements leave only once the writes they depend on are durable",
    file: "core/step.ts",
    find: "  if (isForwarding(m)) return true;\n  return termDurable &&",
    replace: "  if (isForwarding(m) || m) return true;\n  return termDurable &&",
  },
  {
    name: "appends-before-term-durable",
    rule: "thesis §10.2.1 a leader's appends may outrun its entry writes, never the write of its term",
    file: "core/step.ts",
    find: 'const termDurable = s.role.kind === "leader" && s.log.stable >= s.role.noopIndex;',
    replace: 'const termDurable = s.role.kind === "leader";',
  },
  // --- reads and leases (thesis §6.4, §6.4.1) ---
  {
    name: "read-without-round",
    rule: "§6.4 a read index is served only after a quorum acknowledged a heartbeat round sent after the read",
    file: "core/reads.ts",
    find: "if (read.seq > confirmed || read.index > ctx.s.commit) break;",
    replace: "if (read.index > ctx.s.commit) break;",
  },
  {
    name: "read-before-noop",
    rule: "§6.4 a new leader's read index waits for its no-op to commit",
    file: "core/reads.ts",
    find: "index: Math.max(ctx.s.commit, role.noopIndex),",
    replace: "index: ctx.s.commit,",
  },
  {
    name: "lease-before-noop",
    rule: "§6.4.1 a lease read needs the leader's commit index to be current (its no-op committed)",
    file: "core/reads.ts",
    find: "  if (!committedInTerm(ctx)) return false;\n",
    replace: "",
  },
  {
    name: "lease-ignores-drift",
    rule: "§6.4.1 the lease is shortened by the clock-drift bound",
    file: "core/reads.ts",
    find: "(1 - config.clockDrift)",
    replace: "(1 + config.clockDrift)",
  },
  {
    name: "lease-survives-transfer",
    rule: "§6.4.1 + §3.10 after TimeoutNow the target may win at once: no more lease reads",
    file: "core/reads.ts",
    find: "role.transfer !== undefined || role.leaseRevoked) return false;",
    replace: "false) return false;",
  },
  {
    name: "lease-unconfirmed-round",
    rule: "§6.4.1 the lease starts at a round a quorum acknowledged, not at the latest round sent",
    file: "core/reads.ts",
    find: "(id) => id === self ? role.seq : (role.progress.get(id)?.ackSeq ?? 0)",
    replace: "() => role.seq",
  },
  // --- membership changes (thesis ch. 4, errata) ---
  {
    name: "conf-before-term-commit",
    rule: "Ongaro's 2015 errata to §4.1: no membership change before the leader commits an entry of its term",
    file: "core/reconfig.ts",
    find: "if (hasUncommittedConfig(ctx) || !committedInTerm(ctx)) return",
    replace: "if (hasUncommittedConfig(ctx)) return",
  },
  {
    name: "two-changes-at-once",
    rule: "§4.1 one membership change at a time: the previous must commit first",
    file: "core/reconfig.ts",
    find: "if (hasUncommittedConfig(ctx) || !committedInTerm(ctx)) return",
    replace: "if (!committedInTerm(ctx)) return",
  },
  {
    name: "removed-leader-stays",
    rule: "§4.2.2 a leader removed from the configuration steps down once the change commits",
    file: "core/reconfig.ts",
    find: "if (isVoter(latest.membership, ctx.s.config.id)) return;",
    replace: "return;",
  },
  {
    name: "config-on-commit",
    rule: "§4.1 a configuration takes effect on the leader as soon as it is appended",
    file: "core/replication.ts",
    find: 'for (const e of entries) if (e.kind === "config") adoptConfig(ctx, e.index, e.config!);',
    replace: "",
  },
  // --- transfer (thesis §3.10) ---
  {
    name: "transfer-flag-trusted",
    rule: "§3.10 + trust boundary: only a transfer the voter's leader announced bypasses stickiness",
    file: "core/transfer.ts",
    find: "if (!m.transfer || m.preVote || m.term !== state.term + 1) return false;",
    replace: "return m.transfer;",
  },
  {
    name: "timeoutnow-before-caught-up",
    rule: "§3.10 TimeoutNow is sent only once the target holds the leader's whole log",
    file: "core/transfer.ts",
    find: "if (role.progress.get(from)?.match !== lastIndex(ctx.s.log) || !staysVoter(ctx.s, from)) return;",
    replace: "if (!staysVoter(ctx.s, from)) return;",
  },
  {
    name: "proposals-during-transfer",
    rule: "§3.10 the leader stops accepting proposals during a transfer",
    file: "core/leader.ts",
    find: "  if (role.transfer) {\n    for (const p of proposals) reply(p.requestId, 0);",
    replace: "  if (false) {\n    for (const p of proposals) reply(p.requestId, 0);",
  },
  {
    name: "timeoutnow-from-anyone",
    rule: "§3.10 TimeoutNow counts only from the leader this node follows, in its term",
    file: "core/step.ts",
    find: "if (fromOurLeader) handleTimeoutNow(ctx, m);",
    replace: "handleTimeoutNow(ctx, m);",
  },
  // --- check-quorum and snapshots (thesis §6.2, §7) ---
  {
    name: "no-check-quorum",
    rule: "§6.2 a leader that hears from no quorum for an election timeout steps down",
    file: "core/leader.ts",
    find: "if (ctx.s.config.checkQuorum && !hasQuorum(membershipOf(ctx.s), active)) becomeFollower",
    replace: "if (false && !hasQuorum(membershipOf(ctx.s), active)) becomeFollower",
  },
  {
    name: "snapshot-never-retried",
    rule: "§7 a lost snapshot transfer is detected and resent",
    file: "core/leader.ts",
    find: 'if (pr.state === "snapshot") next = pr.probeSent ? abortSnapshot(next) : { ...next, probeSent: true };',
    replace: "",
  },
  {
    name: "snapshot-keeps-conflicting-log",
    rule: "§7 after installing a snapshot, keep the log only if it holds the snapshot's last entry (same term)",
    file: "core/follower.ts",
    find: "const keepsSuffix = termAt(s.log, meta.index) === meta.term;",
    replace: "const keepsSuffix = termAt(s.log, meta.index) !== undefined;",
  },
  // --- the shared driver (effects/driver/): the interpreter rules both interpreters run ---
  {
    name: "driver-sends-before-durable",
    rule: "ordering rule 1 as carried out: a Persist's `after` effects wait until it is durable",
    file: "effects/driver/driver.ts",
    find: "for (const d of e.after) this.#unit().after.push(d);",
    replace: "for (const d of e.after) this.#deferred(d);",
  },
  {
    name: "driver-snapshot-answer-before-durable",
    rule:
      "ordering rule 1 (§5.1: persist the term before answering): a snapshot chunk's answer waits for the writes before it",
    file: "effects/driver/driver.ts",
    find: 'this.#unit().after.push({ type: "Send", message });',
    replace: "this.#sends.push(message);",
  },
  {
    name: "driver-never-persisted",
    rule: "thesis §10.2.1 the core learns what its own disk holds (Persisted) once a write is durable",
    file: "effects/driver/driver.ts",
    find: 'if (unit.last) this.#step({ type: "Persisted", index: unit.last.index, term: unit.last.term });',
    replace: "",
  },
  {
    name: "requests-ignore-term",
    rule: "§5.3 a proposal succeeds only if the entry applied at its index has the term it was appended in",
    file: "effects/driver/requests.ts",
    find: "if (w.term === entry.term) this.#end(id, result(w, ok, value, entry.index));",
    replace: "if (w.term === entry.term || true) this.#end(id, result(w, ok, value, entry.index));",
  },
  {
    name: "requests-read-before-applied",
    rule: "§6.4 a read is served only once the state machine has applied its read index",
    file: "effects/driver/requests.ts",
    find: "if (index <= applied) return this.succeed(requestId, index);",
    replace: "return this.succeed(requestId, index);",
  },
  {
    name: "receiver-accepts-gap",
    rule: "§7 chunked install: chunks are written only in order (a chunk past a gap is refused)",
    file: "effects/driver/snapshot_receiver.ts",
    find: "if (c.offset !== p!.expected) {",
    replace: "if (c.offset < p!.expected) {",
  },
];
