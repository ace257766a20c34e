/**
 * The host's failure detector (many groups per process), sans-IO: one beacon
 * per peer process per interval — and none towards a peer that was sent
 * something else since the last one, since any frame proves liveness — and a
 * peer is down once nothing was heard from it for the timeout (not counting
 * the time this process itself was late to check: a stall here is not the
 * peer's silence). Quiescent
 * groups rely on it instead of their own heartbeats (`core/quiesce.ts`).
 *
 * @module
 */

import type { NodeId } from "../../core/types.ts";

/** What one {@link Liveness.due} found: beacons to send, peers just lost. */
export interface LivenessDue {
  /** Peers to send a beacon to now. */
  readonly beacons: readonly NodeId[];
  /** Peers not heard from for the timeout, reported once per loss. */
  readonly down: readonly NodeId[];
}

interface PeerState {
  heard: number;
  sent: number;
  down: boolean;
}

/** Per-peer-process liveness: when each was last heard from and sent to. */
export class Liveness {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #peers = new Map<NodeId, PeerState>();
  #nextBeacon: number;
  #lastDue: number | undefined;

  /** Beacons every `intervalMs`; a peer silent for `timeoutMs` is down. */
  constructor(intervalMs: number, timeoutMs: number, now: number) {
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#nextBeacon = now;
  }

  /** Sets the peers to watch; a new one counts as heard now (it gets a full timeout). */
  watch(peers: Iterable<NodeId>, now: number): void {
    const keep = new Set(peers);
    for (const id of this.#peers.keys()) if (!keep.has(id)) this.#peers.delete(id);
    for (const id of keep) if (!this.#peers.has(id)) this.#peers.set(id, { heard: now, sent: -Infinity, down: false });
  }

  /**
   * Something from `peer` arrived at `at` (never moves its last-heard time
   * back). True when this brings back a peer reported down.
   */
  heard(peer: NodeId, at: number): boolean {
    const p = this.#peers.get(peer);
    if (!p) return false;
    p.heard = Math.max(p.heard, at);
    const back = p.down;
    p.down = false;
    return back;
  }

  /** Something was sent to `peer` (it stands in for a beacon). */
  sent(peer: NodeId, now: number): void {
    const p = this.#peers.get(peer);
    if (p) p.sent = now;
  }

  /** Whether `peer` is considered up. */
  isUp(peer: NodeId): boolean {
    return this.#peers.get(peer)?.down === false;
  }

  /** When {@link due} next has something to do. */
  nextDeadline(): number {
    let next = this.#nextBeacon;
    for (const p of this.#peers.values()) if (!p.down) next = Math.min(next, p.heard + this.#timeoutMs);
    return next;
  }

  /** Beacons due and peers lost, as of `now`. */
  due(now: number): LivenessDue {
    const beacons: NodeId[] = [];
    const down: NodeId[] = [];
    // This process was late (a long iteration, starved of CPU): what peers sent meanwhile may not be
    // read yet, so the lateness is not held against them (a peer is down after `timeoutMs` of our time).
    const late = this.#lastDue === undefined ? 0 : now - this.#lastDue - 2 * this.#intervalMs;
    this.#lastDue = now;
    if (late > 0) { for (const p of this.#peers.values()) if (!p.down) p.heard = Math.min(now, p.heard + late); }
    const beaconTime = now >= this.#nextBeacon;
    if (beaconTime) this.#nextBeacon = now + this.#intervalMs;
    for (const [id, p] of this.#peers) {
      if (beaconTime && now - p.sent >= this.#intervalMs) {
        beacons.push(id);
        p.sent = now;
      }
      if (!p.down && now - p.heard >= this.#timeoutMs) {
        p.down = true;
        down.push(id);
      }
    }
    return { beacons, down };
  }
}
