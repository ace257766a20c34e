/**
 * The simulator's built-in service: a small key-value store with put,
 * compare-and-set, linearizable get and a no-op, deduplicating commands by
 * operation id (client sessions, thesis §6.3) so that a proposal the network
 * duplicated takes effect once; checked against `kvModel`.
 *
 * @module
 */

import type { Index } from "../../core/types.ts";
import { jsonCodec } from "../../effects/command.ts";
import { type KvInput, kvModel, type KvOutput } from "../linearizability.ts";
import type { SimService } from "./service.ts";

/** A command carried in a log entry. `opId` is unique per client operation. */
export type KvCommand =
  | { readonly opId: number; readonly op: "put"; readonly key: string; readonly value: string }
  | {
    readonly opId: number;
    readonly op: "cas";
    readonly key: string;
    readonly prev: string | undefined;
    readonly value: string;
  }
  | { readonly opId: number; readonly op: "nop" };

const codec = jsonCodec<KvCommand>();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One node's key-value store, fed committed commands in log order. */
export class KvMachine {
  /** Current values. */
  readonly values: Map<string, string>;
  /** Result of every operation applied so far, by operation id (dedup and late answers). */
  readonly results: Map<number, KvOutput>;

  /** An empty store, or one restored from snapshot contents. */
  constructor(values: Map<string, string> = new Map(), results: Map<number, KvOutput> = new Map()) {
    this.values = values;
    this.results = results;
  }

  /** Applies `command` once per operation id; a repeat returns the first result. */
  apply(command: KvCommand): KvOutput {
    const seen = this.results.get(command.opId);
    if (seen !== undefined) return seen;
    let output: KvOutput;
    switch (command.op) {
      case "put":
        this.values.set(command.key, command.value);
        output = {};
        break;
      case "cas": {
        const ok = this.values.get(command.key) === command.prev;
        if (ok) this.values.set(command.key, command.value);
        output = { ok };
        break;
      }
      case "nop":
        output = {};
        break;
    }
    this.results.set(command.opId, output);
    return output;
  }

  /** The snapshot contents: values and the dedup table. */
  serialize(): Uint8Array {
    return encoder.encode(JSON.stringify({ values: [...this.values], results: [...this.results] }));
  }

  /** Rebuilds a store from {@link serialize}'s bytes. */
  static restore(data: Uint8Array): KvMachine {
    const parsed = JSON.parse(decoder.decode(data)) as { values: [string, string][]; results: [number, KvOutput][] };
    return new KvMachine(new Map(parsed.values), new Map(parsed.results));
  }
}

/** The key-value service over `keys` keys (`k1`…): 40% puts, 20% compare-and-sets, 40% reads. */
export function kvService(keys = 3): SimService<KvMachine, KvCommand, KvInput, KvOutput> {
  let nextValue = 1;
  return {
    name: "kv",
    codec,
    create: () => new KvMachine(),
    apply: (machine, command, _index: Index) => machine.apply(command),
    snapshot: (machine) => machine.serialize(),
    restore: (bytes) => KvMachine.restore(bytes),
    opIdOf: (command) => command.opId,
    noop: (opId) => ({ opId, op: "nop" }),
    next(rng, _client, opId, machine) {
      const key = `k${rng.int(1, keys)}`;
      const r = rng.next();
      if (r < 0.4) {
        const value = `v${nextValue++}`;
        return { kind: "write", input: { op: "put", key, value }, command: { opId, op: "put", key, value } };
      }
      if (r < 0.6) {
        const current = machine.values.get(key);
        const prev = rng.chance(0.7) ? current : rng.chance(0.5) ? undefined : `v${rng.int(1, nextValue)}`;
        const value = `v${nextValue++}`;
        return {
          kind: "write",
          input: { op: "cas", key, prev, value },
          command: { opId, op: "cas", key, prev, value },
        };
      }
      return { kind: "read", input: { op: "get", key }, read: (m) => m.values.get(key) };
    },
    writeOutput: (_input, result) => result as KvOutput,
    readOutput: (_input, value) => ({ value: value as string | undefined }),
    model: kvModel,
    describe: (input, output) => kvModel.describeOperation!(input, output),
  };
}
