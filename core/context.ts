/**
 * The scratchpad of one `step`: the state as it evolves and the effects
 * collected so far. It is created and discarded inside `step`, so mutating
 * it keeps `step` pure from the caller's point of view.
 *
 * @module
 */

import type { RaftState } from "./state.ts";
import type { Entry, Index, Message, MessageHeader, NodeId, RaftEffect, TimerKind } from "./types.ts";
import { nextRandom, randomBelow } from "./rng.ts";

/** What one step has produced so far. */
export interface StepContext {
  /** The state as of now in this step. */
  s: RaftState;
  /** Effects in emission order (the Persist effect is placed first when the step ends). */
  readonly fx: RaftEffect[];
  /** Entries appended to the log during this step, to persist. */
  readonly appended: Entry[];
  /** Lowest index truncated during this step, if any. */
  truncatedFrom: Index | undefined;
  /** The interpreter's clock reading carried by the input, if any (used only to date lease rounds). */
  now: number | undefined;
}

/** Starts a step from `s`. */
export function newContext(s: RaftState): StepContext {
  return { s, fx: [], appended: [], truncatedFrom: undefined, now: undefined };
}

/** The common fields of a message from this node to `to` in the current term. */
export function header(ctx: StepContext, to: NodeId): MessageHeader {
  return { group: ctx.s.config.group, from: ctx.s.config.id, to, term: ctx.s.term };
}

/** Queues a message for transmission. */
export function send(ctx: StepContext, message: Message): void {
  ctx.fx.push({ type: "Send", message });
}

/** Arms `timer` for `ms`. */
export function setTimer(ctx: StepContext, timer: TimerKind, ms: number): void {
  ctx.fx.push({ type: "SetTimer", timer, ms });
}

/**
 * Re-arms the election timer. The wait before campaigning is randomized in
 * [T, 2T) (paper §5.2); a sticky follower (see FollowerRole.sticky) waits it in
 * two stages — exactly T, its stickiness period, then {@link electionJitter} —
 * everyone else waits it at once.
 */
export function resetElectionTimer(ctx: StepContext): void {
  const role = ctx.s.role;
  const base = ctx.s.config.electionTimeoutMs;
  if (role.kind === "follower" && role.sticky) setTimer(ctx, "election", base);
  else setTimer(ctx, "election", base + electionJitter(ctx));
}

/** Draws the random part of an election timeout, uniform in [0, T), from the state's PRNG. */
export function electionJitter(ctx: StepContext): number {
  const rng = nextRandom(ctx.s.rng);
  ctx.s = { ...ctx.s, rng };
  return randomBelow(rng, ctx.s.config.electionTimeoutMs);
}
