/**
 * Coalesced heartbeats between two hosts (CockroachDB's idea, for many groups
 * per process), sans-IO: the empty AppendEntries a host's groups send to one
 * peer process in one iteration travel as one {@link Heartbeats} message, and
 * their successful answers as one {@link HeartbeatResponses}; the receiving
 * host expands each back into the very messages the groups sent, so every
 * core steps exactly what it would have stepped without coalescing — the
 * safety arguments (check-quorum, ReadIndex rounds and leases, which ride on
 * `seq`) do not change, only the number of messages on the wire does.
 *
 * Order: a group's messages to a peer are coalesced only when every one of
 * them in the iteration is of the same coalescable kind, so no message of a
 * group overtakes another of the same group to the same peer (other groups'
 * messages are independent Raft instances: their relative order is free).
 *
 * @module
 */

import { MAX_COALESCED_ITEMS } from "../../core/codec/message.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  HeartbeatItem,
  HeartbeatResponseItem,
  HeartbeatResponses,
  Heartbeats,
  Message,
} from "../../core/types.ts";

/** An empty AppendEntries: a heartbeat, a probe or a commit announcement (all rebuilt exactly from an item). */
function isHeartbeat(m: Message): m is AppendEntries {
  return m.type === "AppendEntries" && m.entries.length === 0;
}

/** A successful AppendEntries answer (the conflict hints are 0 on every one the core builds). */
function isHeartbeatResponse(m: Message): m is AppendEntriesResponse {
  return m.type === "AppendEntriesResponse" && m.success && m.conflictTerm === 0 && m.conflictIndex === 0;
}

type Kind = "heartbeat" | "response" | "single";

function kindOf(m: Message): Kind {
  if (isHeartbeat(m)) return "heartbeat";
  if (isHeartbeatResponse(m)) return "response";
  return "single";
}

/** The item of one heartbeat: every field of its AppendEntries but the pair's `from` and `to`. */
function heartbeatItem(m: AppendEntries): HeartbeatItem {
  const item: HeartbeatItem = {
    group: m.group,
    term: m.term,
    prevIndex: m.prevIndex,
    prevTerm: m.prevTerm,
    commit: m.commit,
    seq: m.seq,
  };
  return m.quiesce === true ? { ...item, quiesce: true } : item;
}

function responseItem(m: AppendEntriesResponse): HeartbeatResponseItem {
  return { group: m.group, term: m.term, index: m.index, seq: m.seq };
}

interface Batch {
  readonly kind: "heartbeat" | "response";
  readonly originals: Message[];
}

/**
 * One iteration's sends with the empty AppendEntries, and the successful
 * answers, of many groups to the same peer packed into one message per peer
 * and kind (split every {@link MAX_COALESCED_ITEMS} items), placed where the
 * first of them was. A lone one stays as it was (wrapping it saves nothing).
 * Every other message, and the relative order of each group's messages to
 * each peer, is kept.
 */
export function coalesce(sends: readonly Message[]): Message[] {
  // Most iterations under load carry appends only: leave them without building any key.
  let candidates = 0;
  for (const m of sends) if (kindOf(m) !== "single") candidates++;
  if (candidates < 2) return sends.slice();
  // Which (group, peer) pairs send only messages of one coalescable kind in this iteration.
  const pairs = new Map<string, Kind>();
  for (const m of sends) {
    if (m.type === "HostHeartbeat" || m.type === "Heartbeats" || m.type === "HeartbeatResponses") continue;
    const key = `${m.group}\u0000${m.from}\u0000${m.to}`;
    const kind = kindOf(m);
    const seen = pairs.get(key);
    pairs.set(key, seen === undefined || seen === kind ? kind : "single");
  }
  const out: (Message | Batch)[] = [];
  const batches = new Map<string, Batch>();
  for (const m of sends) {
    const kind = m.type === "HostHeartbeat" || m.type === "Heartbeats" || m.type === "HeartbeatResponses"
      ? "single"
      : pairs.get(`${m.group}\u0000${m.from}\u0000${m.to}`)!;
    if (kind === "single") {
      out.push(m);
      continue;
    }
    const key = `${kind}\u0000${m.from}\u0000${m.to}`;
    let batch = batches.get(key);
    if (!batch) {
      batch = { kind, originals: [] };
      batches.set(key, batch);
      out.push(batch);
    }
    batch.originals.push(m);
  }
  const result: Message[] = [];
  for (const x of out) {
    if (!("originals" in x)) {
      result.push(x);
      continue;
    }
    if (x.originals.length === 1) {
      result.push(x.originals[0]!);
      continue;
    }
    for (let i = 0; i < x.originals.length; i += MAX_COALESCED_ITEMS) {
      const part = x.originals.slice(i, i + MAX_COALESCED_ITEMS);
      const { from, to } = part[0]!;
      if (part.length === 1) result.push(part[0]!);
      else if (x.kind === "heartbeat") {
        result.push({
          type: "Heartbeats",
          group: 0,
          from,
          to,
          term: 0,
          items: part.map((m) => heartbeatItem(m as AppendEntries)),
        });
      } else {
        result.push({
          type: "HeartbeatResponses",
          group: 0,
          from,
          to,
          term: 0,
          items: part.map((m) => responseItem(m as AppendEntriesResponse)),
        });
      }
    }
  }
  return result;
}

/** The groups' own messages a coalesced message carries, in order, as their senders built them. */
export function expand(m: Heartbeats | HeartbeatResponses): Message[] {
  const { from, to } = m;
  if (m.type === "Heartbeats") {
    return m.items.map((x) => {
      const ae: AppendEntries = {
        type: "AppendEntries",
        group: x.group,
        from,
        to,
        term: x.term,
        prevIndex: x.prevIndex,
        prevTerm: x.prevTerm,
        entries: [],
        commit: x.commit,
        seq: x.seq,
      };
      return x.quiesce === true ? { ...ae, quiesce: true } : ae;
    });
  }
  return m.items.map((x): AppendEntriesResponse => ({
    type: "AppendEntriesResponse",
    group: x.group,
    from,
    to,
    term: x.term,
    success: true,
    index: x.index,
    conflictTerm: 0,
    conflictIndex: 0,
    seq: x.seq,
  }));
}
