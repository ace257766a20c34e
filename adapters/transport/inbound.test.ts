import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeMessage } from "../../core/codec/mod.ts";
import type { Message } from "../../core/types.ts";
import { appendEntries, timeoutNow } from "../../tests/contract/messages.ts";
import { concatBytes, encodeFrame, encodeHandshake, HANDSHAKE_MAGIC, handshakeFrame } from "./framing.ts";
import { type InboundContext, InboundSession } from "./inbound.ts";
import { emptyStats } from "./transport.ts";

function setup(peers: string[] = ["a", "b"]): { ctx: InboundContext; got: Message[] } {
  const got: Message[] = [];
  const known = new Set(peers);
  const ctx: InboundContext = {
    clusterId: "c1",
    self: "me",
    maxFrameBytes: 1024,
    isKnownPeer: (id) => known.has(id),
    deliver: (m) => got.push(m),
    stats: emptyStats(),
    onEvent: () => {},
  };
  return { ctx, got };
}

const frame = (m: Message) => encodeFrame(encodeMessage(m));

describe("InboundSession", () => {
  test("delivers messages after a valid handshake, in order", () => {
    const { ctx, got } = setup();
    const s = new InboundSession(ctx);
    const bytes = concatBytes([
      handshakeFrame("c1", "a"),
      frame(appendEntries("a", "me", 1)),
      frame(timeoutNow("a", "me")),
    ]);
    assert.equal(s.push(bytes), "ok");
    assert.equal(s.peer, "a");
    assert.deepEqual(got.map((m) => m.type), ["AppendEntries", "TimeoutNow"]);
  });

  test("wrong cluster or unknown sender is forbidden and nothing after it is delivered", () => {
    for (const hs of [handshakeFrame("other", "a"), handshakeFrame("c1", "stranger")]) {
      const { ctx, got } = setup();
      const s = new InboundSession(ctx);
      assert.equal(s.push(concatBytes([hs, frame(timeoutNow("a", "me"))])), "forbidden");
      assert.equal(s.push(frame(timeoutNow("a", "me"))), "forbidden", "stays rejected");
      assert.deepEqual(got, []);
      assert.equal(ctx.stats.rejectedHandshakes, 1);
    }
  });

  test("a garbage handshake (bad magic) is a bad frame", () => {
    const { ctx, got } = setup();
    const hs = encodeFrame(encodeHandshake({ magic: "HTTP", version: 1, clusterId: "c1", from: "a" }));
    assert.equal(new InboundSession(ctx).push(concatBytes([hs, frame(timeoutNow("a", "me"))])), "bad-frame");
    assert.deepEqual(got, []);
    assert.equal(HANDSHAKE_MAGIC, "PLNK");
  });

  test("messages forged as another sender, or addressed to another node, are dropped; the session continues", () => {
    const { ctx, got } = setup();
    const s = new InboundSession(ctx);
    const bytes = concatBytes([
      handshakeFrame("c1", "a"),
      frame(timeoutNow("b", "me")),
      frame(timeoutNow("a", "someone-else")),
      frame(timeoutNow("a", "me", 7)),
    ]);
    assert.equal(s.push(bytes), "ok");
    assert.deepEqual(got.map((m) => m.term), [7]);
    assert.equal(ctx.stats.droppedMessages, 2);
  });

  test("an undecodable message or an oversized frame ends the session as bad-frame", () => {
    const { ctx, got } = setup();
    const s = new InboundSession(ctx);
    assert.equal(
      s.push(concatBytes([handshakeFrame("c1", "a"), encodeFrame(new Uint8Array([0xff, 0xff]))])),
      "bad-frame",
    );
    const t = setup();
    const s2 = new InboundSession(t.ctx);
    assert.equal(s2.push(concatBytes([handshakeFrame("c1", "a"), encodeFrame(new Uint8Array(2000))])), "bad-frame");
    assert.deepEqual([...got, ...t.got], []);
    assert.equal(ctx.stats.badFrames + t.ctx.stats.badFrames, 2);
  });
});

describe("InboundSession: the handshake's sender must be who the connection authenticated as", () => {
  test("a connection authenticated as a may not claim to be b", () => {
    const { ctx, got } = setup();
    const events: string[] = [];
    const s = new InboundSession(
      { ...ctx, requireIdentity: true, onEvent: (e) => events.push(JSON.stringify(e)) },
      { names: ["a"], via: "tls" },
    );
    assert.equal(s.push(concatBytes([handshakeFrame("c1", "b"), frame(timeoutNow("b", "me"))])), "forbidden");
    assert.deepEqual(got, []);
    assert.match(events[0]!, /claims \\"b\\" but its certificate names \\"a\\"/);
  });

  test("the authenticated name is accepted", () => {
    const { ctx, got } = setup();
    const s = new InboundSession({ ...ctx, requireIdentity: true }, { names: ["x", "a"], via: "secret" });
    assert.equal(s.push(concatBytes([handshakeFrame("c1", "a"), frame(timeoutNow("a", "me"))])), "ok");
    assert.equal(got.length, 1);
  });

  test("a transport that authenticates refuses a connection without an identity", () => {
    const { ctx, got } = setup();
    const s = new InboundSession({ ...ctx, requireIdentity: true });
    assert.equal(s.push(concatBytes([handshakeFrame("c1", "a"), frame(timeoutNow("a", "me"))])), "forbidden");
    assert.deepEqual(got, []);
  });
});
