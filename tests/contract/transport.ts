/**
 * The behaviour every {@link PeerTransport} must show, as a test suite any
 * implementation runs against itself: ordered delivery under load, refusal of
 * strangers, bounded queues towards a dead peer, reconnection, runtime
 * membership changes and a clean close.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Message, NodeId } from "../../core/types.ts";
import type { PeerTransport, TransportOptions } from "../../adapters/transport/transport.ts";
import { appendEntries } from "./messages.ts";

/** What the suite asks a factory for: transport options plus the loopback port to listen on (0: any). */
export interface ContractOptions extends TransportOptions {
  /** Port on 127.0.0.1 to listen on; 0 or absent picks a free one. */
  readonly port?: number;
}

/** A started transport listening on 127.0.0.1, with its bound `"host:port"`. */
export type ContractTransport = PeerTransport & { readonly address: string };

/** Builds and starts a transport; the suite closes it. */
export type MakeTransport = (opts: ContractOptions) => Promise<ContractTransport>;

/** Resolve once `cond()` holds; reject after `ms` (a hang guard, not a timing assertion). */
export async function until(cond: () => boolean, ms = 4_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const CLUSTER = "contract";
/** Fast reconnects keep the suite quick; the defaults are exercised by the unit tests of back-off. */
const FAST = { reconnectMinMs: 5, reconnectMaxMs: 50 } as const;

/** Per-node inbox that records what arrived. */
interface Node {
  readonly id: NodeId;
  readonly t: ContractTransport;
  readonly got: Message[];
  readonly unreachable: NodeId[];
}

/** Wire up recording handlers on a transport. */
function node(id: NodeId, t: ContractTransport): Node {
  const n: Node = { id, t, got: [], unreachable: [] };
  t.onMessage((m) => n.got.push(m));
  t.onUnreachable((p) => n.unreachable.push(p));
  return n;
}

/** Close everything, even if some closes fail. */
async function closeAll(nodes: readonly (Node | ContractTransport | undefined)[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n === undefined ? undefined : ("t" in n ? n.t : n).close()));
}

/** The address of a port that was just free (listened on, then released). */
async function deadAddress(make: MakeTransport): Promise<string> {
  const t = await make({ clusterId: CLUSTER, self: "ghost" });
  const address = t.address;
  await t.close();
  return address;
}

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1));

const seqsFrom = (n: Node, from: NodeId): number[] =>
  n.got.flatMap((m) => m.from === from && m.type === "AppendEntries" ? [m.seq] : []);

/**
 * Register the contract suite for one transport implementation.
 *
 * @param name label for the describe block
 * @param make builds and starts a transport listening on 127.0.0.1
 */
export function transportContract(name: string, make: MakeTransport): void {
  describe(`${name}: PeerTransport contract`, () => {
    test("3 nodes exchange 10,000 messages per sender→receiver pair, in order", async () => {
      const ids = ["a", "b", "c"];
      const nodes: Node[] = [];
      try {
        for (const id of ids) nodes.push(node(id, await make({ clusterId: CLUSTER, self: id, ...FAST })));
        const book = new Map(nodes.map((n) => [n.id, n.t.address]));
        for (const n of nodes) n.t.setPeers(book);
        const N = 10_000;
        const payload = new Uint8Array(16).fill(7);
        for (let seq = 1; seq <= N; seq++) {
          for (const from of nodes) {
            for (const to of ids) if (to !== from.id) assert.ok(from.t.send(appendEntries(from.id, to, seq, payload)));
          }
        }
        await until(() => nodes.every((n) => n.got.length === 2 * N), 30_000, "all deliveries");
        const expected = Array.from({ length: N }, (_, i) => i + 1);
        for (const to of nodes) {
          for (const from of ids) {
            if (from === to.id) continue;
            assert.deepEqual(seqsFrom(to, from), expected, `${from}→${to.id}`);
          }
          assert.ok(to.got.every((m) => m.to === to.id));
        }
        const sample = nodes[0].got[0];
        assert.equal(sample.type, "AppendEntries");
        if (sample.type === "AppendEntries") assert.deepEqual([...sample.entries[0].data], [...payload]);
      } finally {
        await closeAll(nodes);
      }
    });

    test("a peer of another cluster, or one not in the address book, is refused", async () => {
      let b: Node | undefined, good: Node | undefined, foreign: Node | undefined, stranger: Node | undefined;
      try {
        b = node("b", await make({ clusterId: CLUSTER, self: "b", ...FAST }));
        good = node("a", await make({ clusterId: CLUSTER, self: "a", ...FAST }));
        foreign = node("x", await make({ clusterId: "another-cluster", self: "x", ...FAST }));
        stranger = node("z", await make({ clusterId: CLUSTER, self: "z", ...FAST }));
        // b knows a and x (x is in the book but in the wrong cluster); it has never heard of z.
        b.t.setPeers(new Map([["a", good.t.address], ["x", foreign.t.address]]));
        for (const n of [good, foreign, stranger]) n.t.setPeers(new Map([["b", b.t.address]]));

        assert.ok(foreign.t.send(appendEntries("x", "b", 1)));
        assert.ok(stranger.t.send(appendEntries("z", "b", 1)));
        const f = foreign, s = stranger;
        await until(() => f.unreachable.includes("b") && s.unreachable.includes("b"), 4_000, "rejections");
        // Positive control: a legitimate peer still gets through afterwards.
        assert.ok(good.t.send(appendEntries("a", "b", 1)));
        const bb = b;
        await until(() => bb.got.length > 0, 4_000, "legitimate delivery");
        assert.deepEqual(b.got.map((m) => m.from), ["a"]);
      } finally {
        await closeAll([b, good, foreign, stranger]);
      }
    });

    test("towards a peer that is down the queue stays bounded and onUnreachable fires", async () => {
      let a: Node | undefined;
      try {
        const dead = await deadAddress(make);
        a = node("a", await make({ clusterId: CLUSTER, self: "a", maxQueueMessages: 50, ...FAST }));
        a.t.setPeers(new Map([["b", dead]]));
        let accepted = 0;
        for (let seq = 1; seq <= 500; seq++) if (a.t.send(appendEntries("a", "b", seq))) accepted++;
        assert.equal(accepted, 50);
        const aa = a;
        await until(() => aa.unreachable.includes("b"), 4_000, "onUnreachable");
        assert.ok(a.unreachable.every((p) => p === "b"));
        assert.equal(a.t.send(appendEntries("a", "unknown-peer", 1)), false, "unknown peer");
      } finally {
        await closeAll([a]);
      }
    });

    test("a peer that goes down and comes back on the same address receives again (reconnect)", async () => {
      let a: Node | undefined, b: Node | undefined, b2: Node | undefined;
      try {
        a = node("a", await make({ clusterId: CLUSTER, self: "a", ...FAST }));
        b = node("b", await make({ clusterId: CLUSTER, self: "b", ...FAST }));
        const bAddress = b.t.address;
        a.t.setPeers(new Map([["b", bAddress]]));
        b.t.setPeers(new Map([["a", a.t.address]]));
        assert.ok(a.t.send(appendEntries("a", "b", 1)));
        const first = b;
        await until(() => first.got.length === 1, 4_000, "first delivery");
        await b.t.close();

        // While b is down, keep sending until a notices.
        const aa = a;
        let seq = 2;
        await until(
          () => {
            aa.t.send(appendEntries("a", "b", seq++));
            return aa.unreachable.includes("b");
          },
          4_000,
          "onUnreachable after b went down",
        );

        b2 = node("b", await make({ clusterId: CLUSTER, self: "b", port: portOf(bAddress), ...FAST }));
        b2.t.setPeers(new Map([["a", a.t.address]]));
        const back = b2;
        await until(
          () => {
            aa.t.send(appendEntries("a", "b", seq++));
            return back.got.length > 0;
          },
          6_000,
          "delivery after b came back",
        );
        // Once reconnected, what is sent arrives, in order.
        const from = seq;
        for (let i = 0; i < 100; i++) assert.ok(a.t.send(appendEntries("a", "b", seq++)));
        await until(() => seqsFrom(back, "a").includes(seq - 1), 4_000, "post-reconnect burst");
        const after = seqsFrom(back, "a").filter((s) => s >= from);
        assert.deepEqual(after, Array.from({ length: 100 }, (_, i) => from + i));
        const all = seqsFrom(back, "a");
        assert.deepEqual(all, [...all].sort((x, y) => x - y), "never reordered");
      } finally {
        await closeAll([a, b, b2]);
      }
    });

    test("setPeers adds and removes peers at runtime, on both ends", async () => {
      let a: Node | undefined, b: Node | undefined, c: Node | undefined;
      try {
        a = node("a", await make({ clusterId: CLUSTER, self: "a", ...FAST }));
        b = node("b", await make({ clusterId: CLUSTER, self: "b", ...FAST }));
        c = node("c", await make({ clusterId: CLUSTER, self: "c", ...FAST }));
        b.t.setPeers(new Map([["a", a.t.address]]));

        // a does not know b yet: refused locally.
        assert.equal(a.t.send(appendEntries("a", "b", 1)), false);
        a.t.setPeers(new Map([["b", b.t.address]]));
        assert.ok(a.t.send(appendEntries("a", "b", 2)));
        const bb = b;
        await until(() => bb.got.length === 1, 4_000, "delivery to an added peer");
        assert.equal(seqsFrom(b, "a")[0], 2);

        // c joins: b refuses it until b's address book has it.
        c.t.setPeers(new Map([["b", b.t.address]]));
        assert.ok(c.t.send(appendEntries("c", "b", 1)));
        const cc = c;
        await until(() => cc.unreachable.includes("b"), 4_000, "c refused before it is added");
        assert.equal(seqsFrom(b, "c").length, 0);
        b.t.setPeers(new Map([["a", a.t.address], ["c", c.t.address]]));
        let seq = 2;
        await until(
          () => {
            cc.t.send(appendEntries("c", "b", seq++));
            return seqsFrom(bb, "c").length > 0;
          },
          6_000,
          "delivery from a peer added at runtime",
        );

        // a removes b: sends are refused again.
        a.t.setPeers(new Map());
        assert.equal(a.t.send(appendEntries("a", "b", 3)), false);
      } finally {
        await closeAll([a, b, c]);
      }
    });

    test("multi-megabyte messages arrive intact (writes larger than the socket buffer)", async () => {
      let a: Node | undefined, b: Node | undefined;
      try {
        a = node("a", await make({ clusterId: CLUSTER, self: "a", ...FAST }));
        b = node("b", await make({ clusterId: CLUSTER, self: "b", ...FAST }));
        a.t.setPeers(new Map([["b", b.t.address]]));
        b.t.setPeers(new Map([["a", a.t.address]]));
        const chunk = new Uint8Array(6 * 1024 * 1024);
        for (let i = 0; i < chunk.length; i += 4093) chunk[i] = i % 251;
        for (let seq = 1; seq <= 3; seq++) assert.ok(a.t.send(appendEntries("a", "b", seq, chunk)));
        const bb = b;
        await until(() => bb.got.length === 3, 8_000, "large deliveries");
        assert.deepEqual(seqsFrom(b, "a"), [1, 2, 3]);
        for (const m of b.got) {
          assert.ok(m.type === "AppendEntries");
          const got = m.entries[0].data;
          assert.equal(got.length, chunk.length);
          let same = true;
          for (let i = 0; i < got.length; i++) if (got[i] !== chunk[i]) same = false;
          assert.ok(same, "payload intact");
        }
      } finally {
        await closeAll([a, b]);
      }
    });

    test("a frame above the receiver's maxFrameBytes is refused, not delivered", async () => {
      let a: Node | undefined, b: Node | undefined;
      try {
        a = node("a", await make({ clusterId: CLUSTER, self: "a", ...FAST }));
        b = node("b", await make({ clusterId: CLUSTER, self: "b", maxFrameBytes: 64 * 1024, ...FAST }));
        a.t.setPeers(new Map([["b", b.t.address]]));
        b.t.setPeers(new Map([["a", a.t.address]]));
        assert.ok(a.t.send(appendEntries("a", "b", 1, new Uint8Array(100 * 1024))));
        const aa = a;
        await until(() => aa.unreachable.includes("b"), 4_000, "rejection of the oversized frame");
        // Positive control: small messages still get through (on a new connection for TCP).
        const bb = b;
        let seq = 2;
        await until(
          () => {
            aa.t.send(appendEntries("a", "b", seq++));
            return bb.got.length > 0;
          },
          6_000,
          "later small message",
        );
        assert.ok(!seqsFrom(b, "a").includes(1));
      } finally {
        await closeAll([a, b]);
      }
    });

    test("close() releases the port: a new transport can listen on it", async () => {
      const t = await make({ clusterId: CLUSTER, self: "a" });
      const port = portOf(t.address);
      await t.close();
      await t.close(); // idempotent
      const again = await make({ clusterId: CLUSTER, self: "a", port });
      try {
        assert.equal(portOf(again.address), port);
        assert.equal(t.send(appendEntries("a", "b", 1)), false, "a closed transport sends nothing");
      } finally {
        await again.close();
      }
    });
  });
}

/**
 * A transport that streams to its peers must still reach a peer that cannot
 * accept a stream, over its fallback path, in order once it gets through.
 *
 * @param name label for the test
 * @param streaming builds a transport that prefers streams
 * @param plain builds a receiver that cannot accept a stream
 */
export function streamFallbackTest(name: string, streaming: MakeTransport, plain: MakeTransport): void {
  test(name, async () => {
    const b = await plain({ clusterId: CLUSTER, self: "b", peers: new Map() });
    const a = await streaming({ clusterId: CLUSTER, self: "a", peers: new Map([["b", b.address]]), ...FAST });
    b.setPeers(new Map([["a", a.address]]));
    const got: number[] = [];
    b.onMessage((m) => m.type === "AppendEntries" && got.push(m.seq));
    try {
      // The first messages may be lost with the refused stream; Raft resends, and so do we.
      await until(
        () => {
          a.send(appendEntries("a", "b", got.length + 1000));
          return got.length > 0;
        },
        4_000,
        "delivery over the fallback",
      );
      for (let seq = 1; seq <= 100; seq++) a.send(appendEntries("a", "b", seq));
      await until(() => got.filter((s) => s < 1000).length === 100, 4_000, "100 messages");
      assert.deepEqual(got.filter((s) => s < 1000), Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await closeAll([a, b]);
    }
  });
}
