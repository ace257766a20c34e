import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appendToLog,
  compactLog,
  emptyLog,
  entryAt,
  firstIndexOfTerm,
  isUpToDate,
  lastIndex,
  lastIndexOfTerm,
  lastTerm,
  logFromEntries,
  markStable,
  type RaftLog,
  sliceLog,
  termAt,
  truncateAfter,
} from "../../core/log.ts";
import type { Entry } from "../../core/types.ts";

/** What a log version should read: a plain-array model. */
interface Model {
  readonly offset: number;
  readonly offsetTerm: number;
  readonly entries: readonly Entry[];
}

interface Version {
  readonly log: RaftLog;
  readonly model: Model;
}

type Op =
  | { readonly type: "append"; readonly from: number; readonly count: number; readonly termBump: number }
  | { readonly type: "truncate"; readonly from: number; readonly keep: number }
  | { readonly type: "compact"; readonly from: number; readonly drop: number }
  | { readonly type: "stable"; readonly from: number; readonly at: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant("append" as const),
      from: fc.nat(),
      // Mostly small batches; sometimes one big enough to cross a 4096-entry chunk boundary.
      count: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 40 }) }, {
        weight: 1,
        arbitrary: fc.integer({ min: 3000, max: 4200 }),
      }),
      termBump: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("truncate" as const), from: fc.nat(), keep: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("compact" as const), from: fc.nat(), drop: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("stable" as const), from: fc.nat(), at: fc.nat() }) },
);

function modelLast(m: Model): number {
  return m.offset + m.entries.length;
}

function modelLastTerm(m: Model): number {
  return m.entries.length > 0 ? m.entries[m.entries.length - 1]!.term : m.offsetTerm;
}

/** Applies `op` to an existing version (old or new), returning the new version. */
function apply(versions: readonly Version[], op: Op): Version {
  const { log, model } = versions[op.from % versions.length]!;
  const last = modelLast(model);
  switch (op.type) {
    case "append": {
      const term = modelLastTerm(model) + op.termBump;
      const fresh: Entry[] = [];
      for (let i = 1; i <= op.count; i++) {
        fresh.push({ index: last + i, term, kind: "command", data: new Uint8Array([i & 255]), config: undefined });
      }
      return { log: appendToLog(log, fresh), model: { ...model, entries: [...model.entries, ...fresh] } };
    }
    case "truncate": {
      const at = model.offset + (op.keep % (model.entries.length + 1));
      return { log: truncateAfter(log, at), model: { ...model, entries: model.entries.slice(0, at - model.offset) } };
    }
    case "compact": {
      if (model.entries.length === 0) return { log, model };
      const at = model.offset + 1 + (op.drop % model.entries.length);
      const term = model.entries[at - model.offset - 1]!.term;
      return {
        log: compactLog(log, at, term),
        model: { offset: at, offsetTerm: term, entries: model.entries.slice(at - model.offset) },
      };
    }
    case "stable": {
      const at = model.offset + (op.at % (model.entries.length + 1));
      return { log: markStable(log, at, termAt(log, at)!), model };
    }
  }
}

/** Asserts that `log` reads exactly what `model` says, entry objects included. */
function assertReads(log: RaftLog, model: Model, label: string): void {
  assert.equal(log.offset, model.offset, `${label}: offset`);
  assert.equal(lastIndex(log), modelLast(model), `${label}: lastIndex`);
  assert.equal(lastTerm(log), modelLastTerm(model), `${label}: lastTerm`);
  assert.equal(termAt(log, model.offset), model.offsetTerm, `${label}: offsetTerm`);
  assert.equal(termAt(log, modelLast(model) + 1), undefined, `${label}: beyond the end`);
  for (let i = 0; i < model.entries.length; i++) {
    const e = model.entries[i]!;
    if (entryAt(log, e.index) !== e) assert.fail(`${label}: entry ${e.index} changed`);
  }
  if (model.entries.length > 0) {
    const all = sliceLog(log, model.offset + 1, modelLast(model));
    assert.equal(all.length, model.entries.length, `${label}: slice length`);
    assert.ok(all.every((e, i) => e === model.entries[i]), `${label}: slice contents`);
  }
}

describe("RaftLog (shared chunked buffer)", () => {
  test("purity: folding append/truncate/compact over old and new versions never changes what an old version reads", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const versions: Version[] = [{ log: emptyLog(), model: { offset: 0, offsetTerm: 0, entries: [] } }];
        for (const op of ops) {
          versions.push(apply(versions, op));
          const v = versions[versions.length - 1]!;
          assertReads(v.log, v.model, `new version after ${op.type}`);
        }
        versions.forEach((v, i) => assertReads(v.log, v.model, `version ${i}`));
      }),
      { numRuns: 150 },
    );
  });

  test("firstIndexOfTerm / lastIndexOfTerm agree with a naive scan", () => {
    const termsArb = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 40 }).map((bumps) => {
      let t = 1;
      return bumps.map((b) => (t += b));
    });
    fc.assert(
      fc.property(termsArb, fc.nat({ max: 45 }), (terms, cut) => {
        const entries: Entry[] = terms.map((term, i) => ({
          index: i + 1,
          term,
          kind: "command",
          data: new Uint8Array(0),
          config: undefined,
        }));
        let log = logFromEntries(0, 0, entries);
        if (cut > 0 && cut <= entries.length) log = compactLog(log, cut, entries[cut - 1]!.term);
        const held = entries.filter((e) => e.index > log.offset);
        const maxTerm = terms.length > 0 ? terms[terms.length - 1]! : 0;
        for (let term = 0; term <= maxTerm + 1; term++) {
          const matching = held.filter((e) => e.term === term);
          assert.equal(firstIndexOfTerm(log, term), matching[0]?.index, `first of ${term}`);
          assert.equal(lastIndexOfTerm(log, term), matching[matching.length - 1]?.index, `last of ${term}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("§5.4.1 isUpToDate compares last terms first, then last indexes", () => {
    const log = logFromEntries(
      0,
      0,
      [1, 2, 2].map((term, i) => ({
        index: i + 1,
        term,
        kind: "command" as const,
        data: new Uint8Array(0),
        config: undefined,
      })),
    );
    assert.equal(isUpToDate(log, 1, 3), true, "newer last term wins even if shorter");
    assert.equal(isUpToDate(log, 9, 1), false, "older last term loses even if longer");
    assert.equal(isUpToDate(log, 3, 2), true, "same term, same length");
    assert.equal(isUpToDate(log, 2, 2), false, "same term, shorter");
  });

  test("thesis §10.2.1 markStable ignores a report whose term no longer matches, and truncation lowers stable", () => {
    const entries: Entry[] = [1, 1, 1].map((term, i) => ({
      index: i + 1,
      term,
      kind: "command",
      data: new Uint8Array(0),
      config: undefined,
    }));
    let log = appendToLog(emptyLog(), entries);
    assert.equal(log.stable, 0);
    log = markStable(log, 2, 1);
    assert.equal(log.stable, 2);
    log = truncateAfter(log, 1);
    assert.equal(log.stable, 1);
    log = appendToLog(log, [{ index: 2, term: 2, kind: "command", data: new Uint8Array(0), config: undefined }]);
    assert.equal(markStable(log, 2, 1).stable, 1, "stale report for the replaced entry");
    assert.equal(markStable(log, 2, 2).stable, 2);
    assert.equal(markStable(markStable(log, 2, 2), 1, 1).stable, 2, "a late report of a lower index never lowers it");
  });
});
