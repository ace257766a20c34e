import { test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { Message } from "../../core/types.ts";
import { appendEntries, timeoutNow } from "../../tests/contract/messages.ts";
import { fixture, peerTls, tlsContract } from "../../tests/contract/tls.ts";
import { until } from "../../tests/contract/transport.ts";
import { encodeFrame, encodeMessageFrame, handshakeFrame } from "./framing.ts";
import { Http2Transport } from "./http2.ts";
import type { PeerTlsOptions } from "./certificates.ts";
import type { TransportEvent } from "./transport.ts";

// The whole transport contract plus the mTLS refusals (no cert, another CA, another id, wrong server).
tlsContract("Http2Transport", async (opts) => {
  if (opts.tls === undefined) {
    // The refusal tests' "peer without TLS": a plaintext TCP dialer at the h2 listener.
    const { DenoTcpTransport } = typeof Deno !== "undefined"
      ? await import("../deno/tcp.ts")
      : { DenoTcpTransport: undefined };
    const T = DenoTcpTransport ?? (await import("../bun/tcp.ts")).BunTcpTransport;
    const t = new T({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  }
  const t = new Http2Transport({ ...opts, tls: opts.tls, listen: `127.0.0.1:${opts.port ?? 0}` });
  await t.start();
  return t;
});

/** b listening in mTLS mode, recording what it receives and reports. */
async function receiver(): Promise<{ b: Http2Transport; got: Message[]; events: TransportEvent[]; url: string }> {
  const events: TransportEvent[] = [];
  const got: Message[] = [];
  const b = new Http2Transport({
    clusterId: "h2",
    self: "b",
    peers: new Map([["a", "127.0.0.1:1"]]),
    listen: "127.0.0.1:0",
    tls: peerTls("b"),
    maxFrameBytes: 64 * 1024,
    onEvent: (e) => events.push(e),
  });
  b.onMessage((m) => got.push(m));
  await b.start();
  return { b, got, events, url: `https://${b.address}` };
}

/** A raw HTTP/2 client with `tls`, dialling b; resolves with the status and how the stream ended. */
function rawStream(
  url: string,
  tls: PeerTlsOptions,
  path: string,
  method: string,
  body: Uint8Array[],
): Promise<{ status: number | undefined; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    const session = http2.connect(url, { ca: tls.ca as string, cert: tls.cert, key: tls.key, servername: "b" });
    let status: number | undefined;
    let ours = false;
    session.on("error", () => {});
    const stream = session.request({ ":method": method, ":path": path }, { endStream: false });
    stream.on("error", () => {});
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", () => {});
    stream.once("close", () => {
      session.destroy();
      clearTimeout(timer);
      resolve({ status, closedByPeer: !ours });
    });
    for (const chunk of body) stream.write(chunk);
    // An accepted stream stays open: end the test's wait after a while.
    const timer = setTimeout(() => {
      ours = true;
      stream.close();
    }, 2_000);
  });
}

test("Http2Transport mTLS: only POST /raft/stream is served (404, 405), nothing delivered", async () => {
  const { b, got, url } = await receiver();
  try {
    const frames = [handshakeFrame("h2", "a"), encodeMessageFrame(timeoutNow("a", "b"), 1 << 20)];
    assert.equal((await rawStream(url, peerTls("a"), "/raft/messages", "POST", frames)).status, 404);
    assert.equal((await rawStream(url, peerTls("a"), "/raft/stream", "GET", [])).status, 405);
    assert.equal(got.length, 0);
  } finally {
    await b.close();
  }
});

test("Http2Transport mTLS: a verified peer's forged frames are refused and the stream closed", async () => {
  const { b, got, events, url } = await receiver();
  try {
    // Garbage after a good handshake: undecodable message.
    const garbage = await rawStream(url, peerTls("a"), "/raft/stream", "POST", [
      handshakeFrame("h2", "a"),
      encodeFrame(new Uint8Array([0xff, 1, 2, 3])),
    ]);
    assert.equal(garbage.status, 200);
    assert.ok(garbage.closedByPeer, "b closes a stream that sent a bad frame");
    // A frame header announcing more than maxFrameBytes: refused before the body comes.
    const huge = new Uint8Array(4);
    new DataView(huge.buffer).setUint32(0, 1 << 30);
    const oversized = await rawStream(url, peerTls("a"), "/raft/stream", "POST", [handshakeFrame("h2", "a"), huge]);
    assert.ok(oversized.closedByPeer, "b closes a stream announcing an oversized frame");
    // A message claiming another sender than the handshake's: dropped, not delivered.
    const stray = await rawStream(url, peerTls("a"), "/raft/stream", "POST", [
      handshakeFrame("h2", "a"),
      encodeMessageFrame(appendEntries("m", "b", 1), 1 << 20),
    ]);
    assert.equal(stray.closedByPeer, false, "a single stray message is dropped, the stream stays up");
    await until(() => events.filter((e) => e.type === "bad-frame").length >= 2, 4_000, "two bad frames");
    assert.ok(events.some((e) => e.type === "message-dropped"), JSON.stringify(events));
    assert.equal(got.length, 0);
    assert.ok(b.stats.badFrames >= 2);
  } finally {
    await b.close();
  }
});

test("Http2Transport mTLS: a client with no certificate or another CA's is refused at the TLS handshake", async () => {
  const { b, got, events, url } = await receiver();
  try {
    const noCert = await new Promise<string>((resolve) => {
      const s = http2.connect(url, { ca: fixture("ca.crt"), servername: "b" });
      s.on("error", (e) => resolve(e.message));
      const r = s.request({ ":method": "POST", ":path": "/raft/stream" });
      r.on("error", (e) => resolve(e.message));
      r.on("response", () => resolve("answered"));
      r.write(handshakeFrame("h2", "a"));
    });
    assert.notEqual(noCert, "answered");
    const other = { cert: fixture("other-peer-a.crt"), key: fixture("other-peer-a.key"), ca: fixture("ca.crt") };
    const wrongCa = await rawStream(url, other, "/raft/stream", "POST", [handshakeFrame("h2", "a")]);
    assert.equal(wrongCa.status, undefined);
    await until(() => events.filter((e) => e.type === "handshake-rejected").length >= 2, 4_000, "two refusals");
    assert.ok(
      events.every((e) => e.type !== "handshake-rejected" || e.reason.startsWith("TLS: ")),
      JSON.stringify(events),
    );
    assert.equal(got.length, 0);
  } finally {
    await b.close();
  }
});

test("Http2Transport mTLS: a refused peer is told why, so both sides log the refusal", async () => {
  const { b, events } = await receiver();
  const made: Http2Transport[] = [];
  const dialer = async (self: string, tls: PeerTlsOptions) => {
    const seen: TransportEvent[] = [];
    const t = new Http2Transport({
      clusterId: "h2",
      self,
      peers: new Map([["b", b.address]]),
      listen: "127.0.0.1:0",
      tls,
      reconnectMinMs: 5,
      reconnectMaxMs: 50,
      onEvent: (e) => seen.push(e),
    });
    made.push(t);
    await t.start();
    return { t, seen };
  };
  try {
    b.setPeers(new Map([["a", "127.0.0.1:1"]]));
    const asM = await dialer("a", peerTls("m"));
    const otherCa = await dialer("a", {
      cert: fixture("other-peer-a.crt"),
      key: fixture("other-peer-a.key"),
      ca: fixture("ca.crt"),
    });
    const failed = (seen: TransportEvent[], re: RegExp) =>
      seen.some((e) => e.type === "connect-failed" && re.test(e.reason));
    await until(
      () => {
        for (const d of [asM, otherCa]) d.t.send(appendEntries("a", "b", 1));
        return failed(asM.seen, /^refused: handshake claims "a" but its certificate names "m"/) &&
          failed(otherCa.seen, /refused: b closed the connection before answering \(our certificate refused\?/);
      },
      8_000,
      "both dialers to see the refusal",
    );
    assert.ok(events.some((e) => e.type === "handshake-rejected" && /certificate names "m"/.test(e.reason)));
    assert.ok(events.some((e) => e.type === "handshake-rejected" && e.reason.startsWith("TLS: ")));
  } finally {
    await Promise.allSettled([b, ...made].map((t) => t.close()));
  }
});
