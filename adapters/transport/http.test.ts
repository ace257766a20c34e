import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeMessage } from "../../core/codec/mod.ts";
import type { Message } from "../../core/types.ts";
import { appendEntries, timeoutNow } from "../../tests/contract/messages.ts";
import { concatBytes, encodeFrame, handshakeFrame } from "./framing.ts";
import { createHttpTransport, type HttpTransport } from "./http.ts";

const frame = (m: Message) => encodeFrame(encodeMessage(m));

function receiver(): { t: HttpTransport; got: Message[] } {
  const t = createHttpTransport({ clusterId: "c1", self: "b", peers: new Map([["a", "127.0.0.1:1"]]) });
  const got: Message[] = [];
  t.onMessage((m) => got.push(m));
  return { t, got };
}

const post = (t: HttpTransport, body: Uint8Array, path = "/raft/messages", method = "POST") =>
  t.handler(
    new Request(`http://b.test${path}`, {
      method,
      body: method === "POST" ? (body as Uint8Array<ArrayBuffer>) : undefined,
    }),
  );

describe("HTTP transport handler", () => {
  test("204 and delivery, in order, for a well-formed batch", async () => {
    const { t, got } = receiver();
    const body = concatBytes([
      handshakeFrame("c1", "a"),
      frame(appendEntries("a", "b", 1)),
      frame(timeoutNow("a", "b")),
    ]);
    assert.equal((await post(t, body))!.status, 204);
    assert.deepEqual(got.map((m) => m.type), ["AppendEntries", "TimeoutNow"]);
    await t.close();
  });

  test("403 for another cluster or an unknown sender, nothing delivered", async () => {
    const { t, got } = receiver();
    for (const hs of [handshakeFrame("c2", "a"), handshakeFrame("c1", "z")]) {
      assert.equal((await post(t, concatBytes([hs, frame(timeoutNow("a", "b"))])))!.status, 403);
    }
    assert.deepEqual(got, []);
    assert.equal(t.stats.rejectedHandshakes, 2);
    await t.close();
  });

  test("400 for garbage, a missing handshake or a truncated last frame", async () => {
    const { t, got } = receiver();
    const good = concatBytes([handshakeFrame("c1", "a"), frame(timeoutNow("a", "b"))]);
    for (
      const body of [
        new Uint8Array([0, 0, 0, 2, 1, 2]),
        frame(timeoutNow("a", "b")),
        new Uint8Array(0),
        good.subarray(0, good.length - 1),
      ]
    ) {
      assert.equal((await post(t, body))!.status, 400, `body of ${body.length} bytes`);
    }
    assert.deepEqual(got, []);
    await t.close();
  });

  test("other paths are left to the user's router; other methods get 405", async () => {
    const { t } = receiver();
    assert.equal(post(t, new Uint8Array(0), "/db/key"), undefined);
    assert.equal((await post(t, new Uint8Array(0), "/raft/messages", "GET"))!.status, 405);
    await t.close();
  });

  test("custom prefix", async () => {
    const t = createHttpTransport({ clusterId: "c1", self: "b", prefix: "/cluster/", peers: new Map([["a", "x:1"]]) });
    assert.equal(post(t, new Uint8Array(0)), undefined);
    const body = concatBytes([handshakeFrame("c1", "a"), frame(timeoutNow("a", "b"))]);
    assert.equal((await post(t, body, "/cluster/messages"))!.status, 204);
    await t.close();
  });

  test("outbound batches everything queued into one request that starts with the handshake", async () => {
    const bodies: Uint8Array[] = [];
    const t = createHttpTransport({
      clusterId: "c1",
      self: "a",
      peers: new Map([["b", "peer-b:80"]]),
      fetch: async (url, init) => {
        assert.equal(url, "http://peer-b:80/raft/messages");
        bodies.push(new Uint8Array(await new Response(init.body).arrayBuffer()));
        return new Response(null, { status: 204 });
      },
    });
    for (let i = 1; i <= 5; i++) assert.ok(t.send(appendEntries("a", "b", i)));
    const { t: b, got } = receiver();
    while (bodies.length === 0) await new Promise((r) => setTimeout(r, 1));
    await t.close();
    assert.equal(bodies.length, 1);
    assert.equal((await post(b, bodies[0]))!.status, 204);
    assert.deepEqual(got.map((m) => m.type === "AppendEntries" ? m.seq : -1), [1, 2, 3, 4, 5]);
    await b.close();
  });
});

describe("HTTP transport: bounded bodies and shared-secret mode", () => {
  /**
   * A body that starts like a peer's (handshake, then one frame announced at
   * 32 MiB) and streams `chunks` chunks of `size` bytes; counts those pulled.
   */
  function streaming(chunks: number, size: number): { body: ReadableStream<Uint8Array>; pulled: () => number } {
    let n = 0;
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 32 << 20);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n === 0) c.enqueue(concatBytes([handshakeFrame("c1", "a"), header]));
        if (n++ >= chunks) c.close();
        else c.enqueue(new Uint8Array(size));
      },
    });
    return { body, pulled: () => n };
  }

  test("a chunked body is cut off with 413 once it passes maxBodyBytes, without reading the rest", async () => {
    const t = createHttpTransport({
      clusterId: "c1",
      self: "b",
      maxBodyBytes: 1 << 20,
      peers: new Map([["a", "127.0.0.1:1"]]),
    });
    const s = streaming(400, 1 << 20); // would be 400 MiB
    const req = new Request(
      "http://b.test/raft/messages",
      { method: "POST", body: s.body, duplex: "half" } as RequestInit,
    );
    assert.equal((await t.handler(req))!.status, 413);
    assert.ok(s.pulled() <= 3, `pulled ${s.pulled()} MiB of 400`);
    await t.close();
  });

  test("a content-length above the limit, or not a number, is refused before reading", async () => {
    const t = createHttpTransport({ clusterId: "c1", self: "b", maxBodyBytes: 1024, peers: new Map() });
    for (const length of ["4096", "lots"]) {
      const s = streaming(4, 1024);
      const req = new Request("http://b.test/raft/messages", {
        method: "POST",
        body: s.body,
        headers: { "content-length": length },
        duplex: "half",
      } as RequestInit);
      assert.equal((await t.handler(req))!.status, 413, length);
    }
    await t.close();
  });

  test("in shared-secret mode POSTs are refused (403) even when well-formed, and nothing is delivered", async () => {
    const upgrade = () => undefined;
    const t = createHttpTransport({
      clusterId: "c1",
      self: "b",
      peers: new Map([["a", "127.0.0.1:1"]]),
      secret: new TextEncoder().encode("0123456789abcdef"),
      upgrade,
    });
    const got: Message[] = [];
    t.onMessage((m) => got.push(m));
    const body = concatBytes([handshakeFrame("c1", "a"), frame(timeoutNow("a", "b"))]);
    assert.equal((await post(t, body))!.status, 403);
    assert.deepEqual(got, []);
    await t.close();
  });

  test("shared-secret mode without peer streams is a configuration error", () => {
    const secret = new TextEncoder().encode("0123456789abcdef");
    assert.throws(() => createHttpTransport({ clusterId: "c1", self: "b", secret }), TypeError);
  });
});
