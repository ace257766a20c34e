/**
 * Coalesced heartbeats: the packing on its own, then three host drivers over
 * a hand-driven network (instant disks, a shared clock), with and without
 * coalescing, checking what crosses the wire and what each group's core is
 * given to step.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MAX_COALESCED_ITEMS } from "../../core/codec/message.ts";
import { decodeMessage, encodeMessage } from "../../core/codec/mod.ts";
import type { AppendEntries, AppendEntriesResponse, GroupId, Message, NodeId } from "../../core/types.ts";
import { coalesce, expand } from "./coalesce.ts";
import { ELECTION_MS, HEARTBEAT_MS, HOST_IDS, HostNet } from "../../tests/host_net.ts";

const heartbeat = (group: GroupId, to: NodeId, extra: Partial<AppendEntries> = {}): AppendEntries => ({
  type: "AppendEntries",
  group,
  from: "a",
  to,
  term: 3,
  prevIndex: 10 + group,
  prevTerm: 3,
  entries: [],
  commit: 10 + group,
  seq: 7,
  ...extra,
});

const ack = (group: GroupId, to: NodeId, extra: Partial<AppendEntriesResponse> = {}): AppendEntriesResponse => ({
  type: "AppendEntriesResponse",
  group,
  from: "a",
  to,
  term: 3,
  success: true,
  index: 10 + group,
  conflictTerm: 0,
  conflictIndex: 0,
  seq: 7,
  ...extra,
});

/** Every message a list stands for, coalesced ones expanded. */
const flatten = (ms: readonly Message[]): Message[] =>
  ms.flatMap((m) => (m.type === "Heartbeats" || m.type === "HeartbeatResponses" ? expand(m) : [m]));

/** The messages of `group` in `ms`, in order. */
const ofGroup = (ms: readonly Message[], group: GroupId, to: NodeId) =>
  ms.filter((m) => m.group === group && m.to === to);

describe("coalesce", () => {
  test("many groups' heartbeats to one peer become one message per peer, rebuilt exactly", () => {
    const sends: Message[] = [];
    for (let g = 1; g <= 100; g++) {
      sends.push(heartbeat(g, "b", g % 10 === 0 ? { quiesce: true, prevTerm: 2, commit: 4 } : {}));
      sends.push(heartbeat(g, "c", { seq: g }));
    }
    const out = coalesce(sends);
    assert.deepEqual(out.map((m) => `${m.type}->${m.to}`), ["Heartbeats->b", "Heartbeats->c"]);
    // Through the codec too: what the receiving host expands is what the groups sent.
    const received = out.map((m) => decodeMessage(encodeMessage(m)));
    for (const to of ["b", "c"]) {
      assert.deepEqual(flatten(received).filter((m) => m.to === to), sends.filter((m) => m.to === to));
    }
  });

  test("successful answers are coalesced; rejections and appends with entries leave as they are", () => {
    const reject = ack(2, "b", { success: false, conflictTerm: 1, conflictIndex: 3 });
    const append = heartbeat(4, "b", {
      entries: [{ term: 3, index: 15, kind: "command", data: new Uint8Array([1]), config: undefined }],
    });
    const sends: Message[] = [ack(1, "b"), reject, ack(3, "b"), append, ack(5, "b")];
    const out = coalesce(sends);
    assert.deepEqual(out.map((m) => m.type), ["HeartbeatResponses", "AppendEntriesResponse", "AppendEntries"]);
    assert.deepEqual(flatten(out).filter((m) => m.type === "AppendEntriesResponse" && m.success), [
      ack(1, "b"),
      ack(3, "b"),
      ack(5, "b"),
    ]);
  });

  test("a group that also sends something else to the same peer keeps its order: nothing of it is coalesced", () => {
    const append = heartbeat(1, "b", {
      entries: [{ term: 3, index: 12, kind: "command", data: new Uint8Array([1]), config: undefined }],
    });
    const sends: Message[] = [
      heartbeat(1, "b"),
      append,
      heartbeat(1, "b", { seq: 8 }),
      heartbeat(2, "b"),
      heartbeat(3, "b"),
    ];
    const out = coalesce(sends);
    assert.deepEqual(ofGroup(flatten(out), 1, "b"), ofGroup(sends, 1, "b"));
    assert.equal(out.filter((m) => m.type === "Heartbeats").length, 1);
    assert.deepEqual(ofGroup(out, 1, "b"), ofGroup(sends, 1, "b"), "group 1's messages stand alone");
  });

  test("a lone heartbeat stays as it is; beacons pass; long lists are split at the decoder's limit", () => {
    assert.deepEqual(coalesce([heartbeat(1, "b"), heartbeat(2, "c")]), [heartbeat(1, "b"), heartbeat(2, "c")]);
    const beacon: Message = { type: "HostHeartbeat", group: 0, from: "a", to: "b", term: 0 };
    const many = Array.from({ length: MAX_COALESCED_ITEMS + 2 }, (_, i) => heartbeat(i + 1, "b"));
    const out = coalesce([beacon, ...many]);
    assert.deepEqual(out.map((m) => (m.type === "Heartbeats" ? m.items.length : m.type)), [
      "HostHeartbeat",
      MAX_COALESCED_ITEMS,
      2,
    ]);
    for (const m of out) decodeMessage(encodeMessage(m));
    assert.deepEqual(flatten(out).slice(1), many);
  });
});

const ids = HOST_IDS;
const heartbeatMs = HEARTBEAT_MS;
const electionMs = ELECTION_MS;
/** Three hosts of the same groups, no quiescence (every group heartbeats), messages delivered at once. */
const Net = HostNet;

describe("coalesced heartbeats between hosts", () => {
  test("every group's heartbeats to a peer leave as one message per iteration, on a host-wide tick", () => {
    const net = new Net({ groups: 48 });
    net.elect();
    net.run(500);
    net.recording = true;
    net.run(1_000);
    let heartbeatTakes = 0;
    let items = 0;
    for (const { from, sends } of net.takes) {
      for (const to of ids) {
        if (to === from) continue;
        const toPeer = sends.filter((m) => m.to === to);
        const empty = toPeer.filter((m) =>
          m.type === "Heartbeats" || (m.type === "AppendEntries" && m.entries.length === 0)
        );
        const acks = toPeer.filter((m) =>
          m.type === "HeartbeatResponses" || (m.type === "AppendEntriesResponse" && m.success)
        );
        assert.ok(empty.length <= 1, `${from}->${to}: ${empty.length} heartbeat messages in one iteration`);
        assert.ok(acks.length <= 1, `${from}->${to}: ${acks.length} answer messages in one iteration`);
      }
      const hb = sends.filter((m) => m.type === "Heartbeats");
      if (hb.length > 0) heartbeatTakes++;
      for (const m of hb) if (m.type === "Heartbeats") items += m.items.length;
    }
    // Aligned timers: each host heartbeats once per interval for all the groups it leads (3 hosts, 50 intervals).
    assert.ok(heartbeatTakes <= 3 * (1_000 / heartbeatMs) + 3, `${heartbeatTakes} iterations sent heartbeats`);
    // 48 groups, 2 followers each, 50 rounds: every round's heartbeats went coalesced.
    assert.ok(items >= 48 * 2 * 45, `${items} heartbeats coalesced`);
  });

  test("a loop that wakes late still heartbeats at the configured rate (re-armed from when the timer was due)", () => {
    // 12 ms late on a 20 ms interval: re-armed from the late wake-up, every round would land a tick later.
    const net = new Net({ groups: 6, lateMs: 12 });
    net.elect();
    net.run(500);
    net.recording = true;
    net.run(1_000);
    const rounds = new Map<string, Set<number>>();
    for (const { sends } of net.takes) {
      for (const m of flatten(sends)) {
        if (m.type !== "AppendEntries" || m.entries.length > 0) continue;
        const key = `${m.group}>${m.to}`;
        rounds.set(key, (rounds.get(key) ?? new Set()).add(m.seq));
      }
    }
    assert.equal(rounds.size, 6 * 2, "every group heartbeats to both followers");
    for (const [key, seqs] of rounds) {
      assert.ok(seqs.size >= 0.9 * (1_000 / heartbeatMs), `${key}: ${seqs.size} rounds in a second`);
    }
  });

  test("each group's core steps the very messages it would have without coalescing, over fewer wire messages", () => {
    const plain = new Net({ groups: 12, coalesce: false });
    const packed = new Net({ groups: 12, coalesce: true });
    for (const net of [plain, packed]) {
      net.elect();
      net.run(300);
      // Some load and reads, so appends, commit announcements and ReadIndex rounds mix with heartbeats.
      for (const g of net.groups()) {
        const host = net.hosts.get(net.leader(g)!)!;
        host.call(g, (d) => d.propose(new Uint8Array([g]), net.now, () => {}));
        host.call(g, (d) => d.read(net.now, () => {}));
      }
      net.run(700);
    }
    assert.equal(packed.leader(1), plain.leader(1));
    for (const [key, log] of plain.stepped) {
      assert.ok(log.length > 0);
      assert.deepEqual(packed.stepped.get(key), log, `${key} stepped other messages`);
    }
    assert.ok(packed.delivered * 2 < plain.delivered, `${packed.delivered} vs ${plain.delivered} wire messages`);
  });

  test("check-quorum still holds: coalesced answers keep leaders in place, and a cut-off leader steps down", () => {
    const net = new Net({ groups: 24 });
    net.elect();
    const leaders = new Map(net.groups().map((g) => [g, net.leader(g)!]));
    // Ten election timeouts: check-quorum counts the followers heard through coalesced answers.
    net.run(10 * electionMs);
    for (const g of net.groups()) assert.equal(net.leader(g), leaders.get(g), `group ${g} kept its leader`);
    const led = net.groups().filter((g) => leaders.get(g) === "a");
    assert.ok(led.length > 0, "a leads some groups");
    assert.ok(net.hosts.get("b")!.coalescedIn > 0 && net.hosts.get("a")!.coalescedIn > 0);
    net.isolate("a");
    // Within two check-quorum rounds a notices it lost its followers (it keeps running, cut off).
    net.run(2 * electionMs + 2 * heartbeatMs);
    for (const g of led) {
      assert.notEqual(net.hosts.get("a")!.driver(g)!.state.role.kind, "leader", `a stepped down in group ${g}`);
    }
    net.run(3 * electionMs);
    for (const g of led) {
      const l = net.leader(g);
      assert.ok(l === "b" || l === "c", `group ${g} elected ${l} elsewhere`);
    }
  });

  test("ReadIndex is served by a coalesced heartbeat round, and leases by coalesced answers", () => {
    for (const leaseReads of [false, true]) {
      const net = new Net({ groups: 16, leaseReads });
      net.elect();
      net.run(300);
      const results = new Map<GroupId, { ok: boolean; value?: unknown }>();
      const inBefore = [...net.hosts.values()].reduce((n, h) => n + h.coalescedIn, 0);
      const wireBefore = net.delivered;
      for (const g of net.groups()) {
        const host = net.hosts.get(net.leader(g)!)!;
        host.call(g, (d) => d.read(net.now, (o) => results.set(g, o)));
      }
      net.settle();
      for (const g of net.groups()) {
        const r = results.get(g);
        assert.equal(r?.ok, true, `group ${g}'s read (lease ${leaseReads})`);
        assert.ok((r!.value as number) >= 1, "read index at least the leader's no-op");
      }
      const inAfter = [...net.hosts.values()].reduce((n, h) => n + h.coalescedIn, 0);
      if (leaseReads) {
        // The lease, kept by coalesced answers, serves reads without a round trip.
        assert.equal(net.delivered, wireBefore, "lease reads sent nothing");
      } else {
        // One round for every group a host leads: its heartbeats and the answers went coalesced.
        assert.ok(inAfter - inBefore >= 16 * 2 * 2, `${inAfter - inBefore} group messages arrived coalesced`);
      }
    }
  });
});
