/**
 * A linearizability checker for client histories, in the style of Porcupine
 * (Athalye): the Wing & Gong search with Lowe's memoization ("just-in-time
 * linearization"). The search keeps the operations in a doubly linked list of
 * call/return events sorted by time, linearizes a pending call whenever the
 * model accepts it, caches every (set of linearized operations, model state)
 * pair it has seen, and undoes the latest choice when it reaches a return
 * whose operation has not been placed.
 *
 * The history is first split into independent partitions (P-compositionality,
 * Horn & Kroening): for a key-value store, linearizability of the whole
 * history is the conjunction of linearizability per key.
 *
 * Operations that never returned (a client that timed out or crashed) carry
 * `ret = Infinity`: they may take effect anywhere after their call, or not at
 * all, and their output is unknown.
 *
 * Pure TypeScript: no runtime APIs, no clock unless one is passed in.
 *
 * @module
 */

// ---------------------------------------------------------------------------
// Vocabulary

/**
 * One client operation: what was asked, what came back, and when.
 * `call` and `ret` come from any monotonic clock shared by all clients.
 */
export interface Operation<Input, Output> {
  /** Which client issued the operation (informational; used in descriptions). */
  readonly client: number | string;
  /** What the client asked for. */
  readonly input: Input;
  /**
   * What the client got back. Ignored (treated as unknown) when `ret` is
   * `Infinity`; by convention `undefined` for such operations.
   */
  readonly output: Output | undefined;
  /** When the client sent the request. */
  readonly call: number;
  /**
   * When the client received the response; `Infinity` when it never did.
   * Such an operation may have taken effect at any time after `call`, or not
   * at all.
   */
  readonly ret: number;
}

/**
 * The outcome of applying one operation to a model state: `ok: false` when
 * the output is impossible from that state, otherwise the next state.
 */
export type StepResult<State> =
  | { readonly ok: true; readonly state: State }
  | { readonly ok: false; readonly state?: State };

/**
 * A sequential specification of the system under test.
 *
 * States must be treated as immutable: `step` returns a new state and never
 * changes the one it was given, because the search backtracks to old states.
 */
export interface Model<State, Input, Output> {
  /** The state before any operation. */
  init(): State;
  /**
   * Applies `input` to `state` and checks that `output` could have been the
   * response. `output` is `undefined` when the response is unknown (the
   * operation never returned): accept it and compute the effect the
   * operation would have had.
   */
  step(
    state: State,
    input: Input,
    output: Output | undefined,
  ): StepResult<State>;
  /**
   * A string that identifies the state for memoization. Equal states must
   * have equal hashes. Unless `equal` is given, different states must have
   * different hashes.
   */
  hash(state: State): string;
  /**
   * Optional exact comparison, used when `hash` may collide: states with the
   * same hash are then told apart with `equal`.
   */
  equal?(a: State, b: State): boolean;
  /**
   * Optional split of the history into independent parts that are checked
   * separately (e.g. by key). Without it the whole history is one part.
   */
  partition?(
    history: readonly Operation<Input, Output>[],
  ): readonly (readonly Operation<Input, Output>[])[];
  /** Optional short rendering of an operation, for failure messages. */
  describeOperation?(input: Input, output: Output | undefined): string;
  /** Optional short rendering of a state, for failure messages. */
  describeState?(state: State): string;
}

/** Options of {@linkcode checkOperations}. */
export interface CheckOptions {
  /**
   * Search steps allowed per partition (one step = one attempt to place or
   * undo an operation). When exhausted the result is `"unknown"`.
   * Default 10,000,000.
   */
  readonly maxSteps?: number;
  /**
   * Wall-clock budget for the whole check, in milliseconds, measured with
   * `now`. Without `now` this option requires a global `performance.now`.
   */
  readonly timeoutMs?: number;
  /** The clock for `timeoutMs`, in milliseconds. */
  readonly now?: () => number;
}

/** The history is linearizable. */
export interface CheckOk {
  /** Verdict. */
  readonly result: "ok";
  /** Search steps taken, over all partitions. */
  readonly steps: number;
}

/** The history is not linearizable; one offending partition is described. */
export interface CheckIllegal<Input, Output> {
  /** Verdict. */
  readonly result: "illegal";
  /** Search steps taken, over all partitions. */
  readonly steps: number;
  /** Index of the offending partition in the model's partitioning. */
  readonly partitionIndex: number;
  /** The offending partition's operations, in call order. */
  readonly partition: readonly Operation<Input, Output>[];
  /** The longest sequence of that partition's operations the search could linearize. */
  readonly longestPrefix: readonly Operation<Input, Output>[];
  /**
   * The completed operation whose return was reached without having been
   * placed, at the point where the longest prefix got stuck.
   */
  readonly blocked: Operation<Input, Output>;
  /** The operations that were candidates to come next there, none of which fit. */
  readonly candidates: readonly Operation<Input, Output>[];
  /** A short multi-line explanation, printable in a test failure. */
  readonly explanation: string;
}

/** The search ran out of budget before reaching a verdict. */
export interface CheckUnknown {
  /** Verdict. */
  readonly result: "unknown";
  /** Search steps taken, over all partitions. */
  readonly steps: number;
  /** Why the search stopped. */
  readonly explanation: string;
}

/** The verdict of {@linkcode checkOperations}. */
export type CheckResult<Input, Output> =
  | CheckOk
  | CheckIllegal<Input, Output>
  | CheckUnknown;

// ---------------------------------------------------------------------------
// The checker

const DEFAULT_MAX_STEPS = 10_000_000;
/** How often (in steps) the optional clock is read. */
const CLOCK_EVERY = 1024;

/**
 * Checks whether `history` is linearizable with respect to `model`.
 *
 * Returns `"ok"`, `"illegal"` (with the offending partition and an
 * explanation) or `"unknown"` when the step or time budget ran out.
 * Throws a `RangeError` for a malformed history (a non-finite call time, or a
 * return before its call).
 *
 * Operations whose call and return times are equal to another's are treated
 * as overlapping, so a coarse clock can only make the check more lenient,
 * never reject a correct history.
 */
export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  for (const op of history) {
    if (!Number.isFinite(op.call) || Number.isNaN(op.ret) || op.ret < op.call) {
      throw new RangeError(
        `malformed operation (call ${op.call}, return ${op.ret}): ` +
          "call must be finite and not after return",
      );
    }
  }
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  let deadline: (() => boolean) | undefined;
  if (options.timeoutMs !== undefined) {
    const now = options.now ?? (() => globalThis.performance.now());
    const end = now() + options.timeoutMs;
    deadline = () => now() > end;
  }

  const partitions = model.partition ? model.partition(history) : [history];
  let steps = 0;
  let unknown: string | undefined;
  for (let i = 0; i < partitions.length; i++) {
    const ops = [...partitions[i]].sort((a, b) => a.call - b.call);
    if (deadline?.()) {
      unknown ??= `timeout before partition ${i}`;
      break;
    }
    const outcome = searchPartition(model, ops, maxSteps, deadline);
    steps += outcome.steps;
    if (outcome.kind === "illegal") {
      const longestPrefix = outcome.prefix.map((j) => ops[j]);
      const blocked = ops[outcome.blocked];
      const candidates = outcome.candidates.map((j) => ops[j]);
      return {
        result: "illegal",
        steps,
        partitionIndex: i,
        partition: ops,
        longestPrefix,
        blocked,
        candidates,
        explanation: explainIllegal(model, {
          partitionIndex: i,
          partitionSize: ops.length,
          longestPrefix,
          stateAfterPrefix: outcome.state,
          blocked,
          candidates,
        }),
      };
    }
    if (outcome.kind === "unknown") {
      unknown ??= `partition ${i} (${ops.length} ops): ${outcome.reason} ` +
        `after ${outcome.steps} steps`;
    }
  }
  return unknown === undefined ? { result: "ok", steps } : { result: "unknown", steps, explanation: unknown };
}

/** One call or return event in the search's linked list. */
interface Event {
  /** Index of the operation in the partition. */
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  /** For a call: its return event. */
  match: Event | undefined;
  prev: Event | undefined;
  next: Event | undefined;
}

type SearchOutcome<State> =
  | { readonly kind: "ok"; readonly steps: number }
  | {
    readonly kind: "unknown";
    readonly steps: number;
    readonly reason: string;
  }
  | {
    readonly kind: "illegal";
    readonly steps: number;
    readonly prefix: readonly number[];
    readonly state: State;
    readonly blocked: number;
    readonly candidates: readonly number[];
  };

/** Builds the sorted event list behind a sentinel head. */
function buildEvents<Input, Output>(
  ops: readonly Operation<Input, Output>[],
): Event {
  const events: Event[] = [];
  ops.forEach((op, i) => {
    const ret: Event = {
      op: i,
      isCall: false,
      time: op.ret,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    events.push(
      {
        op: i,
        isCall: true,
        time: op.call,
        match: ret,
        prev: undefined,
        next: undefined,
      },
      ret,
    );
  });
  // At equal times calls come first, so touching intervals overlap: a coarse
  // clock then errs towards accepting, never towards a false alarm.
  events.sort((a, b) =>
    a.time !== b.time ? (a.time < b.time ? -1 : 1) : a.isCall !== b.isCall ? (a.isCall ? -1 : 1) : a.op - b.op
  );
  const head: Event = {
    op: -1,
    isCall: false,
    time: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Removes a call and its return from the list (the operation is placed). */
function lift(call: Event): void {
  const ret = call.match as Event;
  (call.prev as Event).next = call.next;
  (call.next as Event).prev = call.prev;
  (ret.prev as Event).next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts a lifted call and its return back, exactly undoing {@linkcode lift}. */
function unlift(call: Event): void {
  const ret = call.match as Event;
  (ret.prev as Event).next = ret;
  if (ret.next) ret.next.prev = ret;
  (call.prev as Event).next = call;
  (call.next as Event).prev = call;
}

/** A fixed-size bitset of placed operations with a compact string key. */
class Bitset {
  readonly #words: Uint16Array;
  constructor(size: number) {
    this.#words = new Uint16Array(Math.ceil(size / 16));
  }
  set(i: number): void {
    this.#words[i >> 4] |= 1 << (i & 15);
  }
  clear(i: number): void {
    this.#words[i >> 4] &= ~(1 << (i & 15));
  }
  key(): string {
    // One UTF-16 code unit per 16 operations keeps cache keys short.
    // Chunked so huge partitions stay under engines' argument-count limits.
    const words = this.#words;
    let s = "";
    for (let i = 0; i < words.length; i += 8192) {
      s += String.fromCharCode.apply(
        null,
        words.subarray(i, i + 8192) as unknown as number[],
      );
    }
    return s;
  }
}

/** The memo of (placed operations, state) pairs already explored (Lowe). */
class Memo<State> {
  readonly #seen = new Map<string, State[] | true>();
  readonly #hash: (s: State) => string;
  readonly #equal: ((a: State, b: State) => boolean) | undefined;
  constructor(
    hash: (s: State) => string,
    equal: ((a: State, b: State) => boolean) | undefined,
  ) {
    this.#hash = hash;
    this.#equal = equal;
  }
  /** Records the pair; false when it had been seen before. */
  add(bits: Bitset, state: State): boolean {
    const key = bits.key() + "\u0000" + this.#hash(state);
    const bucket = this.#seen.get(key);
    if (this.#equal === undefined) {
      if (bucket !== undefined) return false;
      this.#seen.set(key, true);
      return true;
    }
    if (bucket === undefined || bucket === true) {
      this.#seen.set(key, [state]);
      return true;
    }
    const equal = this.#equal;
    if (bucket.some((s) => equal(s, state))) return false;
    bucket.push(state);
    return true;
  }
}

/** The Wing & Gong / Lowe search over one partition. */
function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  maxSteps: number,
  deadline: (() => boolean) | undefined,
): SearchOutcome<State> {
  const head = buildEvents(ops);
  const placed = new Bitset(ops.length);
  const memo = new Memo<State>(
    (s) => model.hash(s),
    model.equal?.bind(model),
  );
  const stack: { call: Event; state: State }[] = [];
  let state = model.init();
  let steps = 0;
  let best:
    | {
      prefix: number[];
      state: State;
      blocked: number;
      candidates: number[];
    }
    | undefined;

  let entry = head.next;
  while (entry !== undefined) {
    steps++;
    if (steps > maxSteps) {
      return { kind: "unknown", steps, reason: "step budget exhausted" };
    }
    if (deadline && steps % CLOCK_EVERY === 0 && deadline()) {
      return { kind: "unknown", steps, reason: "timeout" };
    }
    if (entry.isCall) {
      const op = ops[entry.op];
      const pending = op.ret === Infinity;
      const r = model.step(state, op.input, pending ? undefined : op.output);
      if (r.ok) {
        placed.set(entry.op);
        if (memo.add(placed, r.state)) {
          stack.push({ call: entry, state });
          state = r.state;
          lift(entry);
          entry = head.next;
          continue;
        }
        placed.clear(entry.op);
      }
      entry = entry.next;
      continue;
    }
    // A return event whose operation is not placed yet.
    if (ops[entry.op].ret === Infinity) {
      // Returns at Infinity sort last, so every completed operation has been
      // placed; the pending ones left over simply never took effect.
      return { kind: "ok", steps };
    }
    if (best === undefined || stack.length > best.prefix.length) {
      const candidates: number[] = [];
      for (let e = head.next; e !== entry && e; e = e.next) {
        if (e.isCall) candidates.push(e.op);
      }
      best = {
        prefix: stack.map((s) => s.call.op),
        state,
        blocked: entry.op,
        candidates,
      };
    }
    const top = stack.pop();
    if (top === undefined) {
      return {
        kind: "illegal",
        steps,
        prefix: best.prefix,
        state: best.state,
        blocked: best.blocked,
        candidates: best.candidates,
      };
    }
    state = top.state;
    placed.clear(top.call.op);
    unlift(top.call);
    entry = top.call.next;
  }
  return { kind: "ok", steps };
}

// ---------------------------------------------------------------------------
// Descriptions

const PREFIX_TAIL = 10;

function describeTime(op: Operation<unknown, unknown>): string {
  return op.ret === Infinity ? `[${op.call}, ∞)` : `[${op.call}, ${op.ret}]`;
}

function describeOne<State, Input, Output>(
  model: Model<State, Input, Output>,
  op: Operation<Input, Output>,
): string {
  const pending = op.ret === Infinity;
  const body = model.describeOperation
    ? model.describeOperation(op.input, pending ? undefined : op.output)
    : `${JSON.stringify(op.input)} -> ${pending ? "?" : JSON.stringify(op.output) ?? "undefined"}`;
  return `client ${op.client} ${describeTime(op)} ${body}`;
}

/**
 * Renders operations as short text lines, one per operation in call order:
 * `client 2 [10, 14] put x="a" -> ok`. Uses the model's `describeOperation`
 * when it has one; pending operations show `[call, ∞)`.
 */
export function describeHistory<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
): string {
  return [...history]
    .sort((a, b) => a.call - b.call)
    .map((op) => describeOne(model, op))
    .join("\n");
}

function explainIllegal<State, Input, Output>(
  model: Model<State, Input, Output>,
  found: {
    partitionIndex: number;
    partitionSize: number;
    longestPrefix: readonly Operation<Input, Output>[];
    stateAfterPrefix: State;
    blocked: Operation<Input, Output>;
    candidates: readonly Operation<Input, Output>[];
  },
): string {
  const indent = (lines: string) => lines === "" ? "  (none)" : lines.replace(/^/gm, "  ");
  const prefix = found.longestPrefix;
  const shown = prefix.slice(-PREFIX_TAIL);
  const state = model.describeState ? model.describeState(found.stateAfterPrefix) : model.hash(found.stateAfterPrefix);
  const lines = [
    `not linearizable: partition ${found.partitionIndex} ` +
    `(${found.partitionSize} ops)`,
    `longest linearizable prefix: ${prefix.length} ops` +
    (prefix.length > shown.length
      ? ` (last ${shown.length} shown, in linearization order)`
      : " (in linearization order)"),
    indent(shown.map((op) => describeOne(model, op)).join("\n")),
    `state after it: ${state}`,
    "none of these could come next:",
    indent(describeHistory(model, found.candidates)),
    "yet this one had to take effect before it returned:",
    indent(describeOne(model, found.blocked)),
  ];
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Recording histories

/** A mutable operation record inside {@linkcode HistoryRecorder}. */
interface RecordedOperation<Input, Output> {
  client: number | string;
  input: Input;
  output: Output | undefined;
  call: number;
  ret: number;
  discarded: boolean;
}

/**
 * Builds a history from call and return events recorded by concurrent
 * clients. Time comes from `clock`; the default is a counter that ticks on
 * every event, which is a valid real-time clock for clients sharing one
 * JavaScript event loop (events are recorded in the order they happen).
 */
export class HistoryRecorder<Input, Output> {
  readonly #clock: () => number;
  readonly #ops: RecordedOperation<Input, Output>[] = [];

  /** Creates a recorder reading time from `clock` (default: an event counter). */
  constructor(clock?: () => number) {
    let tick = 0;
    this.#clock = clock ?? (() => tick++);
  }

  /** Records that `client` sent `input`; returns the id to complete it with. */
  invoke(client: number | string, input: Input): number {
    this.#ops.push({
      client,
      input,
      output: undefined,
      call: this.#clock(),
      ret: Infinity,
      discarded: false,
    });
    return this.#ops.length - 1;
  }

  /** Records the response to operation `id`. */
  complete(id: number, output: Output): void {
    const op = this.#open(id);
    op.output = output;
    op.ret = this.#clock();
  }

  /**
   * Drops operation `id`: the client knows for certain it did not take
   * effect (for instance, a node refused it as not the leader). Use this only
   * for definite failures; a timeout must stay pending.
   */
  discard(id: number): void {
    this.#open(id).discarded = true;
  }

  /**
   * The history so far. Operations not completed have `ret = Infinity` and
   * `output = undefined`.
   */
  history(): Operation<Input, Output>[] {
    return this.#ops
      .filter((op) => !op.discarded)
      .map(({ client, input, output, call, ret }) => ({
        client,
        input,
        output,
        call,
        ret,
      }));
  }

  #open(id: number): RecordedOperation<Input, Output> {
    const op = this.#ops[id];
    if (op === undefined) throw new RangeError(`unknown operation id ${id}`);
    if (op.ret !== Infinity || op.discarded) {
      throw new RangeError(`operation ${id} was already completed`);
    }
    return op;
  }
}

// ---------------------------------------------------------------------------
// A key-value model

/** An operation on the key-value store of {@linkcode kvModel}. */
export type KvInput =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }
  | {
    readonly op: "cas";
    readonly key: string;
    /** Expected current value; `undefined` means "absent". */
    readonly prev: string | undefined;
    readonly value: string;
  };

/**
 * A response of the key-value store: `{ value }` for `get` (`undefined` when
 * absent), `{ ok }` for `cas`, `{}` for `put` and `delete`.
 */
export interface KvOutput {
  /** The value read by `get`. */
  readonly value?: string | undefined;
  /** Whether a `cas` succeeded. */
  readonly ok?: boolean;
}

/** The state of {@linkcode kvModel}: the value of each present key. */
export type KvState = ReadonlyMap<string, string>;

function kvSet(
  state: KvState,
  key: string,
  value: string | undefined,
): KvState {
  const next = new Map(state);
  if (value === undefined) next.delete(key);
  else next.set(key, value);
  return next;
}

/**
 * A linearizable key-value store of string registers with `get`, `put`,
 * `delete` and compare-and-set (`cas` succeeds iff the current value is
 * `prev`), partitioned by key.
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    const current = state.get(input.key);
    switch (input.op) {
      case "get":
        return { ok: output === undefined || output.value === current, state };
      case "put":
        return { ok: true, state: kvSet(state, input.key, input.value) };
      case "delete":
        return { ok: true, state: kvSet(state, input.key, undefined) };
      case "cas": {
        const wins = current === input.prev;
        if (output !== undefined && output.ok !== wins) return { ok: false };
        return {
          ok: true,
          state: wins ? kvSet(state, input.key, input.value) : state,
        };
      }
    }
  },
  hash: (state) =>
    // Partitions hold one key, so this sort is almost always trivial.
    JSON.stringify([...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      let ops = byKey.get(op.input.key);
      if (ops === undefined) byKey.set(op.input.key, ops = []);
      ops.push(op);
    }
    return [...byKey.values()];
  },
  describeOperation(input, output) {
    const show = (v: string | undefined) => v === undefined ? "∅" : JSON.stringify(v);
    const result = (known: string) => output === undefined ? "?" : known;
    switch (input.op) {
      case "get":
        return `get ${input.key} -> ${result(show(output?.value))}`;
      case "put":
        return `put ${input.key}=${show(input.value)} -> ${result("ok")}`;
      case "delete":
        return `delete ${input.key} -> ${result("ok")}`;
      case "cas":
        return `cas ${input.key} ${show(input.prev)}=>${show(input.value)} -> ${result(output?.ok ? "ok" : "failed")}`;
    }
  },
  describeState: (state) =>
    state.size === 0 ? "{}" : `{ ${[...state].map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")} }`,
};
