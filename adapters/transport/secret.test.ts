// The shared-secret channel over in-memory connections: who gets in, what a
// man in the middle can and cannot do with recorded or altered bytes.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes, encodeFrame, FrameDecoder } from "./framing.ts";
import { SecretChannel, SecretHandshakeError } from "./secret.ts";
import type { StreamConnection, StreamHandlers } from "./stream.ts";
import type { PeerIdentity, TransportEvent } from "./transport.ts";

const SECRET = new TextEncoder().encode("correct horse battery staple");
const OTHER = new TextEncoder().encode("a different secret, also long");

/** What crossed the wire from the client, chunk by chunk, and a way to tamper with it. */
interface Wire {
  /** Every chunk the client wrote, in order. */
  readonly sent: Uint8Array[];
  /** Rewrite a client→server chunk before delivery (default: unchanged). */
  tamper?: (chunk: Uint8Array, n: number) => Uint8Array | undefined;
}

interface Server {
  readonly events: TransportEvent[];
  readonly got: Uint8Array[];
  identity: PeerIdentity | undefined;
  closed: boolean;
  /** Feed raw bytes as if a client sent them on a fresh connection; returns its handlers' close flag. */
  raw(): { push(bytes: Uint8Array): void; replies: Uint8Array[]; closed: () => boolean };
}

function channel(self: string, secret = SECRET, clusterId = "c1", events?: TransportEvent[]): SecretChannel {
  return new SecretChannel({
    clusterId,
    self,
    secret,
    handshakeTimeoutMs: 500,
    onEvent: (e) => events?.push(e),
  });
}

/** A server channel `s` accepting one connection at a time; `connect` dials it with channel `c`. */
function pair(s: SecretChannel, events: TransportEvent[]) {
  const server: Server = {
    events,
    got: [],
    identity: undefined,
    closed: false,
    raw() {
      const replies: Uint8Array[] = [];
      let closed = false;
      const conn: StreamConnection = {
        write: (b) => (replies.push(b.slice()), Promise.resolve()),
        close: () => (closed = true, Promise.resolve()),
      };
      const h = s.accept(conn, (authed) => {
        server.identity = authed.identity;
        return { onData: (d) => server.got.push(d.slice()), onClose: () => (server.closed = true) };
      });
      return { push: (b) => h.onData(b), replies, closed: () => closed };
    },
  };
  async function connect(c: SecretChannel, peer = "b", wire: Wire = { sent: [] }): Promise<StreamConnection> {
    let toClient: StreamHandlers | undefined;
    let n = 0;
    let serverClosed = false;
    const serverConn: StreamConnection = {
      write: (b) => {
        const copy = b.slice();
        queueMicrotask(() => toClient?.onData(copy));
        return Promise.resolve();
      },
      close: () => {
        if (!serverClosed) {
          serverClosed = true;
          queueMicrotask(() => toClient?.onClose());
        }
        return Promise.resolve();
      },
    };
    const serverSide: StreamHandlers = s.accept(serverConn, (authed) => {
      server.identity = authed.identity;
      return { onData: (d) => server.got.push(d.slice()), onClose: () => (server.closed = true) };
    });
    return await c.dial(
      (handlers) => {
        toClient = handlers;
        return Promise.resolve({
          write: (b) => {
            wire.sent.push(b.slice());
            const chunk = wire.tamper ? wire.tamper(b.slice(), n++) : b.slice();
            if (chunk !== undefined) queueMicrotask(() => serverSide.onData(chunk));
            return Promise.resolve();
          },
          close: () => {
            queueMicrotask(() => serverSide.onClose());
            return Promise.resolve();
          },
        });
      },
      peer,
      { onData: () => {}, onClose: () => {} },
    );
  }
  return { server, connect };
}

const settle = () => new Promise((r) => setTimeout(r, 30));
const text = (s: string) => new TextEncoder().encode(s);
const reasons = (events: TransportEvent[]) => events.map((e) => e.type === "handshake-rejected" ? e.reason : e.type);

describe("shared-secret channel", () => {
  test("peers with the same secret connect; records arrive in order; the server learns who proved it", async () => {
    const events: TransportEvent[] = [];
    const { server, connect } = pair(channel("b", SECRET, "c1", events), events);
    const conn = await connect(channel("a"));
    assert.deepEqual(conn.identity, { names: ["b"], via: "secret" });
    await conn.write(text("one"));
    await conn.write(text("two"));
    await conn.write(new Uint8Array(3 << 20).fill(9)); // split into several records
    await settle();
    assert.deepEqual(server.identity, { names: ["a"], via: "secret" });
    assert.equal(new TextDecoder().decode(server.got[0]), "one");
    assert.equal(new TextDecoder().decode(server.got[1]), "two");
    assert.equal(server.got.slice(2).reduce((n, b) => n + b.length, 0), 3 << 20);
    assert.deepEqual(events, []);
  });

  test("the secret itself never crosses the wire", async () => {
    const wire: Wire = { sent: [] };
    const { connect } = pair(channel("b"), []);
    const conn = await connect(channel("a"), "b", wire);
    await conn.write(text("payload"));
    const all = concatBytes(wire.sent);
    const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    assert.ok(!hex(all).includes(hex(SECRET.subarray(0, 8))), "no 8-byte run of the secret on the wire");
  });

  test("a secret mismatch is refused and reported on both sides", async () => {
    const serverEvents: TransportEvent[] = [];
    const clientEvents: TransportEvent[] = [];
    const { server, connect } = pair(channel("b", SECRET, "c1", serverEvents), serverEvents);
    await assert.rejects(
      connect(channel("a", OTHER, "c1", clientEvents)),
      (e: unknown) => e instanceof SecretHandshakeError && /secret mismatch/.test(e.reason),
    );
    await settle();
    assert.ok(reasons(clientEvents).some((r) => /secret mismatch/.test(r)), `client: ${reasons(clientEvents)}`);
    assert.ok(reasons(serverEvents).some((r) => /secret mismatch/.test(r)), `server: ${reasons(serverEvents)}`);
    assert.equal(server.identity, undefined);
    assert.deepEqual(server.got, []);
  });

  test("another cluster id is refused, even with the same secret", async () => {
    const events: TransportEvent[] = [];
    const { connect } = pair(channel("b", SECRET, "c1", events), events);
    await assert.rejects(connect(channel("a", SECRET, "c2")), /cluster mismatch/);
    assert.ok(reasons(events).some((r) => /cluster mismatch/.test(r)));
  });

  test("a hello for another node, or claiming to be the server itself, is refused", async () => {
    const { connect } = pair(channel("b"), []);
    await assert.rejects(connect(channel("a"), "c"), /refused: .*wanted node/);
    await assert.rejects(connect(channel("b"), "b"), /refused: .*claims to be this node/);
  });

  test("a recorded session replayed on a new connection gets nowhere (fresh server nonce)", async () => {
    const wire: Wire = { sent: [] };
    const events: TransportEvent[] = [];
    const { server, connect } = pair(channel("b", SECRET, "c1", events), events);
    const conn = await connect(channel("a"), "b", wire);
    await conn.write(text("genuine"));
    await settle();
    assert.equal(server.got.length, 1);
    const replay = server.raw();
    for (const chunk of wire.sent) replay.push(chunk);
    await settle();
    assert.equal(server.got.length, 1, "nothing from the replay delivered");
    assert.ok(replay.closed(), "replayed connection closed");
    assert.ok(reasons(events).some((r) => /secret mismatch|expected a proof/.test(r)), reasons(events).join("; "));
  });

  for (
    const [what, tamper, reason] of [
      ["a flipped bit in a record", (c: Uint8Array) => (c[c.length - 40] ^= 1, c), /MAC does not verify/],
      ["a replayed record", undefined, /out of sequence/],
      ["a dropped record", undefined, /out of sequence/],
    ] as const
  ) {
    test(`${what} closes the stream and delivers nothing from it`, async () => {
      const events: TransportEvent[] = [];
      const { server, connect } = pair(channel("b", SECRET, "c1", events), events);
      const wire: Wire = { sent: [] };
      let firstRecord: Uint8Array | undefined;
      // Chunks 0 and 1 are the hello and the proof; records follow.
      wire.tamper = (chunk, n) => {
        if (n < 2) return chunk;
        if (tamper) return n === 3 ? tamper(chunk) : chunk;
        if (what === "a replayed record") {
          if (n === 2) firstRecord = chunk;
          return n === 3 ? concatBytes([chunk, firstRecord!]) : chunk;
        }
        return n === 3 ? undefined : chunk; // dropped
      };
      const conn = await connect(channel("a"), "b", wire);
      for (const word of ["r0", "r1", "r2", "r3"]) await conn.write(text(word));
      await settle();
      const got = server.got.map((b) => new TextDecoder().decode(b));
      assert.ok(!got.includes("r3"), `after the fault nothing more arrives: ${got}`);
      if (tamper) assert.deepEqual(got, ["r0"]);
      else if (what === "a replayed record") assert.deepEqual(got, ["r0", "r1"]);
      else assert.deepEqual(got, ["r0"]);
      assert.ok(reasons(events).some((r) => reason.test(r)), reasons(events).join("; "));
    });
  }

  test("a server that does not know the secret cannot impersonate: the client refuses before proving anything", async () => {
    const wire: Wire = { sent: [] };
    const { connect } = pair(channel("b", OTHER), []);
    await assert.rejects(connect(channel("a"), "b", wire), /secret mismatch/);
    // The client sent its hello and then only a refusal: never a proof.
    const frames = new FrameDecoder(4096).push(concatBytes(wire.sent));
    assert.deepEqual(frames.map((f) => f[0] === 0x50 ? "hello" : f[0]), ["hello", 4]);
  });

  test("garbage, an oversized frame or silence before the handshake closes the connection", async () => {
    const events: TransportEvent[] = [];
    const { server } = pair(channel("b", SECRET, "c1", events), events);
    const garbage = server.raw();
    garbage.push(encodeFrame(text("GET / HTTP/1.1")));
    const big = server.raw();
    big.push(Uint8Array.of(0, 1, 0, 0));
    const silent = server.raw();
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(garbage.closed() && big.closed() && silent.closed());
    assert.ok(reasons(events).some((r) => /not completed in time/.test(r)), reasons(events).join("; "));
  });

  test("a secret shorter than 16 bytes is refused up front", () => {
    assert.throws(() => channel("a", text("short")), RangeError);
  });
});
