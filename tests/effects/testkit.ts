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
import type { Entry, InstallSnapshot, Message, SnapshotMeta } from "../../core/types.ts";
import { crc32c } from "../../core/crc32c.ts";
import type {
  LogStorePort,
  SnapshotReceiverPort,
  SnapshotStorePort,
  StoredSnapshot,
  TransportPort,
} from "../../effects/ports/mod.ts";
import { createNode, type NodeConfig, type RaftEvent, type RaftNode, type SnapshotReader } from "../../mod.ts";

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
  async restore(snapshot: SnapshotReader): Promise<void> {
    const bytes = await snapshot.bytes();
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
    readonly snapshotChunkBytes?: number;
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
      snapshotChunkBytes: options.snapshotChunkBytes,
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

/** What {@link catchUpBySnapshot} saw. */
export interface SnapshotCatchUp {
  /** The leader's data and the caught-up node's, each sorted. */
  readonly leaderData: [string, string][];
  /** See `leaderData`. */
  readonly laggingData: [string, string][];
  /** Checksum of the leader's latest snapshot, and of the one installed on the lagging node. */
  readonly leaderChecksum: number;
  /** See `leaderChecksum`. */
  readonly installedChecksum: number;
  /** Warnings every node emitted after the lagging node restarted. */
  readonly warnings: string[];
  /** The lagging node's id. */
  readonly lagging: string;
  /** Every InstallSnapshot and InstallSnapshotResponse put on the wire, as sent (before `tamper`). */
  readonly messages: Message[];
  /** Whole reads (from offset 0) of snapshots in the lagging node's store after it restarted. */
  readonly laggingStoreReads: number;
}

/** A memory store that counts whole reads of the snapshots it hands out. */
class CountingSnapshotStore extends MemorySnapshotStore {
  reads = 0;
  override async latest(): Promise<StoredSnapshot | undefined> {
    const s = await super.latest();
    return s && this.#counted(s);
  }
  override async receive(meta: SnapshotMeta): Promise<SnapshotReceiverPort> {
    const rx = await super.receive(meta);
    return {
      writeChunk: (offset, bytes) => rx.writeChunk(offset, bytes),
      finish: async (checksum) => this.#counted(await rx.finish(checksum)),
      abort: () => rx.abort(),
    };
  }
  #counted(s: StoredSnapshot): StoredSnapshot {
    return {
      meta: s.meta,
      size: s.size,
      checksum: s.checksum,
      read: (offset = 0, chunkBytes?: number, check?: boolean) => {
        if (offset === 0) this.reads++;
        return s.read(offset, chunkBytes, check);
      },
    };
  }
}

/**
 * Three nodes on one hub; one is stopped while 60 writes make the leader
 * snapshot, then restarted, so it must catch up by an InstallSnapshot of
 * several 64-byte chunks. `drop` and `tamper` act on the wire.
 */
export async function catchUpBySnapshot(
  wire: { readonly drop?: (m: Message) => boolean; readonly tamper?: (m: Message) => Message } = {},
): Promise<SnapshotCatchUp> {
  const ids = ["a", "b", "c"];
  const hub = new MemoryHub();
  const peers = Object.fromEntries(ids.map((id) => [id, id]));
  const stores = new Map(ids.map((id) => [id, { log: new MemoryLogStore(), snapshots: new CountingSnapshotStore() }]));
  const machines = new Map<string, KvMachine>();
  const nodes = new Map<string, RaftNode<{ key: string; value: string }, string | undefined, KvMachine>>();
  const events: RaftEvent[] = [];
  const start = async (id: string) => {
    const machine = new KvMachine();
    machines.set(id, machine);
    const node = await createNode({
      id,
      peers,
      stateMachine: machine,
      logStore: stores.get(id)!.log,
      snapshotStore: stores.get(id)!.snapshots,
      transport: hub.transport(id),
      config: { ...testConfig, snapshotEvery: 20, keepAfterSnapshot: 0 },
      snapshotChunkBytes: 64,
    });
    node.subscribe((e) => void events.push(e));
    nodes.set(id, node);
  };
  const messages: Message[] = [];
  hub.drop = (m) => {
    if (m.type === "InstallSnapshot" || m.type === "InstallSnapshotResponse") messages.push(m);
    return wire.drop?.(m) ?? false;
  };
  hub.tamper = wire.tamper;
  try {
    await Promise.all(ids.map(start));
    const leader = await waitFor(() => [...nodes.values()].find((n) => n.status().role === "leader"), 4000, "a leader");
    const lagging = ids.find((id) => id !== leader.id)!;
    await nodes.get(lagging)!.stop();
    nodes.delete(lagging);
    for (let i = 0; i < 60; i++) await leader.propose({ key: `key-${i}`, value: `value-${i}` });
    await waitFor(() => (stores.get(leader.id)!.snapshots.latestMeta?.index ?? 0) >= 40, 4000, "a snapshot");
    events.length = 0;
    stores.get(lagging)!.snapshots.reads = 0;
    await start(lagging);
    await waitFor(() => stores.get(lagging)!.snapshots.latestMeta !== undefined, 8000, "the snapshot installed");
    await nodes.get(lagging)!.read(() => undefined);
    return {
      leaderData: [...machines.get(leader.id)!.data].sort(),
      laggingData: [...machines.get(lagging)!.data].sort(),
      leaderChecksum: (await stores.get(leader.id)!.snapshots.latest())!.checksum,
      installedChecksum: (await stores.get(lagging)!.snapshots.latest())!.checksum,
      warnings: events.flatMap((e) => e.type === "warning" ? [e.message] : []),
      lagging,
      messages,
      laggingStoreReads: stores.get(lagging)!.snapshots.reads,
    };
  } finally {
    await Promise.allSettled([...nodes.values()].map((n) => n.stop()));
  }
}

/**
 * A transport for driving one node by hand: what it sends is recorded in
 * `sent`, and `deliver` hands it a message as if from the network.
 */
export function handTransport(): { transport: TransportPort; sent: Message[]; deliver: (m: Message) => void } {
  let handler: (m: Message) => void = () => {};
  const sent: Message[] = [];
  const transport: TransportPort = {
    send: (m) => (sent.push(m), true),
    onMessage: (h) => void (handler = h),
    onUnreachable: () => {},
    setPeers: () => {},
    close: () => Promise.resolve(),
  };
  return { transport, sent, deliver: (m) => handler(m) };
}

/** Leader "l"'s whole snapshot at `index` (term 1, group {f, l, x}) in one chunk, for the follower "f". */
export function wholeSnapshot(index: number, state: Uint8Array): InstallSnapshot {
  return {
    group: 0,
    from: "l",
    to: "f",
    term: 1,
    type: "InstallSnapshot",
    meta: { index, term: 1, membership: { voters: ["f", "l", "x"], learners: [], outgoing: undefined } },
    offset: 0,
    data: state,
    done: true,
    checksum: crc32c(state),
  };
}

/** A term-1 command entry at `index` that {@link KvMachine} applies (key `k<index>`). */
export function kvEntry(index: number): Entry {
  return {
    term: 1,
    index,
    kind: "command",
    data: new TextEncoder().encode(JSON.stringify({ key: `k${index}`, value: "v" })),
    config: undefined,
  };
}

/**
 * Node "f" of a three-node group {f, l, x} whose leader "l" the test plays
 * through `transport` (see {@link handTransport}); it never campaigns itself.
 */
export function handFollower(
  logStore: LogStorePort,
  snapshotStore: SnapshotStorePort,
  transport: TransportPort,
): Promise<RaftNode<{ key: string; value: string }, string | undefined, KvMachine>> {
  return createNode({
    id: "f",
    peers: { f: "f", l: "l", x: "x" },
    stateMachine: new KvMachine(),
    logStore,
    snapshotStore,
    transport,
    config: { ...testConfig, electionTimeoutMs: 60_000 },
  });
}
