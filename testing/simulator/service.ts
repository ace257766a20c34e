/**
 * What the simulator runs on every node and asks of it: the user's own state
 * machine and command codec, the clients' workload, the sequential model the
 * history is checked against, and an invariant checked on every state machine
 * after every apply. The built-in key-value service (`kv_service.ts`) is one
 * such; a user's service (a bank, a lock manager, a queue) is another.
 *
 * The network of the simulator may deliver a message twice, so a command
 * proposed once may be appended twice (a duplicated forwarded proposal): a
 * service's commands carry the operation id the simulator gives them
 * ({@link SimService.command}), and its state machine applies each id once
 * (client sessions, thesis §6.3).
 *
 * @module
 */

import type { CommandCodec } from "../../effects/command.ts";
import type { Index } from "../../core/types.ts";
import type { Model } from "../linearizability.ts";
import type { Prng } from "./prng.ts";

/** A client operation the workload asks for: a write (a command) or a read of the state machine. */
export type WorkloadOp<C, I, SM> =
  | { readonly kind: "write"; readonly input: I; readonly command: C }
  | { readonly kind: "read"; readonly input: I; readonly read: (machine: SM) => unknown };

/** The service the simulated cluster replicates. */
export interface SimService<SM, C, I, O> {
  /** A short name for traces and failure messages. */
  readonly name: string;
  /** How commands become entry bytes and back. */
  readonly codec: CommandCodec<C>;
  /** A fresh, empty state machine (one per node, and again after a crash). */
  create(): SM;
  /** Applies a committed command at `index`; returns the proposer's result. Synchronous in the simulator. */
  apply(machine: SM, command: C, index: Index): unknown;
  /** The state machine's bytes, for a snapshot. */
  snapshot(machine: SM): Uint8Array;
  /** A state machine rebuilt from {@link snapshot}'s bytes. */
  restore(bytes: Uint8Array): SM;
  /** The operation id a command carries (see the module doc). */
  opIdOf(command: C): number;
  /** A command with no effect but its id, used to probe liveness. */
  noop(opId: number): C;
  /** The next operation of client `client`, as operation `opId`, drawing from `rng`; `machine` is a node's state. */
  next(rng: Prng, client: number, opId: number, machine: SM): WorkloadOp<C, I, SM>;
  /** What the client of a write saw, from `apply`'s result. */
  writeOutput(input: I, result: unknown): O;
  /** What the client of a read saw, from its `read` function's value. */
  readOutput(input: I, value: unknown): O;
  /** The sequential specification the client history must be linearizable against. */
  // deno-lint-ignore no-explicit-any
  readonly model: Model<any, I, O>;
  /** A property every replica must keep after every apply: undefined when it holds, else what is wrong. */
  invariant?(machine: SM): string | undefined;
  /** Short text of an operation, for traces. */
  describe?(input: I, output: O | undefined): string;
}
