/**
 * Three host drivers (`a`, `b`, `c`) of the same groups over a hand-driven
 * network: messages delivered at once, disks durable at once, one shared
 * clock. For the host driver's own tests (`effects/host/*.test.ts`).
 *
 * @module
 */

import { makeConfig } from "../core/config.ts";
import { membershipOf } from "../core/membership.ts";
import type { GroupId, Message, NodeId } from "../core/types.ts";
import { HostDriver } from "../effects/host/host_driver.ts";

/** The hosts' ids. */
export const HOST_IDS: readonly NodeId[] = ["a", "b", "c"];
/** The groups' heartbeat interval, and the hosts' beacon interval. */
export const HEARTBEAT_MS = 20;
/** The groups' election timeout, and the hosts' failure timeout. */
export const ELECTION_MS = 200;

/** How a {@link HostNet} is set up. */
export interface HostNetOptions {
  /** The groups every host runs (a count: groups 1..n). */
  readonly groups: readonly GroupId[] | number;
  /** The groups' quiescence (default: the core's default). */
  readonly quiesce?: boolean;
  /** Coalesced heartbeats between the hosts (default true). */
  readonly coalesce?: boolean;
  /** The groups' lease reads (default false). */
  readonly leaseReads?: boolean;
  /** Every timer is handled this much after it is due (a busy loop). */
  readonly lateMs?: number;
}

/** Three hosts over a network the test drives; see the module doc. */
export class HostNet {
  /** Each host's driver. */
  readonly hosts: Map<NodeId, HostDriver> = new Map();
  /** The last index applied, by `host/group`. */
  readonly applied: Map<string, number> = new Map();
  /** Proposal outcomes a test records, by its own key. */
  readonly results: Map<number, unknown> = new Map();
  /** Hosts that are down: they neither run nor get messages. */
  readonly down: Set<NodeId> = new Set();
  /** Directed links (`from>to`) that drop everything. */
  readonly cut: Set<string> = new Set();
  /** What each group's driver was given to step, by `host/group`. */
  readonly stepped: Map<string, Message[]> = new Map();
  /** The shared clock. */
  now = 0;
  /** Wire messages delivered. */
  delivered = 0;
  /** Group messages delivered: a coalesced message counts each it carries. */
  groupMessages = 0;
  /** Write units made durable. */
  writes = 0;
  /** Record each take's sends in {@link takes}. */
  recording = false;
  /** Each take's sends, per host (while recording). */
  takes: { from: NodeId; sends: readonly Message[] }[] = [];
  #inFlight: Message[] = [];

  /** Three hosts of the same groups; see {@link HostNetOptions}. */
  constructor(readonly options: HostNetOptions) {
    for (const id of HOST_IDS) {
      const host = new HostDriver({
        self: id,
        heartbeatMs: HEARTBEAT_MS,
        failureTimeoutMs: ELECTION_MS,
        coalesceHeartbeats: options.coalesce ?? true,
      }, 0);
      for (const g of this.groups()) {
        const driver = host.addGroup(
          g,
          {
            config: makeConfig({
              id,
              group: g,
              electionTimeoutMs: ELECTION_MS,
              heartbeatMs: HEARTBEAT_MS,
              leaseReads: options.leaseReads ?? false,
              ...(options.quiesce === undefined ? {} : { quiesce: options.quiesce }),
              seed: g * 7 + id.charCodeAt(0),
            }),
            membership: membershipOf(HOST_IDS),
          },
          {},
          0,
        );
        const log: Message[] = [];
        this.stepped.set(`${id}/${g}`, log);
        const receive = driver.receive.bind(driver);
        driver.receive = (m, now) => {
          log.push(m);
          receive(m, now);
        };
      }
      this.hosts.set(id, host);
    }
  }

  /** The groups every host runs. */
  groups(): GroupId[] {
    const g = this.options.groups;
    return typeof g === "number" ? Array.from({ length: g }, (_, i) => i + 1) : [...g];
  }

  /** Carries out every host's work until none is left. */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const [id, host] of this.hosts) {
        if (this.down.has(id)) continue;
        while (host.hasWork) {
          busy = true;
          const w = host.take();
          if (this.recording) this.takes.push({ from: id, sends: w.sends });
          for (const m of w.sends) this.#inFlight.push(m);
          if (w.write) {
            this.writes++;
            host.written(w.write.id, this.now);
          }
          for (const a of w.applies) {
            host.applyAll(a.group, a.entries, (e) => {
              this.applied.set(`${id}/${a.group}`, e.index);
              return e.index;
            });
          }
        }
      }
      const msgs = this.#inFlight;
      this.#inFlight = [];
      for (const m of msgs) {
        if (this.down.has(m.to) || this.down.has(m.from) || this.cut.has(`${m.from}>${m.to}`)) continue;
        this.delivered++;
        this.groupMessages += m.type === "Heartbeats" || m.type === "HeartbeatResponses" ? m.items.length : 1;
        this.hosts.get(m.to)!.receive(m, this.now);
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error("no quiescence of the work loop");
  }

  /** Advances the clock by `ms`, firing timers in order (each `lateMs` late). */
  run(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      this.settle();
      let next = Infinity;
      for (const [id, h] of this.hosts) if (!this.down.has(id)) next = Math.min(next, h.nextDeadline());
      if (next > until) break;
      this.now = Math.max(this.now, next + (this.options.lateMs ?? 0));
      if (this.now > until) break;
      for (const [id, h] of this.hosts) if (!this.down.has(id)) h.tick(this.now);
    }
    this.now = until;
  }

  /** Runs until every group has a leader (at most `ms`). */
  elect(ms = 5_000): void {
    const until = this.now + ms;
    while (this.now < until) {
      this.run(50);
      if (this.groups().every((g) => this.leader(g) !== undefined)) return;
    }
    throw new Error("not every group elected a leader");
  }

  /** Group `g`'s leader among the hosts that are up. */
  leader(g: GroupId): NodeId | undefined {
    for (const [id, h] of this.hosts) {
      if (!this.down.has(id) && h.driver(g)?.state.role.kind === "leader") return id;
    }
    return undefined;
  }

  /** Cuts every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of HOST_IDS) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }
}
