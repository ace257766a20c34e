/**
 * The simulator's nemesis: what goes wrong, and when. Random faults (the
 * network split and healed, nodes crashed and restarted, leadership moved,
 * membership changed — single-server steps and joint changes) rarely open the
 * narrow windows where Raft's subtle rules matter, so beside them the nemesis
 * runs targeted schedules, each aimed at one such window:
 *
 * - `partitionAfterConfig`: cut the leader off right after it appends a
 *   configuration entry (thesis §4.1; the errata's window);
 * - `confAfterElection`: a new leader is asked for a membership change at
 *   once, before its no-op commits;
 * - `restartInLease`: the leader keeps a bare majority, then is cut off while
 *   one of the followers that backs its lease crashes and restarts into the
 *   other side (§6.4.1);
 * - `isolateUnderLoad`: one node is cut off for a while and then rejoins
 *   while clients keep writing;
 * - `crashDuringInstall`: a follower receiving a snapshot, or the leader
 *   sending one, crashes mid-transfer (§7);
 * - `crashDuringJoint`: a node crashes while a joint configuration is in
 *   force (§4.3);
 * - `transferRacingConf`: a leadership transfer and a membership change are
 *   asked for at the same moment (§3.10 vs §4.1);
 * - `partitionJoint`: a leader that appended a joint configuration is cut off
 *   with the voters only the new configuration has (§4.3);
 * - `crashNewLeader`: a new leader crashes before its no-op commits, so
 *   uncommitted entries of several terms pile up (the paper's Figure 8);
 * - `slowLeaderDisk`: the leader's disk lags its followers', then the leader
 *   crashes with writes in flight (thesis §10.2.1);
 * - `staleRate`: messages delivered again much later, into later terms;
 * - `lateVoteRate`: a vote request delivered again 1–3 election timeouts
 *   later, when the voter's stickiness has run out but (pre-vote keeping
 *   terms still) it may be in the same term — a vote it forgot is given twice;
 * - `crashAfterVote`: a voter crashes right after granting a vote, so a vote
 *   that was not durable is forgotten (Figure 2, votedFor);
 * - `isolateTransferring`: when a transfer's target asks for votes, the old
 *   leader is cut off at once, so it never hears of the new term and keeps
 *   answering clients while the target wins (§3.10: no lease reads then).
 *
 * The nemesis acts only through {@link SimControl}, so it does not depend on
 * how the simulator interprets the core.
 *
 * @module
 */

import { isJoint } from "../../core/membership.ts";
import type { ConfChange, Membership, NodeId, RaftEffect, Role } from "../../core/types.ts";
import type { Prng } from "./prng.ts";

/** How hostile the environment is. Rates are probabilities per message, schedules probabilities per trigger. */
export interface FaultOptions {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number;
  /** Probability that a message is held back by up to `longDelayMs` extra. */
  readonly delayRate: number;
  /** Largest extra delay of a held-back message. */
  readonly longDelayMs: number;
  /** Shortest virtual time between two fault events (partition, heal, crash). */
  readonly minIntervalMs: number;
  /** Longest virtual time between two fault events. */
  readonly maxIntervalMs: number;
  /** Whether fault events may partition the network. */
  readonly partitions: boolean;
  /** Whether fault events may crash nodes. */
  readonly crashes: boolean;
  /** Shortest downtime of a crashed node. */
  readonly minDowntimeMs: number;
  /** Longest downtime of a crashed node. */
  readonly maxDowntimeMs: number;
  /** Whether fault events may ask the leader to transfer leadership to a random node (thesis §3.10). */
  readonly transfers: boolean;
  /** Whether fault events may ask the leader to change the membership (thesis §4.1). */
  readonly confChanges: boolean;
  /** Share of those membership changes that are joint changes of several voters (thesis §4.3). */
  readonly jointChanges: number;
  /** Targeted: P(cut the leader off right after it appends a configuration entry). */
  readonly partitionAfterConfig: number;
  /** Targeted: P(a newly elected leader is asked for a membership change at once). */
  readonly confAfterElection: number;
  /** Targeted: P per fault event of the lease schedule (see the module doc). */
  readonly restartInLease: number;
  /** Targeted: P per fault event of isolating one node for a while under load. */
  readonly isolateUnderLoad: number;
  /** Targeted: P per snapshot chunk received (or stream started) of crashing that node. */
  readonly crashDuringInstall: number;
  /** Targeted: P(crash a node when a joint configuration is appended). */
  readonly crashDuringJoint: number;
  /** Targeted: P(a transfer and a membership change are asked for together). */
  readonly transferRacingConf: number;
  /** Targeted: P(a leader that appends a joint configuration is cut off with the new voters only, §4.3). */
  readonly partitionJoint: number;
  /** Targeted: P(a new leader crashes within a few ms, before its no-op commits — Figure 8's schedule). */
  readonly crashNewLeader: number;
  /** Targeted: P per fault event of the leader's disk turning slow, then the leader crashing (thesis §10.2.1). */
  readonly slowLeaderDisk: number;
  /** Probability that a message is also delivered again much later (1–5 election timeouts), into later terms. */
  readonly staleRate: number;
  /** Probability that a (real) vote request is also delivered again 1–3 election timeouts later. */
  readonly lateVoteRate: number;
  /** Targeted: P per granted vote of crashing the voter within a few ms. */
  readonly crashAfterVote: number;
  /** Targeted: P per transfer vote request of cutting the old leader off (see the module doc). */
  readonly isolateTransferring: number;
}

/** No faults at all; the base of every profile. */
export const noFaults: FaultOptions = {
  dropRate: 0,
  duplicateRate: 0,
  delayRate: 0,
  longDelayMs: 0,
  minIntervalMs: 100,
  maxIntervalMs: 800,
  partitions: false,
  crashes: false,
  minDowntimeMs: 5,
  maxDowntimeMs: 1500,
  transfers: false,
  confChanges: false,
  jointChanges: 0,
  partitionAfterConfig: 0,
  confAfterElection: 0,
  restartInLease: 0,
  isolateUnderLoad: 0,
  crashDuringInstall: 0,
  crashDuringJoint: 0,
  transferRacingConf: 0,
  partitionJoint: 0,
  crashNewLeader: 0,
  slowLeaderDisk: 0,
  staleRate: 0,
  lateVoteRate: 0,
  crashAfterVote: 0,
  isolateTransferring: 0,
};

/** The default hostile environment of `faults: true`: a lossy network, partitions, crashes; no targeted schedules. */
export const defaultFaults: FaultOptions = {
  ...noFaults,
  dropRate: 0.05,
  duplicateRate: 0.03,
  delayRate: 0.05,
  longDelayMs: 300,
  partitions: true,
  crashes: true,
  staleRate: 0.005,
};

/** Every targeted schedule on, at rates that open each window a few times per run. */
export const targetedFaults: Partial<FaultOptions> = {
  jointChanges: 0.5,
  partitionAfterConfig: 0.3,
  confAfterElection: 0.3,
  restartInLease: 0.15,
  isolateUnderLoad: 0.1,
  crashDuringInstall: 0.05,
  crashDuringJoint: 0.2,
  transferRacingConf: 0.3,
  partitionJoint: 0.6,
  crashNewLeader: 0.15,
  slowLeaderDisk: 0.1,
  staleRate: 0.01,
  lateVoteRate: 0.2,
  crashAfterVote: 0.2,
  isolateTransferring: 0.5,
};

/** What the nemesis may observe of and do to a simulated cluster. */
export interface SimControl {
  /** Virtual time, ms. */
  readonly now: number;
  /** Base election timeout, ms. */
  readonly electionMs: number;
  /** Node ids. */
  readonly nodeIds: readonly NodeId[];
  /** Whether `id` runs. */
  isUp(id: NodeId): boolean;
  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined;
  /** The membership in force on `id`. */
  membership(id: NodeId): Membership;
  /** Splits the network into `groups`; unlisted nodes are isolated. */
  partition(groups: readonly (readonly NodeId[])[]): void;
  /** Heals every partition. */
  heal(): void;
  /** Crashes `id` (unsynced writes lost) and restarts it `downtimeMs` later (also once faults are off). */
  crash(id: NodeId, downtimeMs: number): void;
  /** Restarts `id` from its durable state. */
  restart(id: NodeId): void;
  /** Asks `from` to hand leadership to `to`. */
  transferLeadership(from: NodeId, to: NodeId): void;
  /** Asks `on` for a membership change. */
  proposeConfChange(on: NodeId, change: ConfChange): void;
  /** Runs `action` `ms` from now, as an event of its own (never inside another node's step), if faults are still on. */
  after(ms: number, action: () => void): void;
  /** Adds a line to the trace. */
  note(node: string, text: string): void;
  /** Sets `id`'s disk latency (undefined: back to the cluster's). */
  setDiskLatency(id: NodeId, range: readonly [number, number] | undefined): void;
}

/** Chooses and injects faults; the simulator calls it on fault events and for every effect. */
export class Nemesis {
  readonly #f: FaultOptions;
  readonly #rng: Prng;
  readonly #sim: SimControl;
  /** A targeted schedule is running: random partitions and heals would spoil it. */
  #scheduleUntil = -1;

  /** A nemesis for `sim` with faults `f`, drawing from `rng`. */
  constructor(f: FaultOptions, rng: Prng, sim: SimControl) {
    this.#f = f;
    this.#rng = rng;
    this.#sim = sim;
  }

  /** A fault event: start a targeted schedule, or inject one random fault. */
  tick(): void {
    const f = this.#f;
    const rng = this.#rng;
    const busy = this.#sim.now < this.#scheduleUntil;
    if (!busy && f.partitions && rng.chance(f.restartInLease) && this.#leaseSchedule()) return;
    if (!busy && f.partitions && rng.chance(f.isolateUnderLoad)) return this.#isolateOne();
    if (f.crashes && rng.chance(f.slowLeaderDisk)) return this.#slowDiskThenCrash();
    const r = rng.next();
    if (r < 0.3 && f.partitions) {
      if (busy) return;
      const groups = rng.chance(0.7) ? 2 : 3;
      const parts: NodeId[][] = Array.from({ length: groups }, () => []);
      for (const id of this.#sim.nodeIds) parts[rng.int(0, groups - 1)]!.push(id);
      this.#sim.partition(parts);
    } else if (r < 0.6 && f.partitions) {
      if (!busy) this.#sim.heal();
    } else if (r < 0.65 && f.transfers) {
      this.#transfer();
    } else if (r < 0.7 && f.confChanges) {
      this.#confChange();
    } else if (r < 0.9 && f.crashes) {
      const up = this.#sim.nodeIds.filter((id) => this.#sim.isUp(id));
      if (up.length > 0) this.#crashFor(rng.pick(up), this.#downtime());
    }
  }

  /** Sees every effect of every node, with the node's role after the step: the targeted triggers. */
  observe(node: NodeId, role: Role, effect: RaftEffect): void {
    const f = this.#f;
    const rng = this.#rng;
    switch (effect.type) {
      case "MembershipChanged":
        if (role === "leader" && f.partitions && rng.chance(f.partitionAfterConfig)) this.#cutOff(node);
        if (role === "leader" && isJoint(effect.membership) && f.partitions && rng.chance(f.partitionJoint)) {
          this.#splitJoint(node, effect.membership);
        }
        if (isJoint(effect.membership) && f.crashes && rng.chance(f.crashDuringJoint)) {
          const victim = rng.pick(this.#sim.nodeIds);
          this.#sim.after(rng.int(0, 20), () => this.#crashFor(victim, this.#downtime()));
        }
        return;
      case "RoleChanged":
        if (effect.role === "leader" && f.confChanges && rng.chance(f.confAfterElection)) {
          this.#sim.after(0, () => this.#confChange());
        }
        if (effect.role === "leader" && f.crashes && rng.chance(f.crashNewLeader)) {
          // Before its no-op commits: uncommitted entries of several terms pile up (paper Figure 8).
          this.#sim.after(rng.int(1, 15), () => this.#crashFor(node, rng.int(5, 2 * this.#sim.electionMs)));
        }
        return;
      case "Send":
        if (
          effect.message.type === "RequestVoteResponse" && effect.message.granted && !effect.message.preVote &&
          f.crashes && rng.chance(f.crashAfterVote)
        ) {
          this.#sim.after(rng.int(0, 3), () => this.#crashFor(node, rng.int(1, 50)));
        }
        if (
          effect.message.type === "RequestVote" && effect.message.transfer && !effect.message.preVote &&
          f.partitions && rng.chance(f.isolateTransferring)
        ) {
          const old = this.#sim.leader();
          if (old !== undefined && old !== node) {
            this.#sim.after(0, () => {
              this.#sim.note(old, `nemesis: ${node} campaigns on TimeoutNow; the old leader is cut off`);
              this.#sim.partition([this.#sim.nodeIds.filter((id) => id !== old)]);
            });
            this.#hold(rng.int(this.#sim.electionMs, 3 * this.#sim.electionMs), () => this.#sim.heal());
          }
        }
        return;
      case "ReceiveSnapshotChunk":
      case "SendSnapshot":
        if (f.crashes && rng.chance(f.crashDuringInstall)) {
          this.#sim.after(0, () => this.#crashFor(node, rng.int(1, this.#sim.electionMs)));
        }
        return;
    }
  }

  /**
   * A leader that just appended C_old,new is cut off together with the voters
   * that only C_new has, away from those only C_old has (§4.3): commits must
   * still need the old side, and the old side must not elect without the new.
   */
  #splitJoint(leader: NodeId, m: Membership): void {
    const outgoing = m.outgoing ?? [];
    const side = [leader, ...m.voters.filter((id) => id !== leader && !outgoing.includes(id))];
    const rest = this.#sim.nodeIds.filter((id) => !side.includes(id));
    this.#sim.after(0, () => {
      this.#sim.note(leader, `nemesis: joint configuration split {${side.join(",")}} | {${rest.join(",")}}`);
      this.#sim.partition([side, rest]);
    });
    // Half the time the leader then crashes: both sides elect, and must not both win a term.
    if (this.#f.crashes && this.#rng.chance(0.5)) {
      this.#sim.after(
        this.#rng.int(1, 20),
        () => this.#crashFor(leader, this.#rng.int(this.#sim.electionMs, 3 * this.#sim.electionMs)),
      );
    }
    this.#hold(this.#rng.int(this.#sim.electionMs, 4 * this.#sim.electionMs), () => this.#sim.heal());
  }

  /**
   * The leader's disk turns slow (its own writes lag its followers'
   * acknowledgements, so commits rest on them, thesis §10.2.1), then the
   * leader crashes while writes are in flight; the disk recovers after.
   */
  #slowDiskThenCrash(): void {
    const sim = this.#sim;
    const leader = sim.leader();
    if (leader === undefined) return;
    const rng = this.#rng;
    sim.note(leader, "nemesis: slow disk, then crash");
    sim.setDiskLatency(leader, [30, 150]);
    sim.after(rng.int(20, 200), () => this.#crashFor(leader, rng.int(5, 100)));
    sim.after(rng.int(300, 600), () => sim.setDiskLatency(leader, undefined));
  }

  #downtime(): number {
    const f = this.#f;
    return this.#rng.chance(0.3) ? this.#rng.int(f.minDowntimeMs, 50) : this.#rng.int(50, f.maxDowntimeMs);
  }

  #crashFor(id: NodeId, downtime: number): void {
    if (this.#sim.isUp(id)) this.#sim.crash(id, downtime);
  }

  /** Partitions `node` away (alone, or with one other node) right now; heals after a few election timeouts. */
  #cutOff(node: NodeId): void {
    const rng = this.#rng;
    const others = this.#sim.nodeIds.filter((id) => id !== node);
    const buddy = rng.chance(0.5) ? [rng.pick(others)] : [];
    this.#sim.after(0, () => {
      this.#sim.note(node, "nemesis: cut off after appending a configuration");
      this.#sim.partition([[node, ...buddy], others.filter((id) => !buddy.includes(id))]);
    });
    this.#hold(rng.int(this.#sim.electionMs, 5 * this.#sim.electionMs), () => this.#sim.heal());
  }

  /**
   * Isolates one node for a while — the leader half of the time, whose lease
   * must then run out before the others can elect — then lets it rejoin (the
   * others keep serving clients).
   */
  #isolateOne(): void {
    const sim = this.#sim;
    const ids = sim.nodeIds;
    const leader = sim.leader();
    const isolate = (node: NodeId) => {
      sim.note(node, "nemesis: isolated under load");
      sim.partition([ids.filter((id) => id !== node)]);
      this.#hold(this.#rng.int(sim.electionMs / 2, 5 * sim.electionMs), () => sim.heal());
    };
    if (leader === undefined || this.#rng.chance(0.5)) return isolate(this.#rng.pick(ids));
    // The leader: sometimes first moved to a random node, so that any node's clock may be the leader's.
    if (!this.#f.transfers || this.#rng.chance(0.5)) return isolate(leader);
    const target = this.#rng.pick(ids.filter((id) => id !== leader));
    sim.transferLeadership(leader, target);
    this.#hold(2 * sim.electionMs, () => {
      const now = sim.leader();
      if (now !== undefined) isolate(now);
    });
  }

  /**
   * The lease schedule: the leader keeps a bare majority L (itself and some
   * followers), the rest R lose contact with it; after more than an election
   * timeout — R's stickiness is gone — the leader is cut off, and one
   * follower of L crashes and restarts at once into R, where it could give R
   * its majority while the leader's lease, which it backed, still runs.
   */
  #leaseSchedule(): boolean {
    const sim = this.#sim;
    const leader = sim.leader();
    if (leader === undefined) return false;
    const voters = sim.membership(leader).voters.filter((id) => sim.isUp(id));
    if (voters.length < 3 || !voters.includes(leader)) return false;
    const rng = this.#rng;
    const majority = Math.floor(sim.membership(leader).voters.length / 2) + 1;
    const followers = voters.filter((id) => id !== leader);
    const backers: NodeId[] = [];
    while (backers.length < majority - 1 && followers.length > 0) {
      backers.push(followers.splice(rng.int(0, followers.length - 1), 1)[0]!);
    }
    if (backers.length === 0) return false;
    const rest = sim.nodeIds.filter((id) => id !== leader && !backers.includes(id));
    sim.note(leader, `nemesis: lease schedule, backers ${backers.join(",")}`);
    sim.partition([[leader, ...backers], rest]);
    const turn = rng.int(sim.electionMs + 1, 2 * sim.electionMs);
    const victim = backers[0]!;
    sim.after(turn, () => {
      sim.note(victim, "nemesis: backer restarts into the other side; leader cut off");
      sim.partition([[leader], backers.slice(1), [victim, ...rest]]);
      if (sim.isUp(victim)) sim.crash(victim, 0);
    });
    this.#hold(turn + rng.int(2, 6) * sim.electionMs, () => sim.heal());
    return true;
  }

  /** Keeps random partitions and heals off for `ms`, then runs `end`. */
  #hold(ms: number, end: () => void): void {
    this.#scheduleUntil = Math.max(this.#scheduleUntil, this.#sim.now + ms);
    this.#sim.after(ms, end);
  }

  #transfer(): void {
    const leader = this.#sim.leader();
    const target = this.#rng.pick(this.#sim.nodeIds);
    if (leader === undefined || target === leader) return;
    this.#sim.note(leader, `transfer leadership to ${target}`);
    this.#sim.transferLeadership(leader, target);
    if (this.#f.confChanges && this.#rng.chance(this.#f.transferRacingConf)) {
      this.#sim.after(this.#rng.int(0, 5), () => this.#confChange(false));
    }
  }

  /** Asks the leader for a random membership change (and, sometimes, a racing transfer). */
  #confChange(race = true): void {
    const sim = this.#sim;
    const rng = this.#rng;
    const leader = sim.leader();
    if (leader === undefined) return;
    const membership = sim.membership(leader);
    const change = rng.chance(this.#f.jointChanges) ? this.#jointChange(membership) : this.#singleChange(membership);
    sim.note(leader, `propose ${JSON.stringify(change)}`);
    sim.proposeConfChange(leader, change);
    if (race && this.#f.transfers && rng.chance(this.#f.transferRacingConf)) {
      sim.after(rng.int(0, 5), () => this.#transfer());
    }
  }

  #singleChange(membership: Membership): ConfChange {
    const rng = this.#rng;
    const node = rng.pick(this.#sim.nodeIds);
    const voters = membership.voters;
    // addVoter of a non-member adds a learner that the leader promotes once it has
    // caught up (§4.2.1); a learner may also be promoted on request.
    if (voters.includes(node)) return voters.length > 1 ? { type: "remove", node } : { type: "addVoter", node };
    if (membership.learners.includes(node)) {
      return rng.chance(0.5) ? { type: "promote", node } : { type: "remove", node };
    }
    return rng.chance(0.3) ? { type: "addLearner", node } : { type: "addVoter", node };
  }

  /** A joint change (§4.3): a random non-empty voter set, some of the rest as learners. */
  #jointChange(membership: Membership): ConfChange {
    const rng = this.#rng;
    const ids = this.#sim.nodeIds;
    let voters = ids.filter(() => rng.chance(0.6));
    if (voters.length === 0) voters = [rng.pick(ids)];
    // Keep most of the old voters some of the time, so changes are not always wholesale.
    if (rng.chance(0.5)) voters = [...new Set([...voters, ...membership.voters.slice(0, 1)])];
    const learners = ids.filter((id) => !voters.includes(id) && rng.chance(0.5));
    return { type: "joint", voters, learners };
  }
}
