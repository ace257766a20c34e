/**
 * A small bank: accounts with balances, and transfers between them. The
 * replicated state machine keeps two invariants on every replica — money is
 * conserved (the balances always sum to the opening total) and no account is
 * ever overdrawn — and applies each transfer once, by its operation id, even
 * if the network delivered its proposal twice (client sessions, thesis §6.3).
 *
 * `bankService()` puts it under plank's deterministic simulator; see
 * `simulate.ts` and the README.
 *
 * @module
 */

import { jsonCodec, type Model, type SimService } from "../../testing.ts";

/** A command in the log. */
export type BankCommand =
  | {
    readonly opId: number;
    readonly op: "transfer";
    readonly from: string;
    readonly to: string;
    readonly amount: number;
  }
  | { readonly opId: number; readonly op: "nop" };

/** What a client asks for. */
export type BankInput =
  | { readonly op: "transfer"; readonly from: string; readonly to: string; readonly amount: number }
  | { readonly op: "balance"; readonly account: string };

/** What a client is told: whether a transfer went through, or a balance. */
export interface BankOutput {
  /** For a transfer: false when the source lacked the funds. */
  readonly ok?: boolean;
  /** For a balance read. */
  readonly balance?: number;
}

/** The accounts and what each opens with. */
export const OPENING: Readonly<Record<string, number>> = { alice: 100, bob: 100, carol: 100, dave: 100 };
const TOTAL = Object.values(OPENING).reduce((a, b) => a + b, 0);

/** The ways `BankMachine` can be broken on purpose, to see the simulator catch it. */
export type Breakage = "none" | "overdraft" | "no-dedup";

/** One replica's bank. */
export class BankMachine {
  /** Balance per account. */
  readonly balances: Map<string, number>;
  /** Result per operation id already applied. */
  readonly done: Map<number, boolean>;
  readonly #breakage: Breakage;

  /** A bank at its opening balances (or restored state). */
  constructor(breakage: Breakage = "none", balances?: Map<string, number>, done?: Map<number, boolean>) {
    this.#breakage = breakage;
    this.balances = balances ?? new Map(Object.entries(OPENING));
    this.done = done ?? new Map();
  }

  /** Applies a command once per operation id; returns whether a transfer went through. */
  apply(command: BankCommand): boolean {
    const seen = this.done.get(command.opId);
    if (seen !== undefined && this.#breakage !== "no-dedup") return seen;
    let ok = true;
    if (command.op === "transfer") {
      const from = this.balances.get(command.from) ?? 0;
      ok = command.from !== command.to && (this.#breakage === "overdraft" || from >= command.amount);
      if (ok) {
        this.balances.set(command.from, from - command.amount);
        this.balances.set(command.to, (this.balances.get(command.to) ?? 0) + command.amount);
      }
    }
    this.done.set(command.opId, ok);
    return ok;
  }

  /** What is wrong with this replica, if anything: money created or destroyed, or an account overdrawn. */
  check(): string | undefined {
    let sum = 0;
    for (const [account, balance] of this.balances) {
      if (balance < 0) return `${account} is overdrawn (${balance})`;
      sum += balance;
    }
    return sum === TOTAL ? undefined : `the balances sum to ${sum}, not ${TOTAL}`;
  }

  /** The snapshot bytes. */
  serialize(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ balances: [...this.balances], done: [...this.done] }));
  }

  /** A replica rebuilt from {@link serialize}'s bytes. */
  static restore(bytes: Uint8Array, breakage: Breakage = "none"): BankMachine {
    const s = JSON.parse(new TextDecoder().decode(bytes)) as {
      balances: [string, number][];
      done: [number, boolean][];
    };
    return new BankMachine(breakage, new Map(s.balances), new Map(s.done));
  }
}

/** The sequential specification: one bank, transfers and balance reads in some total order. */
export const bankModel: Model<ReadonlyMap<string, number>, BankInput, BankOutput> = {
  init: () => new Map(Object.entries(OPENING)),
  step(state, input, output) {
    if (input.op === "balance") {
      return { ok: output === undefined || output.balance === (state.get(input.account) ?? 0), state };
    }
    const from = state.get(input.from) ?? 0;
    const goes = input.from !== input.to && from >= input.amount;
    if (output !== undefined && output.ok !== goes) return { ok: false };
    if (!goes) return { ok: true, state };
    const next = new Map(state);
    next.set(input.from, from - input.amount);
    next.set(input.to, (state.get(input.to) ?? 0) + input.amount);
    return { ok: true, state: next };
  },
  hash: (state) => JSON.stringify([...state].sort(([a], [b]) => (a < b ? -1 : 1))),
  describeOperation(input, output) {
    if (input.op === "balance") return `balance ${input.account} -> ${output?.balance ?? "?"}`;
    return `transfer ${input.amount} ${input.from}->${input.to} -> ${
      output === undefined ? "?" : output.ok ? "ok" : "refused"
    }`;
  },
};

/** The bank as a simulated service: state machine, codec, workload, model and invariant. */
export function bankService(breakage: Breakage = "none"): SimService<BankMachine, BankCommand, BankInput, BankOutput> {
  const accounts = Object.keys(OPENING);
  return {
    name: "bank",
    codec: jsonCodec<BankCommand>(),
    create: () => new BankMachine(breakage),
    apply: (machine, command) => machine.apply(command),
    snapshot: (machine) => machine.serialize(),
    restore: (bytes) => BankMachine.restore(bytes, breakage),
    opIdOf: (command) => command.opId,
    noop: (opId) => ({ opId, op: "nop" }),
    next(rng, _client, opId) {
      if (rng.chance(0.4)) {
        const account = rng.pick(accounts);
        return { kind: "read", input: { op: "balance", account }, read: (m) => m.balances.get(account) ?? 0 };
      }
      const from = rng.pick(accounts);
      const to = rng.pick(accounts.filter((a) => a !== from));
      const amount = rng.int(1, 60);
      return {
        kind: "write",
        input: { op: "transfer", from, to, amount },
        command: { opId, op: "transfer", from, to, amount },
      };
    },
    writeOutput: (_input, ok) => ({ ok: ok as boolean }),
    readOutput: (_input, balance) => ({ balance: balance as number }),
    model: bankModel,
    invariant: (machine) => machine.check(),
    describe: (input, output) => bankModel.describeOperation!(input, output),
  };
}
