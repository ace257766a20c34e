/**
 * Helpers for unit tests of the pure core's `step`: build nodes in a given
 * term with a given log, fold inputs through `step` collecting effects, craft
 * wire messages, and pick effects out of a step's result. They live outside
 * `core/` because `core/` is published.
 *
 * @module
 */

import { makeConfig, type RaftConfig } from "../core/config.ts";
import { lastIndex, lastTerm, sliceLog } from "../core/log.ts";
import { membershipOf } from "../core/membership.ts";
import type { RaftState } from "../core/state.ts";
import { start, step } from "../core/step.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Entry,
  EntryKind,
  Index,
  Input,
  Message,
  MessageType,
  NodeId,
  Proposal,
  RaftEffect,
  RaftEffectType,
  RequestVote,
  RequestVoteResponse,
  Term,
  TimerKind,
} from "../core/types.ts";

/** UTF-8 bytes of `text`. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** One log entry (a command unless `kind` says otherwise). */
export function entry(
  index: Index,
  term: Term,
  data: Uint8Array = new Uint8Array(0),
  kind: EntryKind = "command",
): Entry {
  return { index, term, kind, data, config: undefined };
}

/** Entries with the given terms at consecutive indexes starting at `from`. */
export function entriesOf(terms: readonly Term[], from: Index = 1): Entry[] {
  return terms.map((term, i) => entry(from + i, term, bytes(`e${from + i}`)));
}

/** How to build a node with {@link node}. */
export interface NodeOptions {
  /** Voters of the bootstrap membership (default a, b, c). */
  readonly voters?: readonly NodeId[];
  /** Learners of the bootstrap membership. */
  readonly learners?: readonly NodeId[];
  /** Persisted term (default: the last log term, or 0). */
  readonly term?: Term;
  /** Persisted vote. */
  readonly vote?: NodeId;
  /** Persisted commit index. */
  readonly commit?: Index;
  /** Terms of the durable log entries 1..n. */
  readonly log?: readonly Term[];
  /** Configuration overrides; by default pre-vote and check-quorum are OFF so each test opts in. */
  readonly config?: Partial<Omit<RaftConfig, "id">>;
}

/**
 * A follower restarted from the given persisted state (all its entries
 * durable) more than an election timeout ago, having heard from no leader
 * since: past its start-up stickiness (`freshlyStarted` for one that is not).
 */
export function node(id: NodeId, options: NodeOptions = {}): RaftState {
  return pastStartup(freshlyStarted(id, options));
}

/** `state` after its first election timeout passed with no leader heard (its start-up stickiness over). */
export function pastStartup(state: RaftState): RaftState {
  return state.role.kind === "follower" && state.role.sticky && state.role.leader === undefined
    ? step(state, { type: "Timeout", timer: "election" }).state
    : state;
}

/** A follower just restarted from the given persisted state, as `start` returns it. */
export function freshlyStarted(id: NodeId, options: NodeOptions = {}): RaftState {
  const config = makeConfig({ id, preVote: false, checkQuorum: false, ...options.config });
  const log = options.log ?? [];
  return start(config, {
    membership: membershipOf(options.voters ?? ["a", "b", "c"], options.learners ?? []),
    hardState: {
      term: options.term ?? (log.length > 0 ? log[log.length - 1]! : 0),
      vote: options.vote,
      commit: options.commit ?? 0,
    },
    entries: entriesOf(log),
  }).state;
}

/** The result of {@link run}: the final state and every effect, in order. */
export interface Run {
  /** State after the last input. */
  readonly state: RaftState;
  /** All effects of all steps, in emission order. */
  readonly effects: RaftEffect[];
}

/** Folds `step` over `inputs`, collecting effects. */
export function run(state: RaftState, ...inputs: Input[]): Run {
  const effects: RaftEffect[] = [];
  let s = state;
  for (const input of inputs) {
    const result = step(s, input);
    s = result.state;
    effects.push(...result.effects);
  }
  return { state: s, effects };
}

/** A `Timeout` input. */
export function timeout(timer: TimerKind): Input {
  return { type: "Timeout", timer };
}

/** A `Receive` input. */
export function receive(message: Message): Input {
  return { type: "Receive", message };
}

/** A `Propose` input with one proposal per payload, request ids from `firstId`. */
export function propose(payloads: readonly Uint8Array[], firstId = 1): Input {
  const proposals: Proposal[] = payloads.map((data, i) => ({ requestId: firstId + i, data }));
  return { type: "Propose", proposals };
}

/** `Persisted` for everything the node's log holds now. */
export function persistedAll(state: RaftState): Input {
  return { type: "Persisted", index: lastIndex(state.log), term: lastTerm(state.log) };
}

/** Effects of one type. */
export function effectsOf<T extends RaftEffectType>(
  effects: readonly RaftEffect[],
  type: T,
): Extract<RaftEffect, { type: T }>[] {
  return effects.filter((e): e is Extract<RaftEffect, { type: T }> => e.type === type);
}

/**
 * The effects as carried out once every write is durable: each Persist's
 * `after` effects in its place, right after it.
 */
export function flattened(effects: readonly RaftEffect[]): RaftEffect[] {
  return effects.flatMap((e): RaftEffect[] => (e.type === "Persist" ? [e, ...e.after] : [e]));
}

/**
 * Messages sent — at once, or once their step's writes are durable —
 * optionally only those of `type` and/or to `to`.
 */
export function sent<T extends MessageType = MessageType>(
  effects: readonly RaftEffect[],
  type?: T,
  to?: NodeId,
): Extract<Message, { type: T }>[] {
  return effectsOf(flattened(effects), "Send")
    .map((e) => e.message)
    .filter((m): m is Extract<Message, { type: T }> =>
      (type === undefined || m.type === type) && (to === undefined || m.to === to)
    );
}

/** The Persist effects that write something (not those that only order messages behind earlier writes). */
export function persisted(effects: readonly RaftEffect[]): Extract<RaftEffect, { type: "Persist" }>[] {
  return effectsOf(effects, "Persist").filter((p) =>
    p.hardState !== undefined || p.entries.length > 0 || p.truncateFrom !== undefined
  );
}

/** Indexes of every entry in every Apply effect, in order. */
export function appliedIndexes(effects: readonly RaftEffect[]): Index[] {
  return effectsOf(effects, "Apply").flatMap((e) => e.entries.map((x) => x.index));
}

/** Terms of the whole log of `state`, from its first held index. */
export function logTerms(state: RaftState): Term[] {
  return sliceLog(state.log, state.log.offset + 1, lastIndex(state.log)).map((e) => e.term);
}

const header = (from: NodeId, to: NodeId, term: Term) => ({ group: 0, from, to, term });

/** An AppendEntries message (defaults: no entries, commit 0, seq 0). */
export function appendEntries(
  p: {
    from: NodeId;
    to: NodeId;
    term: Term;
    prevIndex: Index;
    prevTerm: Term;
    entries?: readonly Entry[];
    commit?: Index;
    seq?: number;
  },
): AppendEntries {
  return {
    ...header(p.from, p.to, p.term),
    type: "AppendEntries",
    prevIndex: p.prevIndex,
    prevTerm: p.prevTerm,
    entries: p.entries ?? [],
    commit: p.commit ?? 0,
    seq: p.seq ?? 0,
  };
}

/** An AppendEntriesResponse (defaults: success, no hint, seq 0). */
export function appendResponse(
  p: {
    from: NodeId;
    to: NodeId;
    term: Term;
    index: Index;
    success?: boolean;
    conflictTerm?: Term;
    conflictIndex?: Index;
    seq?: number;
  },
): AppendEntriesResponse {
  return {
    ...header(p.from, p.to, p.term),
    type: "AppendEntriesResponse",
    success: p.success ?? true,
    index: p.index,
    conflictTerm: p.conflictTerm ?? 0,
    conflictIndex: p.conflictIndex ?? 0,
    seq: p.seq ?? 0,
  };
}

/** A RequestVote (defaults: real vote, not a transfer). */
export function requestVote(
  p: {
    from: NodeId;
    to: NodeId;
    term: Term;
    lastIndex: Index;
    lastTerm: Term;
    preVote?: boolean;
    transfer?: boolean;
  },
): RequestVote {
  return {
    ...header(p.from, p.to, p.term),
    type: "RequestVote",
    preVote: p.preVote ?? false,
    lastIndex: p.lastIndex,
    lastTerm: p.lastTerm,
    transfer: p.transfer ?? false,
  };
}

/** A RequestVoteResponse (defaults: real vote, granted). */
export function voteResponse(
  p: { from: NodeId; to: NodeId; term: Term; granted?: boolean; preVote?: boolean },
): RequestVoteResponse {
  return {
    ...header(p.from, p.to, p.term),
    type: "RequestVoteResponse",
    preVote: p.preVote ?? false,
    granted: p.granted ?? true,
  };
}

/**
 * Makes `state` campaign and win with votes from `voters` (pre-vote round
 * included when configured). Returns the leader's state and every effect.
 * The leader's no-op is not yet durable: follow with {@link persistedAll}.
 */
export function elect(state: RaftState, voters: readonly NodeId[]): Run {
  let r = run(state, timeout("election"));
  const effects = [...r.effects];
  for (let round = 0; round < 2 && r.state.role.kind !== "leader"; round++) {
    const pre = r.state.role.kind === "precandidate";
    const term = pre ? r.state.term + 1 : r.state.term;
    const id = r.state.config.id;
    for (const from of voters) {
      if (r.state.role.kind === "leader" || r.state.role.kind === "follower") break;
      if (pre && r.state.role.kind !== "precandidate") break;
      r = run(r.state, receive(voteResponse({ from, to: id, term, preVote: pre })));
      effects.push(...r.effects);
    }
  }
  if (r.state.role.kind !== "leader") throw new Error(`elect: ${id(state)} did not become leader`);
  return { state: r.state, effects };
}

function id(state: RaftState): NodeId {
  return state.config.id;
}

/**
 * A leader of `term`+1 elected with votes from `voters`, its no-op durable,
 * and each follower in `replicating` caught up (it acknowledged the no-op,
 * so its progress is in replicate state).
 */
export function leaderWith(
  leaderId: NodeId,
  options: NodeOptions & { readonly replicating?: readonly NodeId[] },
): RaftState {
  const voters = options.voters ?? ["a", "b", "c"];
  const others = voters.filter((v) => v !== leaderId);
  let s = elect(node(leaderId, options), others.slice(0, Math.floor(voters.length / 2))).state;
  s = step(s, persistedAll(s)).state;
  for (const f of options.replicating ?? []) {
    s = step(s, receive(appendResponse({ from: f, to: leaderId, term: s.term, index: lastIndex(s.log) }))).state;
  }
  return s;
}
