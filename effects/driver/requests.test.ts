import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../../core/types.ts";
import { OutcomeUnknown, ProposalDropped } from "../errors.ts";
import { type Outcome, Requests } from "./requests.ts";

const entry = (index: number, term = 1): Entry => ({
  index,
  term,
  kind: "command",
  data: new Uint8Array(0),
  config: undefined,
});

/** A book and a request in it whose outcome is recorded. */
function pending(book: Requests): { id: number; outcome: () => Outcome | undefined } {
  let outcome: Outcome | undefined;
  const id = book.register("propose", 0, (o) => (outcome = o));
  return { id, outcome: () => outcome };
}

describe("Requests: a proposal's answer that arrives after its entry was applied", () => {
  test("settles with the applied outcome while the entry is among the last 4,096 applied", () => {
    const book = new Requests({ timeoutMs: Infinity, leaderWaitMs: 0 });
    for (let i = 1; i <= 10_000; i++) book.applied(entry(i), true, `v${i}`);
    const late = pending(book);
    book.proposed(late.id, 10_000 - 4095, 1, 10_000);
    assert.deepEqual(late.outcome(), { ok: true, value: `v${10_000 - 4095}` });
  });

  test("settles with every one of a few applied outcomes (the ring grows as entries are applied)", () => {
    for (const n of [1, 7, 8, 9, 100, 4097]) {
      const book = new Requests({ timeoutMs: Infinity, leaderWaitMs: 0 });
      for (let i = 1; i <= n; i++) book.applied(entry(i), true, `v${i}`);
      for (let i = Math.max(1, n - 4095); i <= n; i++) {
        const late = pending(book);
        book.proposed(late.id, i, 1, n);
        assert.deepEqual(late.outcome(), { ok: true, value: `v${i}` });
      }
    }
  });

  test("fails with OutcomeUnknown once the entry is older than that", () => {
    const book = new Requests({ timeoutMs: Infinity, leaderWaitMs: 0 });
    for (let i = 1; i <= 10_000; i++) book.applied(entry(i), true, `v${i}`);
    const late = pending(book);
    book.proposed(late.id, 10_000 - 4096, 1, 10_000);
    assert.ok(late.outcome()?.ok === false);
    assert.ok((late.outcome() as { error: unknown }).error instanceof OutcomeUnknown);
  });

  test("fails with ProposalDropped when another term's entry was applied there", () => {
    const book = new Requests({ timeoutMs: Infinity, leaderWaitMs: 0 });
    book.applied(entry(1, 2), true, "other");
    const late = pending(book);
    book.proposed(late.id, 1, 1, 1);
    assert.ok((late.outcome() as { error: unknown }).error instanceof ProposalDropped);
  });

  test("knows nothing applied before a snapshot install", () => {
    const book = new Requests({ timeoutMs: Infinity, leaderWaitMs: 0 });
    book.applied(entry(5), true, "v5");
    book.skippedTo(10);
    const late = pending(book);
    book.proposed(late.id, 5, 1, 10);
    assert.ok((late.outcome() as { error: unknown }).error instanceof OutcomeUnknown);
  });
});
