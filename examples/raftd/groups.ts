/**
 * raftd `-groups N`: the key space sharded over N Raft groups of keys, all
 * hosted by every node on one plank host (`HostLoop`: one multi-group
 * write-ahead log with one fsync per iteration, one peer transport, idle
 * groups quiescent).
 *
 * The node's own group (group 0, the one raftd always runs) stays the
 * control group: it holds the replicated address book and the cluster's
 * membership, and `-join`, `/join`, `DELETE /members/…`, `/transfer`, the
 * security checks, removal detection and snapshots work on it exactly as
 * without `-groups`. The groups of keys (ids 1..N) follow it:
 *
 * - membership: on each group's leader, a reconciler makes the group's voters
 *   the control group's voters (adding a new voter as a learner promoted once
 *   caught up, §4.2.1; removing one the control group removed), one change at
 *   a time per group;
 * - leadership: group `g` prefers the voter at position `g mod n` of the
 *   control group's sorted voters; its leader hands leadership to that voter
 *   (leadership transfer, §3.10) once the voter is active and caught up, so n
 *   nodes lead N/n groups each;
 * - keys: {@link groupOfKey}, a stable hash, picks a key's group.
 * - snapshots: each group snapshots its keys every `-snapshot-entries`
 *   applied entries into `DATA/groups/snapshots/<g>/snapshots/` and compacts
 *   its part of the groups' log behind it; a lagging node is sent the
 *   group's snapshot (the host's per-group snapshots, `effects/host/`).
 *
 * @module
 */

import {
  createHost,
  type HostGroup,
  type HostGroupStatus,
  type HostLoop,
  type Membership,
  type TransportPort,
} from "../../mod.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { MultiGroupLog } from "../../adapters/storage/multi_log.ts";
import { FileGroupSnapshots } from "../../adapters/storage/snapshots.ts";
import type { GroupView, MemberView } from "./http.ts";
import { KvStore } from "./kv.ts";
import { membersOf } from "./service.ts";

/** The data directory's subdirectory holding every group of keys' log. */
export const GROUPS_DIR = "groups";
/** The subdirectory of {@link GROUPS_DIR} holding each group's snapshots (`<group>/snapshots/`). */
export const GROUP_SNAPSHOTS_DIR = "snapshots";

/**
 * The group of `key` among `groups` groups: 1 + FNV-1a (32-bit) of the key's
 * UTF-8 bytes, modulo `groups`. Stable across runtimes, processes and
 * versions: every node must route a key to the same group, so this never
 * changes for a given `-groups`.
 */
export function groupOfKey(key: string, groups: number): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(key)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 1 + (h % groups);
}

/** The voter group `g` prefers as its leader among `voters` (sorted): the one at `g mod n`. */
export function preferredLeader(group: number, voters: readonly string[]): string | undefined {
  return voters.length === 0 ? undefined : voters[group % voters.length];
}

/** A group of keys on this node: its API on the host and its key-value store. */
export interface Shard {
  /** The group id (1..N). */
  readonly group: number;
  /** The group on the host. */
  readonly handle: HostGroup;
  /** Its state machine (read directly after ReadIndex). */
  readonly kv: KvStore;
}

/** What {@link Shards.open} needs. */
export interface ShardsOptions {
  /** This node's id. */
  readonly self: string;
  /** raftd's data directory (the groups' log goes in {@link GROUPS_DIR} inside it). */
  readonly dataDir: string;
  /** The runtime's durable file system. */
  readonly fs: DurableFs;
  /** The groups' transport (one for every group). */
  readonly transport: TransportPort;
  /** Peer transport addresses. */
  readonly peers: ReadonlyMap<string, string>;
  /** How many groups of keys. */
  readonly groups: number;
  /** This start creates the cluster: each new group starts with this node as its only voter (else empty, to be added). */
  readonly founding: boolean;
  /** Base election timeout (ms). */
  readonly electionTimeoutMs: number;
  /** Heartbeat interval (ms). */
  readonly heartbeatMs: number;
  /** Each group snapshots its keys after this many applied entries and compacts its log (0: never; `-snapshot-entries`). */
  readonly snapshotEntries: number;
  /** How long a request may wait for its outcome (ms). */
  readonly requestTimeoutMs: number;
  /**
   * The control group's membership as this node knows it (the groups'
   * target), or undefined while that knowledge may be stale (no leader known,
   * or committed entries not yet applied here): a stale view would undo a
   * join another group's leader has already carried out.
   */
  readonly control: () => Membership | undefined;
  /** Log line sink (`debug` for the reconciler's and balancer's retries). */
  readonly log: (level: "info" | "debug", message: string) => void;
}

/** How often the reconciler and the balancer look at every group (ms). */
const MAINTAIN_EVERY_MS = 500;

/** The groups of keys of one node. */
export class Shards {
  readonly #o: ShardsOptions;
  readonly #host: HostLoop;
  readonly #shards: Shard[];
  /** Groups with a membership change or transfer under way (one at a time per group). */
  readonly #busy = new Set<number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(o: ShardsOptions, host: HostLoop, shards: Shard[]) {
    this.#o = o;
    this.#host = host;
    this.#shards = shards;
  }

  /**
   * Opens the groups' log (locked; replayed, refusing damage) and hosts
   * groups 1..N, resuming each from the log.
   *
   * @throws Error if the log holds a group outside 1..N (started before with another `-groups`)
   */
  static async open(o: ShardsOptions): Promise<Shards> {
    const log = await MultiGroupLog.open(o.fs, `${o.dataDir}/${GROUPS_DIR}`);
    let snapshots: FileGroupSnapshots;
    try {
      snapshots = await FileGroupSnapshots.open(o.fs, `${o.dataDir}/${GROUPS_DIR}/${GROUP_SNAPSHOTS_DIR}`);
    } catch (e) {
      await log.close().catch(() => {});
      throw e;
    }
    const host = await createHost({
      id: o.self,
      peers: o.peers,
      log,
      transport: o.transport,
      requestTimeoutMs: o.requestTimeoutMs,
      snapshots,
      config: {
        electionTimeoutMs: o.electionTimeoutMs,
        heartbeatMs: o.heartbeatMs,
        quiesce: true,
        snapshotEvery: o.snapshotEntries,
      },
    });
    const stray = host.recoveredGroups().filter((g) => !(g >= 1 && g <= o.groups));
    if (stray.length > 0) {
      await host.stop();
      throw new Error(
        `${o.dataDir}/${GROUPS_DIR} holds group ${stray[0]}: this node ran with more groups; -groups must not change`,
      );
    }
    const recovered = new Set(host.recoveredGroups());
    if (!o.founding && recovered.size === 0 && o.control()?.voters.includes(o.self)) {
      o.log("info", `no groups in ${o.dataDir}/${GROUPS_DIR}: waiting for the leaders to send them`);
    }
    const shards: Shard[] = [];
    // In bulk: one call per group, queued at once; the host takes them in one iteration.
    const adds = [];
    for (let g = 1; g <= o.groups; g++) {
      const kv = new KvStore();
      const voters = o.founding && !recovered.has(g) ? [o.self] : [];
      adds.push(
        host.addGroup(g, { voters, learners: [], outgoing: undefined }, {
          apply: (e) => kv.applyBytes(e.data),
          snapshot: () => kv.snapshot(),
          restore: async (snapshot) => kv.restore(await snapshot.bytes()),
          beginRestore: () => kv.beginRestore(),
        }).then((handle) => shards.push({ group: g, handle, kv })),
      );
    }
    await Promise.all(adds);
    shards.sort((a, b) => a.group - b.group);
    return new Shards(o, host, shards);
  }

  /** Settles when the host stops (rejects with a fatal storage failure). */
  get done(): Promise<void> {
    return this.#host.done;
  }

  /** How many groups. */
  get count(): number {
    return this.#shards.length;
  }

  /** The group of `key`. */
  route(key: string): Shard {
    return this.#shards[groupOfKey(key, this.#shards.length) - 1]!;
  }

  /** Keys held here, over every group. */
  get keys(): number {
    return this.#shards.reduce((n, s) => n + s.kv.size, 0);
  }

  /** Points the groups' transport at these peer addresses. */
  setPeers(peers: ReadonlyMap<string, string>): void {
    const others = new Map(peers);
    others.delete(this.#o.self);
    this.#o.transport.setPeers(others);
  }

  /** Every group's state here, for `/status`. */
  views(members: (m: Membership) => MemberView[], addressOf: (id: string) => string | undefined): GroupView[] {
    return this.#shards.map(({ group, handle }) => {
      const s = handle.status();
      return {
        group,
        role: s.stopped ? "stopped" : s.role,
        term: s.term,
        leader: s.leader ?? null,
        leaderAddress: s.leader === undefined ? null : addressOf(s.leader) ?? null,
        commit: s.commit,
        applied: s.applied,
        lastIndex: s.lastIndex,
        quiescent: s.quiescent,
        snapshotIndex: s.snapshotIndex,
        members: members(s.membership),
      };
    });
  }

  /** Whether every group here has `id` as a voter (a join is done once they have). */
  allHaveVoter(id: string): boolean {
    return this.#shards.every((s) => s.handle.status().membership.voters.includes(id));
  }

  /** Starts the reconciler and the balancer. */
  startMaintenance(): void {
    this.#timer ??= setInterval(() => this.#maintain(), MAINTAIN_EVERY_MS);
  }

  /** Stops maintenance and the host (its in-flight write, then its log and transport). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#host.stop();
  }

  #maintain(): void {
    const control = this.#o.control();
    if (control === undefined) return;
    const target = [...control.voters].sort();
    // A node in the middle of joining the control group (a learner) is not removed from the groups.
    const keep = new Set(membersOf(control).map((m) => m.id));
    if (!target.includes(this.#o.self) && !keep.has(this.#o.self)) return;
    for (const shard of this.#shards) {
      if (this.#busy.has(shard.group)) continue;
      const s = shard.handle.status();
      if (s.stopped || s.role !== "leader" || s.membership.outgoing !== undefined) continue;
      const step = this.#next(shard.group, s, target, keep);
      if (step === undefined) continue;
      this.#busy.add(shard.group);
      step().catch((e) => this.#o.log("debug", `group ${shard.group}: ${e instanceof Error ? e.message : e}`))
        .finally(() => this.#busy.delete(shard.group));
    }
  }

  /** The one thing group `group`'s leader (this node) should do now, if anything. */
  #next(
    group: number,
    s: HostGroupStatus,
    target: readonly string[],
    keep: ReadonlySet<string>,
  ): (() => Promise<unknown>) | undefined {
    const handle = this.#shards[group - 1]!.handle;
    const m = s.membership;
    const members = new Set([...m.voters, ...m.learners]);
    const ready = (id: string) => {
      const p = s.progress?.get(id);
      return p !== undefined && p.state === "replicate" && p.match >= s.commit && (p.active || s.quiescent);
    };
    // Leaving: hand the group to a voter that stays before removing this node.
    if (!keep.has(this.#o.self)) {
      const heir = target.find((id) => id !== this.#o.self && m.voters.includes(id) && ready(id));
      return heir === undefined ? undefined : () => handle.transferLeadership(heir);
    }
    const missing = target.find((id) => !m.voters.includes(id) && !(m.promote ?? []).includes(id));
    if (missing !== undefined) {
      this.#o.log("info", `group ${group}: adding ${missing}`);
      return () => handle.changeMembership({ type: "addVoter", node: missing });
    }
    const gone = [...members].find((id) => !keep.has(id));
    if (gone !== undefined) {
      this.#o.log("info", `group ${group}: removing ${gone}`);
      return () => handle.changeMembership({ type: "remove", node: gone });
    }
    const voters = target.filter((id) => m.voters.includes(id));
    const preferred = preferredLeader(group, voters);
    if (preferred !== undefined && preferred !== this.#o.self && ready(preferred)) {
      return () => handle.transferLeadership(preferred);
    }
    return undefined;
  }
}
