/**
 * The calm phase ("epilogue") of a simulator run: after the random schedule
 * and the liveness check, with the network healed and every node up, a short
 * scripted scenario checks what honest Raft guarantees in a fault-free
 * network but no safety invariant can see, because breaking it costs only
 * availability:
 *
 * 1. forged hand-over messages do not disrupt a stable leader: a `TimeoutNow`
 *    from a node that is not the recipient's leader, and a `RequestVote`
 *    claiming a transfer (`transfer: true`) that no leader announced, leave
 *    every term unchanged (thesis §3.10: only the leader's TimeoutNow starts
 *    a transfer campaign; §4.2.3: a follower that hears from its leader
 *    disregards vote requests);
 * 2. a follower isolated for a while (its log still complete) rejoins
 *    without disrupting the leader (§9.6, pre-vote; only with pre-vote on);
 * 3. a leadership transfer asked for right after a lagging follower rejoins,
 *    under load, either completes — the target leads the next term — or is
 *    aborted with the old leader still leading its term (§3.10: the leader
 *    stops accepting proposals, sends TimeoutNow once the target is caught
 *    up, and aborts after an election timeout); and no write that the
 *    leader accepted from then on is lost (§3.10: proposals are refused
 *    during a transfer, so a hand-over drops nothing);
 * 4. the paper's Figure 8, scripted on five voters: an older-term entry that a
 *    new leader has put on a majority, but not yet its own no-op, is not
 *    committed, so the node that then overwrites it breaks no safety oracle
 *    (§5.4.2);
 * 5. a follower left behind the leader's compacted log rejoins and the first
 *    snapshot message sent to it is lost: it still catches up (§7: a lost
 *    transfer is detected and resent; here the stream resumes from the gap
 *    the follower reports, and a stream that hears nothing gives up, which
 *    makes the leader probe and send it again);
 * 6. Ongaro's 2015 errata to §4.1, scripted on four voters a, b, c, d: a
 *    appends "remove d" alone and is cut off; c is elected by b and d and,
 *    cut off from b at once, is asked to "remove a" before its own term has
 *    committed anything; a then wins with b's vote. A new leader must refuse
 *    a membership change until an entry of its term commits, or c (with d)
 *    and a (with b) commit different entries at the same index;
 * 7. one voter with learners: the voter, restarted, elects itself in one
 *    step and a write reaches it at once; it crashes there and is elected
 *    again in the same term (its term was not yet on disk) with another
 *    write. Its appends must wait for the write of its term (thesis §10.2.1
 *    lets them outrun the entries' writes only), or a learner holds a
 *    different entry under the same index and term (§5.3, log matching).
 *
 * Every property is one honest Raft keeps on every seed of every profile;
 * where a profile's settings void one, the restriction is stated where it
 * applies.
 *
 * @module
 */

import { lastIndex, lastTerm } from "../../core/log.ts";
import { allMembers, isJoint } from "../../core/membership.ts";
import { membershipOf } from "../../core/state.ts";
import type { Membership, NodeId, Term } from "../../core/types.ts";
import { ProposalDropped } from "../../effects/errors.ts";
import { Prng } from "./prng.ts";
import type { SimOperation, Simulator } from "./simulator.ts";

/** The invariant name calm-phase failures carry. */
export const CALM = "calm phase";

/** Runs the calm-phase scenario on `sim` (faults already off, every node up); throws on a violated property. */
export function calmPhase(sim: Simulator): void {
  new CalmPhase(sim).run();
}

class CalmPhase {
  readonly #sim: Simulator;
  readonly #rng: Prng;
  readonly #t: number;
  readonly #preVote: boolean;
  #key = 0;

  constructor(sim: Simulator) {
    this.#sim = sim;
    // A stream of its own, so the scenario does not depend on how the random schedule ended.
    this.#rng = new Prng(sim.options.seed ^ 0xca1a);
    this.#t = sim.options.electionTimeoutMs ?? 200;
    this.#preVote = sim.options.raft?.preVote !== false;
  }

  run(): void {
    const sim = this.#sim;
    sim.stopClients();
    // Messages of the faulty phase may still be in flight (stale copies come up to five election
    // timeouts late, held-back ones up to the fault profile's long delay): let them land first.
    sim.runFor(5 * this.#t + 500);
    this.#forgeries();
    this.#rejoin();
    this.#transferAfterRejoin();
    this.#figure8();
    this.#lostSnapshot();
    this.#errata();
    this.#loneVoter();
  }

  /** Step 1: forged TimeoutNow and transfer RequestVote to a follower; nothing may change. */
  #forgeries(): void {
    const sim = this.#sim;
    const { leader, term, membership } = this.#settle("before the forgeries");
    const followers = membership.voters.filter((id) => id !== leader);
    if (followers.length === 0) return;
    const victim = this.#rng.pick(followers);
    // Not a candidate the leader announced this term (an aborted transfer's target may still campaign).
    const role = sim.state(victim).role;
    const announced = role.kind === "follower" ? role.transferTo : undefined;
    const forgers = sim.nodeIds.filter((id) => id !== leader && id !== victim && id !== announced);
    if (forgers.length === 0) return;
    const forger = this.#rng.pick(forgers);
    const group = sim.state(victim).config.group;
    const log = sim.state(leader).log;
    sim.inject({ type: "TimeoutNow", group, from: forger, to: victim, term, candidate: victim });
    sim.inject({
      type: "RequestVote",
      group,
      from: forger,
      to: victim,
      term: term + 1,
      preVote: false,
      lastIndex: lastIndex(log),
      lastTerm: lastTerm(log),
      transfer: true,
    });
    this.#load(2 * this.#t, this.#t / 4);
    this.#expectStable(
      leader,
      term,
      membership,
      `a forged TimeoutNow and transfer RequestVote from ${forger} to ${victim} (whose leader is ${leader}) ` +
        "disrupted a stable leader (§3.10: only the leader's TimeoutNow starts a transfer campaign; " +
        "§4.2.3: a follower that hears from its leader disregards vote requests)",
    );
  }

  /** Step 2: a follower with a complete log is isolated without load, then rejoins. */
  #rejoin(): void {
    const sim = this.#sim;
    const { leader, term, membership } = this.#settle("before isolating a follower");
    const follower = this.#isolable(leader, membership);
    if (follower === undefined) return;
    sim.partition([sim.nodeIds.filter((id) => id !== follower)]);
    sim.runFor(this.#rng.int(this.#t, 3 * this.#t));
    sim.heal();
    sim.runFor(2 * this.#t);
    // Without pre-vote the isolated node's campaigns raised its term, and its return
    // legitimately forces an election: §9.6's pre-vote is what prevents that.
    if (!this.#preVote) return;
    this.#expectStable(
      leader,
      term,
      membership,
      `${follower}, isolated with a complete log and healed, disrupted the leader (§9.6: with pre-vote, a ` +
        "rejoining node cannot win votes while the others hear from their leader)",
    );
  }

  /** Step 3: isolate a follower under load, heal, hand leadership to it at once while writes keep coming. */
  #transferAfterRejoin(): void {
    const sim = this.#sim;
    let { leader, membership } = this.#settle("before isolating a follower under load");
    const target = this.#isolable(leader, membership);
    if (target === undefined) return;
    sim.partition([sim.nodeIds.filter((id) => id !== target)]);
    this.#load(this.#rng.int(this.#t, 3 * this.#t), this.#t / 2);
    sim.heal();
    // Without pre-vote the healed node may campaign before it hears from the leader (see #rejoin),
    // which forces an election: hand over after that has had its chance.
    if (!this.#preVote) {
      sim.runFor(2 * this.#t);
      ({ leader, membership } = this.#settle("after the lagging follower rejoined"));
    }
    if (leader === target) return;
    const term = sim.state(leader).term;
    const wanted = lastIndex(sim.state(leader).log);
    const asked = sim.transferLeadership(leader, target);
    const deadline = sim.now + this.#t; // the leader aborts after one election timeout (§3.10)
    let caughtUp = Infinity;
    let during = 0; // writes issued while the transfer was pending
    const writes: SimOperation[] = [];
    this.#load(3 * this.#t, this.#t / 10, writes, () => {
      if (caughtUp === Infinity && sim.state(target).log.stable >= wanted) caughtUp = sim.now;
      if (!sim.transfers.has(asked)) during = writes.length;
    });
    this.#drain(writes);
    const after = this.#settle("after the transfer");
    // The leader may abort just after sending TimeoutNow (the target caught up at the last
    // moment); the target's campaign then races the resumed proposals and may fail, which §3.10
    // allows. So: caught up early enough for the hand-over to finish (a TimeoutNow, a durable
    // vote request and its answer: three trips and two disk writes) → it must complete; never
    // caught up before the deadline → it must be aborted cleanly; in between, either may happen.
    const trip = sim.options.maxLatencyMs ?? 10;
    const disk = sim.options.maxDiskMs ?? 6;
    const early = caughtUp <= deadline - (3 * trip + 2 * disk + 1);
    const late = caughtUp > deadline;
    // With more than three voters the target may also need a vote from a follower that sees its
    // RequestVote before the leader's TimeoutNow (still sticky, it refuses); the campaign then
    // fails and a later term elects, which §3.10 allows. With three, the leader's vote suffices.
    const three = membership.voters.length === 3 && sameVoters(membership, after.membership);
    const handedOver = after.leader === target && after.term === term + 1;
    const aborted = after.leader === leader && after.term === term;
    if (three && ((early && !handedOver) || (late && !aborted))) {
      sim.fail(
        CALM,
        `transfer ${asked} from ${leader} (term ${term}) to ${target}, asked right after ${target} rejoined, ` +
          `ended with ${after.leader} leading term ${after.term} (outcome ${sim.transfers.get(asked)}; the target ` +
          `held index ${wanted} ${caughtUp === Infinity ? "never" : `${caughtUp - deadline + this.#t} ms after`} ` +
          "the request); §3.10: a target caught up in time takes over in the next term, and a transfer that " +
          "cannot complete is aborted with the old leader still leading",
      );
    }
    for (const w of writes.slice(0, during)) {
      if (w.status === "ok" || (w.status === "failed" && !(w.error instanceof ProposalDropped))) continue;
      if (w.status !== "failed" && w.applied) continue;
      sim.fail(
        CALM,
        `a write accepted by ${w.node} during a calm leadership transfer was lost (${w.status}: ${
          String(w.error)
        }); §3.10: the leader refuses proposals while it hands over, so a transfer drops nothing`,
      );
    }
  }

  /**
   * Step 4, the paper's Figure 8 acted out on five voters (S1…S5 there): (a)
   * leader S1 appends an entry that only S2 receives; (b) the other three
   * elect S5, whose own entry at that index is cut off at once; (c) S1 or S2
   * leads the four others in a later term and re-replicates the old entry; the
   * moment a third node holds it, that leader is cut off with S2, and (d) S5
   * may win the other side and overwrite it. §5.4.2: the old entry was never
   * committed (a leader commits older-term entries only through one of its
   * own), so the safety oracles (leader completeness, committed-entry
   * agreement) must stay quiet. With one entry per message and one in flight
   * (some randomized settings), the old entry reaches the third node alone.
   */
  #figure8(): void {
    const sim = this.#sim;
    const t = this.#t;
    const { leader: s1, term, membership } = this.#settle("before Figure 8");
    if (membership.voters.length !== 5) return;
    const s2 = this.#rng.pick(membership.voters.filter((id) => id !== s1));
    const rest = membership.voters.filter((id) => id !== s1 && id !== s2);
    sim.note(s1, `calm phase: Figure 8 with ${s2} | ${rest.join(",")}`);
    // (a)
    sim.partition([[s1, s2], rest]);
    const old = lastIndex(sim.state(s1).log) + 1;
    sim.put(s1, "figure8", "old");
    const reached = sim.runUntil(() => sim.state(s2).log.stable >= old && sim.state(s2).term === term, 2 * t);
    // (b)
    const s5 = reached ? this.#leaderAmong(rest, 20 * t) : undefined;
    if (s5 !== undefined) {
      const others = rest.filter((id) => id !== s5);
      // (c) S5's entry, just sent, is dropped on arrival: it stays S5's alone.
      sim.partition([[s1, s2, ...others], [s5]]);
      let lead: NodeId | undefined;
      const holder = () => {
        const l = [s1, s2].find((id) => sim.state(id).role.kind === "leader" && sim.state(id).term > term);
        if (l === undefined) return false;
        const role = sim.state(l).role;
        if (role.kind !== "leader" || !others.some((id) => (role.progress.get(id)?.match ?? 0) >= old)) return false;
        lead = l;
        return true;
      };
      if (sim.runUntil(holder, 20 * t) && lead !== undefined) {
        const mate = lead === s1 ? s2 : s1;
        sim.partition([[lead], [mate], [s5, ...others]]);
        // (d) Only S5 can win here (its last entry has the newest term); give it time to.
        this.#leaderAmong([s5], 10 * t);
      }
    }
    sim.heal();
    this.#settle("after Figure 8");
  }

  /** Step 5: a follower rejoins behind the leader's compacted log; the first snapshot message to it is lost. */
  #lostSnapshot(): void {
    const sim = this.#sim;
    const t = this.#t;
    const { leader, membership } = this.#settle("before the lost snapshot");
    if (sim.state(leader).config.snapshotEvery <= 0) return;
    const follower = this.#isolable(leader, membership);
    if (follower === undefined) return;
    sim.note(leader, `calm phase: ${follower} falls behind a snapshot, whose first message is lost`);
    sim.partition([sim.nodeIds.filter((id) => id !== follower)]);
    const behind = lastIndex(sim.state(follower).log);
    // Write until the leader has compacted away the entry after the follower's last.
    const until = sim.now + 40 * t;
    while (sim.now < until && sim.leader() === leader && sim.state(leader).log.offset <= behind) {
      this.#drain(this.#load(t / 2, t / 20));
    }
    if (sim.leader() !== leader || sim.state(leader).log.offset <= behind) {
      sim.heal();
      return;
    }
    sim.dropNext((m) => m.type === "InstallSnapshot" && m.to === follower);
    sim.heal();
    const wanted = sim.state(leader).commit;
    // Recovery takes at most a few idle rounds of the stream (an election timeout each) and one
    // leader round; give it twenty. A leader change (pre-vote off: the rejoining node's campaigns)
    // starts the transfer afresh, and the check is moot.
    const caughtUp = sim.runUntil(() => sim.state(follower).applied >= wanted || sim.leader() !== leader, 20 * t);
    if (!caughtUp) {
      sim.fail(
        CALM,
        `${follower}, behind ${leader}'s snapshot, lost the first snapshot message and had applied only ` +
          `${sim.state(follower).applied} of ${wanted} ${20 * t} ms later, with ${leader} still leading ` +
          "(§7: a lost snapshot transfer is detected and sent again)",
      );
    }
  }

  /** Step 6: Ongaro's errata to §4.1, on a simple configuration of exactly four voters. */
  #errata(): void {
    const sim = this.#sim;
    const t = this.#t;
    const { leader: a, term, membership } = this.#settle("before the errata schedule");
    if (isJoint(membership) || membership.voters.length !== 4 || membership.learners.length > 0) return;
    const others = membership.voters.filter((id) => id !== a);
    const d = this.#rng.pick(others);
    sim.note(a, `calm phase: §4.1 errata, ${a} cut off with "remove ${d}"`);
    sim.partition([[a], others]);
    sim.proposeConfChange(a, { type: "remove", node: d });
    const c = this.#leaderAmong(others, 20 * t, term);
    // The scenario needs c ≠ d (d is the node a's change removes); otherwise just heal.
    if (c !== undefined && c !== d) {
      const b = others.find((id) => id !== c && id !== d)!;
      // c's first messages, just sent, are dropped on arrival: b never hears from c.
      sim.partition([[a, b], [c, d]]);
      sim.proposeConfChange(c, { type: "remove", node: a });
      // a (under its own "remove d": voters a, b, c) can now win with b's vote; the safety oracles
      // see a divergence the moment both sides commit the index after a's last common entry.
      this.#leaderAmong([a], 20 * t, sim.state(c).term);
      sim.runFor(4 * t);
    }
    sim.heal();
    this.#settle("after the errata schedule");
  }

  /** Step 7: the leader becomes the only voter; restarted, it is crashed the moment it re-elects itself. */
  #loneVoter(): void {
    const sim = this.#sim;
    const t = this.#t;
    const { leader: a, membership } = this.#settle("before the lone-voter schedule");
    const learners = allMembers(membership).filter((id) => id !== a);
    if (learners.length === 0) return;
    sim.note(a, `calm phase: ${a} the only voter (${learners.join(",")} learners), crashed as it is elected`);
    sim.proposeConfChange(a, { type: "joint", voters: [a], learners });
    const alone = () => {
      const s = sim.state(a);
      const m = membershipOf(s);
      return !isJoint(m) && m.voters.length === 1 && s.configs[s.configs.length - 1]!.index <= s.commit;
    };
    if (!sim.runUntil(alone, 20 * t) || sim.leader() !== a) return;
    sim.runFor(2 * t); // the learners catch up
    const elect = (when: string) => {
      if (this.#leaderAmong([a], 20 * t) === undefined) {
        sim.fail(CALM, `${a}, the only voter, did not elect itself within ${20 * t} ms ${when}`);
      }
    };
    // A slow disk keeps the write of its new term pending for several round trips: long enough
    // for the learners to acknowledge its no-op and for a write to follow, if it let them out.
    const trip = sim.options.maxLatencyMs ?? 10;
    const disk = [sim.options.minDiskMs ?? 1, sim.options.maxDiskMs ?? 6] as const;
    sim.crash(a);
    sim.restart(a);
    sim.setDiskLatency(a, 8 * trip + 10, 8 * trip + 10);
    elect("after a restart");
    sim.put(a, "lone", "first");
    sim.runFor(5 * trip + 2);
    sim.crash(a); // the write of its term, still pending, is lost
    sim.setDiskLatency(a, disk[0], disk[1]);
    sim.runFor(2 * trip + 2); // answers to the crashed node (carrying the lost term) die with it
    sim.restart(a);
    elect("after a crash at its election");
    sim.put(a, "lone", "second");
    sim.runFor(2 * t);
  }

  /** Runs until one of `ids` leads a term above `aboveTerm` (at most `ms`); that node, or undefined. */
  #leaderAmong(ids: readonly NodeId[], ms: number, aboveTerm: Term = 0): NodeId | undefined {
    const sim = this.#sim;
    const leading = () => ids.find((id) => sim.state(id).role.kind === "leader" && sim.state(id).term > aboveTerm);
    sim.runUntil(() => leading() !== undefined, ms);
    return leading();
  }

  /** A voter other than `leader` that can be cut off with a majority left (a 3+-voter simple configuration). */
  #isolable(leader: NodeId, membership: Membership): NodeId | undefined {
    if (isJoint(membership) || membership.voters.length < 3) return undefined;
    return this.#rng.pick(membership.voters.filter((id) => id !== leader));
  }

  /** Waits until one leader leads a simple configuration, transfers none, and every member follows it in its term. */
  #settle(when: string): { leader: NodeId; term: Term; membership: Membership } {
    const sim = this.#sim;
    let found: { leader: NodeId; term: Term; membership: Membership } | undefined;
    const settled = (): boolean => {
      const leaders = sim.leaders();
      if (leaders.length !== 1) return false;
      const leader = leaders[0]!;
      const s = sim.state(leader);
      const membership = membershipOf(s);
      // A transfer the random schedule asked for may still be under way: wait for its end.
      if (isJoint(membership) || (s.role.kind === "leader" && s.role.transfer !== undefined)) return false;
      for (const id of allMembers(membership)) {
        if (id === leader) continue;
        const f = sim.state(id);
        if (!sim.isUp(id) || f.term !== s.term || f.role.kind !== "follower" || f.role.leader !== leader) return false;
      }
      found = { leader, term: s.term, membership };
      return true;
    };
    if (!sim.runUntil(settled, 20 * this.#t) || found === undefined) {
      return sim.fail(CALM, `${when}: no single leader with every member following it within ${20 * this.#t} ms`);
    }
    return found;
  }

  /** Issues a write to the current leader every `every` ms for `ms` into `writes` (calling `each` after every event). */
  #load(ms: number, every: number, writes: SimOperation[] = [], each?: () => void): SimOperation[] {
    const sim = this.#sim;
    const until = sim.now + ms;
    while (sim.now < until) {
      const leader = sim.leader();
      if (leader !== undefined) writes.push(sim.put(leader, `calm${this.#key}`, String(this.#key++)));
      sim.runFor(Math.max(1, Math.min(every, until - sim.now)), each);
    }
    return writes;
  }

  /** Runs until every write in `writes` is answered (clients time out after ten election timeouts). */
  #drain(writes: readonly SimOperation[]): void {
    this.#sim.runUntil(() => writes.every((w) => w.status !== "pending"), 20 * this.#t);
  }

  /** Fails with `what` unless `leader` still leads `term` and every member is still in it. */
  #expectStable(leader: NodeId, term: Term, membership: Membership, what: string): void {
    const sim = this.#sim;
    const moved = allMembers(membership).filter((id) => sim.state(id).term !== term);
    if (sim.leader() === leader && sim.state(leader).role.kind === "leader" && moved.length === 0) return;
    sim.fail(
      CALM,
      `${what}; leader now ${sim.leader() ?? "none"}, terms ${
        allMembers(membership).map((id) => `${id}@${sim.state(id).term}`).join(" ")
      } (was ${term})`,
    );
  }
}

function sameVoters(a: Membership, b: Membership): boolean {
  return a.voters.length === b.voters.length && a.voters.every((id) => b.voters.includes(id));
}
