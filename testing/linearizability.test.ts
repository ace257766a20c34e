import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkOperations,
  type CheckResult,
  describeHistory,
  HistoryRecorder,
  type KvInput,
  kvModel,
  type KvOutput,
  type Model,
  type Operation,
} from "./linearizability.ts";

type KvOp = Operation<KvInput, KvOutput>;

const get = (key: string) => ({ op: "get", key }) as const;
const put = (key: string, value: string) => ({ op: "put", key, value }) as const;
const del = (key: string) => ({ op: "delete", key }) as const;
const cas = (key: string, prev: string | undefined, value: string) => ({ op: "cas", key, prev, value }) as const;

/** One operation; `ret = Infinity` makes it pending (output unknown). */
function op(
  client: number,
  input: KvInput,
  output: KvOutput | undefined,
  call: number,
  ret: number,
): KvOp {
  return { client, input, output, call, ret };
}

/** The same model without partitioning: checks the whole history at once. */
const kvWhole: Model<
  ReadonlyMap<string, string>,
  KvInput,
  KvOutput
> = { ...kvModel, partition: undefined };

function check(history: readonly KvOp[]): CheckResult<KvInput, KvOutput> {
  const partitioned = checkOperations(kvModel, history);
  const whole = checkOperations(kvWhole, history);
  // P-compositionality: per-key checking must agree with checking it whole.
  assert.equal(partitioned.result, whole.result);
  return partitioned;
}

function assertOk(history: readonly KvOp[]): void {
  const r = check(history);
  assert.equal(
    r.result,
    "ok",
    r.result === "ok" ? "" : `${r.explanation}\n--\n${describeHistory(kvModel, history)}`,
  );
}

function assertIllegal(history: readonly KvOp[]): void {
  const r = check(history);
  assert.equal(
    r.result,
    "illegal",
    `expected illegal:\n${describeHistory(kvModel, history)}`,
  );
}

describe("linearizable histories", () => {
  test("empty history", () => assertOk([]));

  test("sequential history", () =>
    assertOk([
      op(1, get("x"), { value: undefined }, 0, 1),
      op(1, put("x", "a"), {}, 2, 3),
      op(2, get("x"), { value: "a" }, 4, 5),
      op(1, put("x", "b"), {}, 6, 7),
      op(2, get("x"), { value: "b" }, 8, 9),
      op(2, del("x"), {}, 10, 11),
      op(1, get("x"), { value: undefined }, 12, 13),
    ]));

  test("overlapping writes, later read sees either", () => {
    for (const seen of ["a", "b"]) {
      assertOk([
        op(1, put("x", "a"), {}, 0, 10),
        op(2, put("x", "b"), {}, 1, 9),
        op(3, get("x"), { value: seen }, 11, 12),
      ]);
    }
  });

  test("reads overlapping a write see old then new", () =>
    assertOk([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), {}, 2, 20),
      op(3, get("x"), { value: "a" }, 3, 4),
      op(3, get("x"), { value: "b" }, 5, 6),
      op(4, get("x"), { value: "b" }, 21, 22),
    ]));

  test("cas race where exactly one wins", () =>
    assertOk([
      op(1, put("x", "0"), {}, 0, 1),
      op(2, cas("x", "0", "1"), { ok: false }, 2, 10),
      op(3, cas("x", "0", "2"), { ok: true }, 3, 9),
      op(4, cas("x", "0", "3"), { ok: false }, 4, 8),
      op(1, get("x"), { value: "2" }, 11, 12),
    ]));

  test("cas on an absent key", () =>
    assertOk([
      op(1, cas("x", undefined, "a"), { ok: true }, 0, 1),
      op(2, cas("x", undefined, "b"), { ok: false }, 2, 3),
      op(1, get("x"), { value: "a" }, 4, 5),
    ]));

  test("independent keys interleave freely", () =>
    assertOk([
      op(1, put("x", "a"), {}, 0, 5),
      op(2, put("y", "b"), {}, 1, 6),
      op(3, get("y"), { value: "b" }, 7, 8),
      op(4, get("x"), { value: "a" }, 7, 9),
    ]));
});

describe("non-linearizable histories are rejected", () => {
  test("stale read after a completed write", () =>
    assertIllegal([
      op(1, put("x", "a"), {}, 0, 1),
      op(1, put("x", "b"), {}, 2, 3),
      op(2, get("x"), { value: "a" }, 4, 5),
    ]));

  test("reads see new then old, against real time", () => {
    const prefix = [
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), {}, 2, 20),
      op(3, get("x"), { value: "b" }, 3, 4),
    ];
    assertOk(prefix); // on its own, reading the concurrent write is fine
    assertIllegal([...prefix, op(4, get("x"), { value: "a" }, 5, 6)]);
  });

  test("read of a value never written", () =>
    assertIllegal([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, get("x"), { value: "z" }, 2, 3),
    ]));

  test("read of a key never written returns a value", () => assertIllegal([op(1, get("x"), { value: "a" }, 0, 1)]));

  test("two successful cas with the same prev", () =>
    assertIllegal([
      op(1, put("x", "0"), {}, 0, 1),
      op(2, cas("x", "0", "1"), { ok: true }, 2, 10),
      op(3, cas("x", "0", "2"), { ok: true }, 3, 9),
    ]));

  test("failed cas although the value matched", () =>
    assertIllegal([
      op(1, put("x", "0"), {}, 0, 1),
      op(2, cas("x", "0", "1"), { ok: false }, 2, 3),
    ]));

  test("lost acknowledged write on one key among healthy keys", () =>
    assertIllegal([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("y", "1"), {}, 0, 2),
      op(2, put("y", "2"), {}, 3, 4),
      op(1, get("x"), { value: "a" }, 5, 6),
      op(3, get("y"), { value: "1" }, 7, 8),
    ]));

  test("read after a completed delete still sees the value", () =>
    assertIllegal([
      op(1, put("x", "a"), {}, 0, 1),
      op(1, del("x"), {}, 2, 3),
      op(2, get("x"), { value: "a" }, 4, 5),
    ]));
});

describe("pending operations", () => {
  test("pending write observed by a later read", () =>
    assertOk([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), undefined, 2, Infinity),
      op(3, get("x"), { value: "a" }, 5, 6),
      op(3, get("x"), { value: "b" }, 7, 8),
    ]));

  test("pending write nobody observes", () =>
    assertOk([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), undefined, 2, Infinity),
      op(3, get("x"), { value: "a" }, 10, 11),
    ]));

  test("pending write cannot take effect before its call", () =>
    assertIllegal([
      op(1, get("x"), { value: "b" }, 0, 1),
      op(2, put("x", "b"), undefined, 2, Infinity),
    ]));

  test("pending write cannot be observed and then undone", () =>
    assertIllegal([
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), undefined, 2, Infinity),
      op(3, get("x"), { value: "b" }, 5, 6),
      op(3, get("x"), { value: "a" }, 7, 8),
    ]));

  test("pending ops may be left out entirely", () => {
    // A model that can never apply an op of unknown outcome: only omission
    // makes these histories linearizable.
    const strict: Model<ReadonlyMap<string, string>, KvInput, KvOutput> = {
      ...kvModel,
      step: (state, input, output) => output === undefined ? { ok: false } : kvModel.step(state, input, output),
    };
    const history = [
      op(1, put("x", "a"), {}, 0, 1),
      op(2, put("x", "b"), undefined, 2, Infinity),
      op(3, get("x"), { value: "a" }, 10, 11),
      op(4, put("y", "c"), undefined, 12, Infinity),
    ];
    assert.equal(checkOperations(strict, history).result, "ok");
    assert.equal(
      checkOperations(strict, [
        ...history,
        op(3, get("x"), { value: "b" }, 12, 13),
      ]).result,
      "illegal",
    );
  });

  test("pending cas decides by the state it lands on", () => {
    const base = [
      op(1, put("x", "0"), {}, 0, 1),
      op(2, cas("x", "0", "1"), undefined, 2, Infinity),
    ];
    assertOk([...base, op(3, get("x"), { value: "1" }, 5, 6)]);
    assertOk([...base, op(3, get("x"), { value: "0" }, 5, 6)]);
    assertIllegal([...base, op(3, get("x"), { value: "2" }, 5, 6)]);
  });
});

describe("results and descriptions", () => {
  test("illegal result names the partition, prefix and blocked read", () => {
    const history = [
      op(1, put("y", "1"), {}, 0, 1),
      op(1, put("x", "a"), {}, 0, 1),
      op(1, put("x", "b"), {}, 2, 3),
      op(2, get("x"), { value: "a" }, 4, 5),
    ];
    const r = checkOperations(kvModel, history);
    assert.equal(r.result, "illegal");
    if (r.result !== "illegal") return;
    assert.equal(r.partition.length, 3);
    assert.ok(r.partition.every((o) => o.input.key === "x"));
    assert.deepEqual(r.longestPrefix, [history[1], history[2]]);
    assert.equal(r.blocked, history[3]);
    assert.deepEqual(r.candidates, [history[3]]);
    assert.match(r.explanation, /longest linearizable prefix: 2 ops/);
    assert.match(r.explanation, /state after it: \{ x="b" \}/);
    assert.match(r.explanation, /client 2 \[4, 5\] get x -> "a"/);
  });

  test("describeHistory renders one line per op in call order", () => {
    const text = describeHistory(kvModel, [
      op(2, cas("k", undefined, "v"), { ok: false }, 3, 4),
      op(1, put("k", "v"), undefined, 1, Infinity),
      op(3, get("k"), { value: undefined }, 5, 6),
    ]);
    assert.equal(
      text,
      [
        `client 1 [1, ∞) put k="v" -> ?`,
        `client 2 [3, 4] cas k ∅=>"v" -> failed`,
        `client 3 [5, 6] get k -> ∅`,
      ].join("\n"),
    );
  });

  test("a model without describe helpers falls back to JSON", () => {
    const bare: Model<ReadonlyMap<string, string>, KvInput, KvOutput> = {
      init: kvModel.init,
      step: kvModel.step,
      hash: kvModel.hash,
    };
    const text = describeHistory(bare, [
      op(1, get("k"), { value: "v" }, 0, 1),
    ]);
    assert.equal(
      text,
      `client 1 [0, 1] ${JSON.stringify(get("k"))} -> ` +
        `{"value":"v"}`,
    );
  });

  test("step budget exhausted gives unknown", () => {
    const history = [
      op(1, put("x", "a"), {}, 0, 10),
      op(2, put("x", "b"), {}, 1, 9),
      op(3, get("x"), { value: "a" }, 11, 12),
    ];
    const r = checkOperations(kvModel, history, { maxSteps: 2 });
    assert.equal(r.result, "unknown");
    assert.equal(checkOperations(kvModel, history).result, "ok");
  });

  test("injected clock past the deadline gives unknown", () => {
    let t = 0;
    const r = checkOperations(kvModel, simulate(2_000, 10, 5, 7).history, {
      timeoutMs: 5,
      now: () => (t += 10),
    });
    assert.equal(r.result, "unknown");
    if (r.result === "unknown") assert.match(r.explanation, /timeout/);
  });

  test("malformed history is refused", () => {
    assert.throws(
      () => checkOperations(kvModel, [op(1, get("x"), {}, 5, 4)]),
      RangeError,
    );
    assert.throws(
      () => checkOperations(kvModel, [op(1, get("x"), {}, NaN, 4)]),
      RangeError,
    );
  });
});

describe("HistoryRecorder", () => {
  test("records calls, returns, pending and discarded operations", () => {
    const rec = new HistoryRecorder<KvInput, KvOutput>();
    const a = rec.invoke(1, put("x", "a"));
    const b = rec.invoke(2, get("x"));
    const c = rec.invoke(3, put("x", "c"));
    const d = rec.invoke(4, put("x", "d"));
    rec.complete(a, {});
    rec.complete(b, { value: "a" });
    rec.discard(d);
    assert.throws(() => rec.complete(a, {}), RangeError);
    assert.throws(() => rec.complete(99, {}), RangeError);
    assert.deepEqual(rec.history(), [
      { client: 1, input: put("x", "a"), output: {}, call: 0, ret: 4 },
      { client: 2, input: get("x"), output: { value: "a" }, call: 1, ret: 5 },
      {
        client: 3,
        input: put("x", "c"),
        output: undefined,
        call: 2,
        ret: Infinity,
      },
    ]);
    assert.equal(checkOperations(kvModel, rec.history()).result, "ok");
    void c;
  });

  test("uses the caller's clock", () => {
    let now = 100;
    const rec = new HistoryRecorder<KvInput, KvOutput>(() => now);
    const id = rec.invoke("c", get("x"));
    now = 250;
    rec.complete(id, { value: undefined });
    const [o] = rec.history();
    assert.equal(o.call, 100);
    assert.equal(o.ret, 250);
  });
});

// ---------------------------------------------------------------------------
// Generated histories

/** An independent sequential key-value store: the reference for generated outputs. */
function apply(store: Map<string, string>, input: KvInput): KvOutput {
  const current = store.get(input.key);
  switch (input.op) {
    case "get":
      return { value: current };
    case "put":
      store.set(input.key, input.value);
      return {};
    case "delete":
      store.delete(input.key);
      return {};
    case "cas":
      if (current !== input.prev) return { ok: false };
      store.set(input.key, input.value);
      return { ok: true };
  }
}

const keyArb = fc.constantFrom("a", "b", "c");
const valueArb = fc.constantFrom("1", "2", "3");
const inputArb: fc.Arbitrary<KvInput> = fc.oneof(
  keyArb.map(get),
  fc.tuple(keyArb, valueArb).map(([k, v]) => put(k, v)),
  keyArb.map(del),
  fc.tuple(keyArb, fc.option(valueArb, { nil: undefined }), valueArb).map((
    [k, p, v],
  ) => cas(k, p, v)),
);

const plannedArb = fc.record({
  input: inputArb,
  before: fc.nat(40),
  after: fc.nat(40),
  client: fc.nat(4),
  // 0: completed; 1: pending and took effect; 2: pending, never took effect.
  fate: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 2),
});

describe("generated histories", () => {
  test("stretched sequential executions are linearizable", () => {
    fc.assert(
      fc.property(fc.array(plannedArb, { maxLength: 40 }), (plan) => {
        const store = new Map<string, string>();
        const history: KvOp[] = plan.map((p, i) => {
          // The op takes effect at 10*i; any interval around that point keeps
          // the sequential order a valid linearization.
          const point = 10 * i;
          const call = point - p.before;
          if (p.fate === 2) {
            return op(p.client, p.input, undefined, call, Infinity);
          }
          const output = apply(store, p.input);
          return p.fate === 1
            ? op(p.client, p.input, undefined, call, Infinity)
            : op(p.client, p.input, output, call, point + p.after);
        });
        const r = check(history);
        assert.equal(
          r.result,
          "ok",
          r.result === "illegal" ? r.explanation : "",
        );
      }),
      { numRuns: 200 },
    );
  });

  test("a changed read in a history without concurrency is illegal", () => {
    fc.assert(
      fc.property(
        fc.array(inputArb, { maxLength: 30 }),
        fc.nat(),
        fc.option(fc.constantFrom("1", "2", "3", "never"), { nil: undefined }),
        (inputs, pick, replacement) => {
          const store = new Map<string, string>();
          const all = [...inputs, get("a")];
          const history = all.map((input, i) => op(1, input, apply(store, input), 10 * i, 10 * i + 5));
          const reads = history
            .map((o, i) => ({ o, i }))
            .filter(({ o }) => o.input.op === "get");
          const { o, i } = reads[pick % reads.length];
          const seen = (o.output as KvOutput).value;
          const wrong = replacement !== seen ? replacement : "other";
          const mutated = history.with(i, { ...o, output: { value: wrong } });
          assertOk(history);
          assertIllegal(mutated);
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// Performance sanity

/** A small deterministic PRNG (mulberry32) so the simulation is reproducible. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Simulates `clients` concurrent clients of a linearizable store: each op is
 * invoked, takes effect atomically some time later, then returns later still,
 * with the clients' steps interleaved at random. Ops in flight at the end stay
 * pending.
 */
function simulate(
  ops: number,
  keys: number,
  clients: number,
  seed: number,
): { history: KvOp[] } {
  const random = prng(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const rec = new HistoryRecorder<KvInput, KvOutput>();
  const store = new Map<string, string>();
  type Busy = { id: number; input: KvInput; output?: KvOutput };
  const busy: (Busy | undefined)[] = Array(clients).fill(undefined);
  let issued = 0;
  let counter = 0;
  while (issued < ops || busy.some((b) => b !== undefined)) {
    const c = pick(clients);
    const b = busy[c];
    if (b === undefined) {
      if (issued >= ops) continue;
      const key = `k${pick(keys)}`;
      const roll = pick(10);
      const input: KvInput = roll < 4
        ? get(key)
        : roll < 7
        ? put(key, `v${counter++}`)
        : roll < 8
        ? del(key)
        : cas(key, store.get(key), `v${counter++}`);
      busy[c] = { id: rec.invoke(c, input), input };
      issued++;
    } else if (b.output === undefined) {
      b.output = apply(store, b.input);
    } else {
      rec.complete(b.id, b.output);
      busy[c] = undefined;
      // Near the end, leave some operations pending to exercise that path.
      if (issued >= ops - clients && pick(2) === 0) break;
    }
  }
  return { history: rec.history() };
}

describe("performance sanity", () => {
  test("2,000 ops over 10 keys with 5 concurrent clients", () => {
    const { history } = simulate(2_000, 10, 5, 42);
    assert.ok(history.length >= 1_990);
    const r = checkOperations(kvModel, history);
    assert.equal(r.result, "ok", r.result === "illegal" ? r.explanation : "");
  });
});
