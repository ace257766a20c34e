/**
 * raftd's {@link RaftdService} over a plank node: key-value operations as
 * proposals and ReadIndex reads, membership changes that keep the replicated
 * address book in step, and the library's errors mapped to HTTP answers.
 *
 * Uses only the public API (`startNode`'s {@link RaftNode} and its errors).
 * Every request is bounded by the node's own `requestTimeoutMs`: past it,
 * the library fails it with `OutcomeUnknown`, answered here with a 503.
 *
 * @module
 */

import {
  type Membership,
  type NodeStatus,
  NodeStopped,
  OutcomeUnknown,
  ProposalDropped,
  type RaftNode,
  RaftRejected,
  StateMachineFailure,
  StorageFailure,
} from "../../mod.ts";
import {
  HttpError,
  type JoinAnswer,
  type MemberView,
  NotLeaderError,
  OUTCOME_HEADER,
  type RaftdService,
  type StatusView,
} from "./http.ts";
import type { KvCommand, KvResult, KvStore } from "./kv.ts";
import type { RaftGauges } from "./metrics.ts";

/** The node type raftd runs: KV commands in, KV results out. */
// deno-lint-ignore no-explicit-any
export type KvNode = RaftNode<KvCommand, KvResult, any>;

/** What {@link RaftdNodeService} is built from. */
export interface ServiceOptions {
  /** The running node. */
  readonly node: KvNode;
  /** The state machine the node applies to (read directly after ReadIndex). */
  readonly kv: KvStore;
  /** This node's advertised address. */
  readonly address: string;
  /** Cluster id (handed to joiners). */
  readonly cluster: string;
  /** Address book lookups (replicated book merged with local knowledge). */
  readonly addressOf: (id: string) => string | undefined;
  /** Peer (mTLS) address lookups; set exactly when this cluster's peers use mutual TLS. */
  readonly peerAddressOf?: (id: string) => string | undefined;
  /** How long a learner may take to catch up before its join fails (ms). Default 60 s. */
  readonly catchUpTimeoutMs?: number;
  /** How long `/transfer` keeps trying to hand leadership over (ms): the node's request timeout. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** The node's election timeout (ms): how long one transfer try may take. Default 1 s. */
  readonly electionTimeoutMs?: number;
  /** Log line sink. */
  readonly log?: (message: string) => void;
  /** This process's id, shown by `/status`. */
  readonly pid?: number;
  /**
   * Asks the raftd at `address` who it is (its `/status` id), throwing when
   * nothing answers there: a join is refused before anything is added for a
   * node that is not listening where it says it is.
   */
  readonly probe?: (address: string) => Promise<string>;
}

const NOT_APPLIED = { [OUTCOME_HEADER]: "not-applied" } as const;

/** How many times `/transfer` asks the core to hand leadership over (the first and the retries). */
const TRANSFER_TRIES = 3;

/** Every member of a membership, with suffrage (the outgoing voters of a joint config count as voters). */
export function membersOf(m: Membership): { id: string; suffrage: "voter" | "learner" }[] {
  const out = new Map<string, "voter" | "learner">();
  for (const id of m.voters) out.set(id, "voter");
  for (const id of m.outgoing ?? []) out.set(id, "voter");
  for (const id of m.learners) if (!out.has(id)) out.set(id, "learner");
  return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, suffrage]) => ({ id, suffrage }));
}

/**
 * The library's errors as HTTP answers. A refusal that certainly changed
 * nothing is a 503 with Retry-After and `x-raftd-outcome: not-applied` (safe
 * to retry). A write whose outcome is unknown — no answer in time, the node
 * stopped while carrying it — is a 504 with `x-raftd-outcome: unknown`: it
 * may have been applied, so a client reads before it retries (a
 * compare-and-set may have succeeded). `not-leader` becomes a
 * {@link NotLeaderError} naming the leader's address (`addressOf`), so the
 * request is forwarded there; `self` is this node (never forwarded to).
 */
export function toHttpError(
  e: unknown,
  write: boolean,
  addressOf: (id: string) => string | undefined,
  self: string,
): unknown {
  const unknown = (message: string) =>
    write
      ? new HttpError(504, `outcome unknown: ${message}; the write may have been applied, read before retrying`, {
        [OUTCOME_HEADER]: "unknown",
      })
      : new HttpError(503, message);
  if (e instanceof HttpError || e instanceof NotLeaderError) return e;
  if (e instanceof RaftRejected) {
    switch (e.reason) {
      case "not-leader": {
        const address = e.leader === undefined ? undefined : addressOf(e.leader);
        return address === undefined || e.leader === self
          ? new HttpError(503, "no leader available, retry later", NOT_APPLIED)
          : new NotLeaderError(address);
      }
      case "too-large":
        return new HttpError(413, "too many uncommitted bytes; retry later", NOT_APPLIED);
      case "unsafe-conf-change":
        return new HttpError(
          409,
          "refused: the membership change would leave the cluster unable to make progress",
          NOT_APPLIED,
        );
      case "conf-change-pending":
        return new HttpError(503, "another membership change is in progress, retry later", NOT_APPLIED);
      default:
        return new HttpError(503, `request not completed (${e.reason}), retry later`, NOT_APPLIED);
    }
  }
  if (e instanceof ProposalDropped) {
    return new HttpError(503, "write lost to a leader change; it did not take effect, retry", NOT_APPLIED);
  }
  if (e instanceof OutcomeUnknown) return unknown(e.message);
  // A request pending at shutdown may already be in the log (and commit elsewhere).
  if (e instanceof NodeStopped) return unknown("node is shutting down");
  // Fatal: the node stopped (raftd exits); a write it was carrying may still commit elsewhere.
  if (e instanceof StorageFailure || e instanceof StateMachineFailure) return unknown(`node stopped (${e.message})`);
  return e;
}

/** The service. */
export class RaftdNodeService implements RaftdService {
  readonly #o: ServiceOptions;
  /** Serializes joins and removals on this node: one membership change at a time (thesis §4.1). */
  #membershipQueue: Promise<unknown> = Promise.resolve();

  /** @param options see {@link ServiceOptions} */
  constructor(options: ServiceOptions) {
    this.#o = options;
  }

  /** Run `f`, mapping the library's errors to HTTP answers; `write` when `f` proposes (its outcome may be unknown). */
  async #call<T>(f: () => Promise<T>, write = true): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw this.#mapError(e, write);
    }
  }

  #mapError(e: unknown, write: boolean): unknown {
    return toHttpError(e, write, this.#o.addressOf, this.#o.node.id);
  }

  async #propose(cmd: KvCommand): Promise<KvResult> {
    const result = await this.#call(() => this.#o.node.propose(cmd));
    if (result.type === "invalid") throw new HttpError(500, `state machine refused the command: ${result.reason}`);
    return result;
  }

  /** {@inheritDoc RaftdService.put} */
  async put(key: string, value: Uint8Array): Promise<void> {
    await this.#propose({ op: "put", key, value });
  }

  /** {@inheritDoc RaftdService.cas} */
  cas(key: string, prev: Uint8Array, value: Uint8Array): Promise<KvResult> {
    return this.#propose({ op: "cas", key, prev, value });
  }

  /** {@inheritDoc RaftdService.delete} */
  async delete(key: string): Promise<boolean> {
    const r = await this.#propose({ op: "delete", key });
    return r.type === "deleted" && r.existed;
  }

  /** {@inheritDoc RaftdService.get} */
  async get(key: string, stale: boolean): Promise<Uint8Array | undefined> {
    // Linearizable: wait until this node has applied the leader's commit index
    // as of a moment after the request arrived (ReadIndex, thesis §6.4).
    if (!stale) await this.#call(() => this.#o.node.readIndex(), false);
    return this.#o.kv.get(key);
  }

  #members(s: NodeStatus): MemberView[] {
    return this.memberViews(s.membership);
  }

  /** A membership's members with their addresses (a group's, in `/status`). */
  memberViews(membership: Membership): MemberView[] {
    const peerOf = this.#o.peerAddressOf;
    return membersOf(membership).map(({ id, suffrage }) => ({
      id,
      address: this.#o.addressOf(id),
      suffrage,
      ...(peerOf === undefined ? {} : { peer: peerOf(id) }),
    }));
  }

  /** {@inheritDoc RaftdService.status} */
  status(): StatusView {
    const s = this.#o.node.status();
    return {
      id: s.id,
      address: this.#o.address,
      cluster: this.#o.cluster,
      role: s.stopped ? "stopped" : s.role,
      term: s.term,
      leader: s.leader ?? null,
      leaderAddress: s.leader === undefined ? null : this.#o.addressOf(s.leader) ?? null,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      members: this.#members(s),
      ...(this.#o.pid === undefined ? {} : { pid: this.#o.pid }),
    };
  }

  /** {@inheritDoc RaftdService.gauges} */
  gauges(): RaftGauges {
    const s = this.#o.node.status();
    return {
      role: s.stopped ? "stopped" : s.role,
      term: s.term,
      commit: s.commit,
      applied: s.applied,
      members: membersOf(s.membership).length,
      keys: this.#o.kv.size,
    };
  }

  #requireLeader(): NodeStatus {
    const s = this.#o.node.status();
    if (s.role === "leader") return s;
    const address = s.leader === undefined ? undefined : this.#o.addressOf(s.leader);
    if (address === undefined) throw new HttpError(503, "no leader available, retry later");
    throw new NotLeaderError(address);
  }

  #serialized<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#membershipQueue.then(f, f);
    this.#membershipQueue = run.catch(() => {});
    return run;
  }

  /**
   * Add a node (goraft's join, done with a learner): record its address in
   * the replicated book, add it as a learner, wait until it has caught up,
   * then promote it (thesis §4.2.1: new servers join without votes until
   * they hold the log). Idempotent for the same id and address, so a joiner
   * can simply retry.
   *
   * Refused (409) without changing anything: an id that is a member at
   * another address, unless `replace` says the request moves it there (a
   * voter re-addressed by mistake falls behind and costs the cluster a
   * vote); an address another member uses. Refused (502) when nothing at
   * `address` answers as `id`. A join that fails once it has added
   * something (the learner never caught up, the leader changed) removes the
   * learner and the address it added, so a failed join leaves the membership
   * as it found it.
   */
  join(id: string, address: string, peer?: string, replace = false): Promise<JoinAnswer> {
    const mtls = this.#o.peerAddressOf !== undefined;
    if (mtls && peer === undefined) {
      throw new HttpError(
        400,
        "this cluster's peers use mutual TLS: start the joiner with -peer-cert, -peer-key, -peer-ca",
      );
    }
    if (!mtls && peer !== undefined) throw new HttpError(400, "this cluster's peers do not use mutual TLS");
    this.#requireLeader();
    return this.#serialized(async () => {
      let s = this.#requireLeader();
      const members = membersOf(s.membership);
      const known = members.find((m) => m.id === id);
      const kv = this.#o.kv;
      const recorded = kv.members().get(id);
      const recordedPeer = kv.peers().get(id);
      const moved = recorded !== undefined && (recorded !== address || recordedPeer !== peer);
      if (known !== undefined && moved && !replace) {
        throw new HttpError(
          409,
          `node ${id} is already a ${known.suffrage} at ${recorded}${
            recordedPeer ? ` (peers: ${recordedPeer})` : ""
          }: ` +
            `to move it to ${address}, send {"replace": true}; to add another node, give it another id`,
          NOT_APPLIED,
        );
      }
      const holder = members.find((m) => m.id !== id && kv.members().get(m.id) === address);
      if (holder !== undefined) {
        throw new HttpError(409, `${address} is the address of member ${holder.id}`, NOT_APPLIED);
      }
      await this.#probe(id, address);
      const added = { learner: false, address: false };
      try {
        if (recorded !== address || recordedPeer !== peer) {
          this.#o.log?.(`join: recording ${id} at ${address}${peer === undefined ? "" : ` (peers: ${peer})`}`);
          added.address = true;
          await this.#propose({ op: "setMember", id, address, ...(peer === undefined ? {} : { peer }) });
          // The node's transport dials the book: a moved member is reached at its new address at once.
          if (known !== undefined) this.#o.node.setPeerAddress(id, peer ?? address);
        }
        if (known === undefined) {
          this.#o.log?.(`join: adding ${id} as a learner`);
          added.learner = true;
          // The node's address book is where its transport dials: the peer listener under mTLS.
          await this.#call(() => this.#o.node.addLearner(id, peer ?? address));
        }
        if (known?.suffrage !== "voter") {
          await this.#waitCaughtUp(id);
          this.#o.log?.(`join: promoting ${id} to voter`);
          await this.#call(() => this.#o.node.promote(id));
        }
      } catch (e) {
        await this.#undoJoin(id, added, known === undefined ? undefined : { address: recorded, peer: recordedPeer });
        throw e;
      }
      s = this.#o.node.status();
      return { cluster: this.#o.cluster, leader: s.id, members: this.#members(s) };
    });
  }

  /** Refuses (502) a join for an address where nothing answers as `id`. */
  async #probe(id: string, address: string): Promise<void> {
    if (this.#o.probe === undefined) return;
    let who: string;
    try {
      who = await this.#o.probe(address);
    } catch (e) {
      throw new HttpError(
        502,
        `nothing answers at ${address} (${e instanceof Error ? e.message : e}): start node ${id} there first`,
        NOT_APPLIED,
      );
    }
    if (who !== id) throw new HttpError(502, `${address} answers as node ${who}, not ${id}`, NOT_APPLIED);
  }

  /**
   * A join failed: take back what it added — the learner (never a voter: a
   * promotion that may have happened is left alone), and the address it
   * recorded (restoring the previous one of a member that was moving).
   */
  async #undoJoin(
    id: string,
    added: { learner: boolean; address: boolean },
    previous: { address: string | undefined; peer: string | undefined } | undefined,
  ): Promise<void> {
    const undo = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
        this.#o.log?.(`join of ${id} failed: ${what}`);
      } catch (e) {
        this.#o.log?.(`join of ${id} failed, and ${what} failed too: ${e instanceof Error ? e.message : e}`);
      }
    };
    const me = () => membersOf(this.#o.node.status().membership).find((m) => m.id === id);
    if (added.learner && me()?.suffrage === "learner") {
      await undo("removed the learner", () => this.#o.node.removeNode(id));
    }
    if (!added.address) return;
    if (previous?.address !== undefined) {
      const { address, peer } = previous;
      await undo(
        `restored its address ${address}`,
        () => this.#o.node.propose({ op: "setMember", id, address, ...(peer === undefined ? {} : { peer }) }),
      );
    } else if (me() === undefined) {
      await undo("removed its address", () => this.#o.node.propose({ op: "removeMember", id }));
    }
  }

  /**
   * Wait until the learner's log holds what this leader had committed, as
   * the leader's own replication progress for it shows.
   */
  async #waitCaughtUp(id: string): Promise<void> {
    const target = this.#o.node.status().commit;
    const deadline = Date.now() + (this.#o.catchUpTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      const s = this.#o.node.status();
      if (s.role !== "leader") throw this.#mapError(new RaftRejected("not-leader", s.leader), true);

      const progress = s.progress?.get(id);
      if (progress !== undefined && progress.match >= target) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new HttpError(503, `learner ${id} did not catch up in time; retry the join`);
  }

  /** {@inheritDoc RaftdService.removeMember} */
  removeMember(id: string): Promise<void> {
    this.#requireLeader();
    return this.#serialized(async () => {
      const s = this.#requireLeader();
      if (!membersOf(s.membership).some((m) => m.id === id)) {
        throw new HttpError(404, `no member ${JSON.stringify(id)}`);
      }
      await this.#call(() => this.#o.node.removeNode(id));
      // Drop the address only once the node is out of the configuration.
      if (this.#o.node.status().role === "leader") {
        await this.#propose({ op: "removeMember", id }).catch((e) =>
          this.#o.log?.(`remove: address of ${id} kept: ${e}`)
        );
      }
    });
  }

  /** {@inheritDoc RaftdService.transfer} */
  async transfer(to: string): Promise<void> {
    const s = this.#requireLeader();
    if (to === s.id) return;
    if (!s.membership.voters.includes(to)) {
      // The core hands leadership only to a voter that stays one (§3.10 with §4.3's joint configurations).
      const member = membersOf(s.membership).some((m) => m.id === to);
      throw member
        ? new HttpError(409, `${to} is not a voter of the configuration being entered`, NOT_APPLIED)
        : new HttpError(404, `no voter ${JSON.stringify(to)}`);
    }
    // The leader abandons a transfer after an election timeout so that it serves clients
    // again (thesis §3.10). A target slow to catch up or to win on a loaded machine is no
    // reason to fail the request while the node's request timeout allows another try; but
    // every try refuses writes while it lasts, so one is made only while the target is
    // active and caught up, and at most TRANSFER_TRIES in all.
    const deadline = Date.now() + (this.#o.requestTimeoutMs ?? 5000);
    for (let tries = 1;; tries++) {
      try {
        await this.#o.node.transferLeadership(to);
        // Handed over: the leader stepped down once `to` campaigned; 200 means `to` won.
        return await this.#elected(to, deadline);
      } catch (e) {
        if (!(e instanceof RaftRejected && e.reason === "timeout")) throw this.#mapError(e, true);
        const next = await this.#afterAbandoned(to, deadline, tries < TRANSFER_TRIES);
        if (next === "moved") return;
        if (next !== "retry") throw next ?? this.#mapError(e, true);
      }
    }
  }

  /** Waits for the election the hand-over started: done once `to` leads, an error if another node does or none by the deadline. */
  async #elected(to: string, deadline: number): Promise<void> {
    for (;;) {
      const leader = this.#o.node.status().leader;
      if (leader === to) return;
      if (leader !== undefined && leader !== this.#o.node.id) {
        throw new HttpError(503, `leadership went to ${leader}, not ${to}; retry later`, NOT_APPLIED);
      }
      if (Date.now() >= deadline) {
        throw new HttpError(503, `leadership handed to ${to}, which is not yet known to lead; retry later`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * After an abandoned transfer: "moved" once `to` leads (a campaign the
   * leader's `TimeoutNow` started may still win); "retry" once this node
   * still leads and `to`, active, holds the commit index (meanwhile writes
   * flow); another node's win as an error; undefined — the abandonment
   * stands — when `to` is inactive, the tries are used up, or no further try
   * fits before the deadline.
   */
  async #afterAbandoned(
    to: string,
    deadline: number,
    mayRetry: boolean,
  ): Promise<"moved" | "retry" | HttpError | undefined> {
    const campaign = this.#o.electionTimeoutMs ?? 1000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      const s = this.#o.node.status();
      if (s.leader === to) return "moved";
      if (s.role !== "leader" && s.leader !== undefined) {
        return new HttpError(503, `leadership went to ${s.leader}, not ${to}; retry later`, NOT_APPLIED);
      }
      // A try lasts up to an election timeout: none is started that the deadline would cut short.
      if (Date.now() + campaign >= deadline) return undefined;
      if (s.role !== "leader") continue; // electing: wait for who wins
      const target = s.progress?.get(to);
      // A target not heard from since the last check-quorum round is down or cut off: no try would help.
      if (!mayRetry || !target?.active) return undefined;
      if (target.match >= s.commit) return "retry";
    }
  }
}
