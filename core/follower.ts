/**
 * The follower's side of replication: the AppendEntries consistency check and
 * conflict truncation (paper Figure 2), and receiving snapshots.
 *
 * @module
 */

import { header, send, type StepContext } from "./context.ts";
import { appendToLog, compactLog, emptyLog, firstIndexOfTerm, lastIndex, termAt, truncateAfter } from "./log.ts";
import { membershipOf } from "./state.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Index,
  InstallSnapshot,
  InstallSnapshotResponse,
  SnapshotMeta,
} from "./types.ts";

/**
 * AppendEntries receiver rules (Figure 2): reject if the log doesn't contain
 * an entry at prevIndex with prevTerm; delete a conflicting suffix; append
 * what is new; advance commit to min(leaderCommit, index of last new entry).
 * The response is sent after the appended entries are durable (the
 * interpreter holds Sends behind the step's Persist).
 */
export function handleAppendEntries(ctx: StepContext, m: AppendEntries): void {
  const s = ctx.s;
  const log = s.log;
  // Entries at or below our commit index are committed, so they match any legitimate leader's (§5.4).
  const prevMatches = m.prevIndex <= s.commit || termAt(log, m.prevIndex) === m.prevTerm;
  if (!prevMatches) {
    reject(ctx, m);
    return;
  }
  // Find the first entry that is new or conflicts; everything before it we already hold.
  let firstNew = m.entries.length;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index <= s.commit) continue;
    const ours = termAt(log, e.index);
    if (ours !== e.term) {
      firstNew = i;
      break;
    }
  }
  if (firstNew < m.entries.length) {
    const from = m.entries[firstNew]!.index;
    if (from <= lastIndex(log)) {
      if (from <= s.commit) throw new Error(`conflict at committed index ${from} (commit ${s.commit})`);
      truncateFrom(ctx, from);
    }
    const fresh = m.entries.slice(firstNew);
    ctx.s = { ...ctx.s, log: appendToLog(ctx.s.log, fresh) };
    for (const e of fresh) {
      ctx.appended.push(e);
      if (e.kind === "config") {
        ctx.s = { ...ctx.s, configs: [...ctx.s.configs, { index: e.index, membership: e.config! }] };
        ctx.fx.push({ type: "MembershipChanged", membership: e.config!, index: e.index });
      }
    }
  }
  const lastNew = m.prevIndex + m.entries.length;
  const commit = Math.min(m.commit, lastNew);
  if (commit > ctx.s.commit) {
    ctx.s = { ...ctx.s, commit };
    ctx.fx.push({ type: "Committed", index: commit });
  }
  const response: AppendEntriesResponse = {
    ...header(ctx, m.from),
    type: "AppendEntriesResponse",
    success: true,
    index: Math.max(lastNew, Math.min(ctx.s.commit, lastIndex(ctx.s.log))),
    conflictTerm: 0,
    conflictIndex: 0,
    seq: m.seq,
  };
  send(ctx, response);
}

/** Rejects an append whose prevIndex/prevTerm we don't hold, with a back-off hint. */
function reject(ctx: StepContext, m: AppendEntries): void {
  const log = ctx.s.log;
  const last = lastIndex(log);
  let conflictTerm = 0;
  let conflictIndex = last + 1;
  if (m.prevIndex <= last) {
    conflictTerm = termAt(log, m.prevIndex) ?? 0;
    conflictIndex = conflictTerm === 0 ? ctx.s.commit + 1 : firstIndexOfTerm(log, conflictTerm) ?? m.prevIndex;
  }
  const response: AppendEntriesResponse = {
    ...header(ctx, m.from),
    type: "AppendEntriesResponse",
    success: false,
    index: m.prevIndex,
    conflictTerm,
    conflictIndex: Math.max(1, conflictIndex),
    seq: m.seq,
  };
  send(ctx, response);
}

/** Drops entries from `from` on, rolling membership back past removed config entries (§4.1). */
function truncateFrom(ctx: StepContext, from: Index): void {
  const configs = ctx.s.configs.filter((c) => c.index < from);
  const rolledBack = configs.length !== ctx.s.configs.length;
  ctx.s = { ...ctx.s, log: truncateAfter(ctx.s.log, from - 1), configs };
  ctx.truncatedFrom = ctx.truncatedFrom === undefined ? from : Math.min(ctx.truncatedFrom, from);
  // Entries appended earlier in this step at or beyond `from` are gone too.
  const keep = ctx.appended.filter((e) => e.index < from);
  ctx.appended.length = 0;
  ctx.appended.push(...keep);
  if (rolledBack) {
    const current = configs[configs.length - 1]!;
    ctx.fx.push({ type: "MembershipChanged", membership: current.membership, index: current.index });
  }
}

/**
 * A snapshot chunk from the leader. Snapshots we already cover are answered
 * at once; otherwise the chunk goes to the interpreter, which stores it and,
 * on the last chunk, restores the state machine and reports SnapshotRestored.
 */
export function handleInstallSnapshot(ctx: StepContext, m: InstallSnapshot): void {
  if (m.meta.index <= ctx.s.commit) {
    const response: InstallSnapshotResponse = {
      ...header(ctx, m.from),
      type: "InstallSnapshotResponse",
      index: ctx.s.commit,
      offset: 0,
      done: true,
      success: true,
    };
    send(ctx, response);
    return;
  }
  ctx.fx.push({
    type: "ReceiveSnapshotChunk",
    from: m.from,
    meta: m.meta,
    offset: m.offset,
    data: m.data,
    done: m.done,
    checksum: m.checksum,
  });
}

/**
 * The state machine now reflects `meta`: adopt it as the log's base. If our
 * log already holds the snapshot's last entry, keep what follows (§7); else
 * discard the whole log.
 */
export function restoreSnapshot(ctx: StepContext, meta: SnapshotMeta): void {
  const s = ctx.s;
  if (meta.index <= s.applied) return;
  const keepsSuffix = termAt(s.log, meta.index) === meta.term;
  const log = keepsSuffix ? compactLog(s.log, meta.index, meta.term) : emptyLog(meta.index, meta.term);
  if (!keepsSuffix && lastIndex(s.log) > s.log.offset) {
    ctx.truncatedFrom = Math.min(ctx.truncatedFrom ?? Infinity, s.log.offset + 1);
    ctx.appended.length = 0;
  }
  const configs = [
    { index: meta.index, membership: meta.membership },
    ...(keepsSuffix ? s.configs.filter((c) => c.index > meta.index) : []),
  ];
  ctx.s = {
    ...s,
    log,
    configs,
    snapshot: meta,
    commit: Math.max(s.commit, meta.index),
    applied: meta.index,
    snapshotRequested: meta.index,
  };
  ctx.fx.push({ type: "Compact", index: meta.index });
  ctx.fx.push({ type: "MembershipChanged", membership: membershipOf(ctx.s), index: meta.index });
  ctx.fx.push({ type: "Committed", index: ctx.s.commit });
  const leader = ctx.s.role.kind === "follower" ? ctx.s.role.leader : undefined;
  if (leader !== undefined) {
    const response: InstallSnapshotResponse = {
      ...header(ctx, leader),
      type: "InstallSnapshotResponse",
      index: meta.index,
      offset: 0,
      done: true,
      success: true,
    };
    send(ctx, response);
  }
}
