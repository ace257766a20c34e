/**
 * Ordering rule 1, as the core states it: what must wait for the disk rides
 * on the step's Persist (`after`); what may leave at once is a plain Send.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  appendEntries,
  appendResponse,
  effectsOf,
  elect,
  entriesOf,
  leaderWith,
  node,
  persistedAll,
  propose,
  receive,
  requestVote,
  run,
} from "../core_helpers.ts";
import { lastIndex } from "../../core/log.ts";
import { step } from "../../core/step.ts";
import type { Message, RaftEffect } from "../../core/types.ts";

const atOnce = (effects: readonly RaftEffect[]): Message[] => effectsOf(effects, "Send").map((e) => e.message);
const waiting = (effects: readonly RaftEffect[]): Message[] =>
  effectsOf(effects, "Persist").flatMap((p) => p.after.flatMap((d) => (d.type === "Send" ? [d.message] : [])));

describe("ordering rule 1: nothing that reveals state outruns the disk", () => {
  test("a follower's acknowledgement waits for the entries it acknowledges", () => {
    const r = step(
      node("b", { term: 1 }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 0, prevTerm: 0, entries: entriesOf([1, 1]) })),
    );
    assert.deepEqual(atOnce(r.effects), []);
    assert.deepEqual(waiting(r.effects).map((m) => m.type), ["AppendEntriesResponse"]);
  });

  test("a heartbeat's acknowledgement waits too, behind writes of earlier steps (an empty Persist orders it)", () => {
    const first = step(
      node("b", { term: 1 }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 0, prevTerm: 0, entries: entriesOf([1, 1]) })),
    );
    const heartbeat = step(
      first.state,
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 2, prevTerm: 1 })),
    );
    const [p] = effectsOf(heartbeat.effects, "Persist");
    assert.ok(p, "a Persist orders the answer behind the unfinished write");
    assert.deepEqual([p.entries.length, p.hardState, p.truncateFrom], [0, undefined, undefined]);
    assert.deepEqual(p.after.map((d) => d.type === "Send" && d.message.type), ["AppendEntriesResponse"]);
    assert.deepEqual(atOnce(heartbeat.effects), []);
  });

  test("a vote (granted or refused) waits for the step's writes", () => {
    const r = run(
      node("a", { term: 1 }),
      receive(requestVote({ from: "b", to: "a", term: 2, lastIndex: 0, lastTerm: 0 })),
    );
    assert.deepEqual(atOnce(r.effects), []);
    assert.deepEqual(waiting(r.effects).map((m) => m.type), ["RequestVoteResponse"]);
  });

  test("a new leader's appends wait for the write of its term; once its no-op is durable they go at once (thesis §10.2.1)", () => {
    const won = elect(node("a", { term: 1 }), ["b"]);
    const appends = (messages: readonly Message[]) => messages.filter((m) => m.type === "AppendEntries");
    assert.deepEqual(appends(atOnce(won.effects)), [], "not before the term is durable");
    assert.ok(appends(waiting(won.effects)).length > 0);
    let durable = step(won.state, persistedAll(won.state)).state;
    durable =
      step(durable, receive(appendResponse({ from: "b", to: "a", term: durable.term, index: lastIndex(durable.log) })))
        .state;
    const r = step(durable, propose([new Uint8Array([1])]));
    assert.ok(appends(atOnce(r.effects)).length > 0, "entries still being written go out at once");
    assert.equal(effectsOf(r.effects, "Persist")[0]!.entries.length, 1, "while they are being written");
  });

  test("request forwarding carries no Raft state and leaves at once", () => {
    const follower = run(
      node("b", { term: 1 }),
      receive(appendEntries({ from: "a", to: "b", term: 1, prevIndex: 0, prevTerm: 0, entries: entriesOf([1]) })),
    ).state;
    const r = run(follower, propose([new Uint8Array([1])]), { type: "ReadIndex", requestId: 9 });
    assert.deepEqual(atOnce(r.effects).map((m) => m.type), ["Propose", "ReadIndex"]);
  });

  test("a leader that steps down in a step sends nothing at once from it", () => {
    const s = leaderWith("a", { replicating: ["b"] });
    const r = step(
      s,
      receive(appendResponse({ from: "b", to: "a", term: s.term + 1, index: lastIndex(s.log), success: false })),
    );
    assert.equal(r.state.role.kind, "follower");
    assert.deepEqual(atOnce(r.effects), []);
  });
});
