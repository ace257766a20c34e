/**
 * Helpers for the interpreter's tests: an in-process cluster on the memory
 * adapters, and polling until a condition holds.
 *
 * @module
 */

import {
  MemoryHub,
  MemoryLogStore,
  type MemoryLogStoreOptions,
  MemorySnapshotStore,
} from "../../adapters/memory/mod.ts";
import { createNode, type NodeConfig, type RaftNode } from "../../mod.ts";

/** A key-value state machine whose commands are `{ key, value }` and whose result is the previous value. */
export class KvMachine {
  /** The data. */
  readonly data: Map<string, string> = new Map();
  /** Indexes applied, in order (to check exactly-once, in-order application). */
  readonly appliedIndexes: number[] = [];

  /** Sets `key` to `value`, returning the previous value. */
  apply(command: { key: string; value: string }, index: number): string | undefined {
    this.appliedIndexes.push(index);
    const previous = this.data.get(command.key);
    this.data.set(command.key, command.value);
    return previous;
  }

  /** Serializes the map as JSON. */
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]));
  }

  /** Replaces the map. */
  restore(bytes: Uint8Array): void {
    this.data.clear();
    for (const [k, v] of JSON.parse(new TextDecoder().decode(bytes)) as [string, string][]) this.data.set(k, v);
  }
}

/** One member of a test cluster. */
export interface Member {
  /** Node id. */
  readonly id: string;
  /** Its log store (survives restarts). */
  readonly log: MemoryLogStore;
  /** Its snapshot store (survives restarts). */
  readonly snapshots: MemorySnapshotStore;
  /** Its current state machine. */
  machine: KvMachine;
  /** The running node (undefined while stopped). */
  node: RaftNode<{ key: string; value: string }, string | undefined, KvMachine> | undefined;
}

/** A test cluster on one {@link MemoryHub}. */
export interface Cluster {
  /** The network. */
  readonly hub: MemoryHub;
  /** Every member. */
  readonly members: Member[];
  /** (Re)starts member `id` from its stores with a fresh state machine. */
  start(id: string): Promise<void>;
  /** Stops every running node. */
  stopAll(): Promise<void>;
}

/** Fast timers for tests. */
export const testConfig: NodeConfig = { electionTimeoutMs: 150, heartbeatMs: 25 };

/** Starts `ids` as a new cluster. */
export async function startCluster(
  ids: readonly string[],
  options: {
    readonly log?: MemoryLogStoreOptions;
    readonly config?: NodeConfig;
    readonly requestTimeoutMs?: number;
    readonly leaderWaitMs?: number;
  } = {},
): Promise<Cluster> {
  const hub = new MemoryHub();
  const peers = Object.fromEntries(ids.map((id) => [id, id]));
  const members: Member[] = ids.map((id) => ({
    id,
    log: new MemoryLogStore(options.log),
    snapshots: new MemorySnapshotStore(),
    machine: new KvMachine(),
    node: undefined,
  }));
  const start = async (id: string): Promise<void> => {
    const m = members.find((x) => x.id === id)!;
    m.machine = new KvMachine();
    m.node = await createNode({
      id,
      peers,
      stateMachine: m.machine,
      logStore: m.log,
      snapshotStore: m.snapshots,
      transport: hub.transport(id),
      config: { ...testConfig, ...options.config },
      requestTimeoutMs: options.requestTimeoutMs,
      leaderWaitMs: options.leaderWaitMs,
    });
  };
  await Promise.all(ids.map(start));
  return {
    hub,
    members,
    start,
    stopAll: async () => {
      await Promise.allSettled(members.map((m) => m.node?.stop()));
      for (const m of members) m.node = undefined;
    },
  };
}

/** Polls `f` every few milliseconds until it returns (or resolves to) a value other than undefined/false, or fails after `ms`. */
export async function waitFor<A>(
  f: () => A | undefined | false | Promise<A | undefined | false>,
  ms = 4000,
  what = "condition",
): Promise<A> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The member that is leader (and that every running node agrees on), once there is one. */
export function waitForLeader(cluster: Cluster, ms = 4000): Promise<Member> {
  return waitFor(
    () => {
      const running = cluster.members.filter((m) => m.node !== undefined);
      const leaders = running.filter((m) => m.node!.status().role === "leader");
      if (leaders.length !== 1) return undefined;
      const leader = leaders[0]!;
      const term = leader.node!.status().term;
      return running.every((m) => m.node!.status().leader === leader.id && m.node!.status().term === term)
        ? leader
        : undefined;
    },
    ms,
    "a leader",
  );
}
