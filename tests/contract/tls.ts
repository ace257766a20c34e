/**
 * Mutual TLS between peers on real sockets, for a runtime's TLS transport:
 * the whole {@link transportContract} over TLS, and the refusals that make
 * it authentication (no certificate, another CA, a certificate for another
 * node id, a server that is not the node dialled). Certificates come from
 * `tests/fixtures/tls/` (test-only).
 *
 * @module
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Message, NodeId } from "../../core/types.ts";
import type { PeerTlsOptions } from "../../adapters/transport/certificates.ts";
import type { TransportEvent } from "../../adapters/transport/transport.ts";
import { appendEntries } from "./messages.ts";
import { type ContractOptions, type ContractTransport, transportContract, until } from "./transport.ts";

const FIXTURES = new URL("../fixtures/tls/", import.meta.url);

/** A fixture file's text. */
export function fixture(name: string): string {
  return readFileSync(fileURLToPath(new URL(name, FIXTURES).href), "utf8");
}

/** The test CA's peer certificate for node `id` (`tests/fixtures/tls/peer-<id>.crt`). */
export function peerTls(id: NodeId): PeerTlsOptions {
  return { cert: fixture(`peer-${id}.crt`), key: fixture(`peer-${id}.key`), ca: fixture("ca.crt") };
}

/** Builds a started TCP transport on 127.0.0.1, with the given TLS options (or none). */
export type MakeTlsTransport = (opts: ContractOptions & { tls?: PeerTlsOptions }) => Promise<ContractTransport>;

const FAST = { reconnectMinMs: 5, reconnectMaxMs: 50 } as const;

/**
 * Register the mutual-TLS suite for one runtime's TCP transport.
 *
 * @param name label for the tests
 * @param make builds and starts a transport listening on 127.0.0.1
 */
export function tlsContract(name: string, make: MakeTlsTransport): void {
  transportContract(`${name} over mutual TLS`, (opts) => make({ ...opts, tls: peerTls(opts.self) }));

  /** b, with a inbox; `others` each try to send to it; returns b's inbox and events. */
  async function refusals(
    others: [NodeId, PeerTlsOptions | undefined][],
  ): Promise<{ got: Message[]; events: TransportEvent[]; refused: Set<NodeId> }> {
    const events: TransportEvent[] = [];
    const b = await make({ clusterId: "tls", self: "b", tls: peerTls("b"), onEvent: (e) => events.push(e), ...FAST });
    const got: Message[] = [];
    b.onMessage((m) => got.push(m));
    const senders = await Promise.all(
      others.map(([id, tls]) => make({ clusterId: "tls", self: id, tls, ...FAST })),
    );
    const refused = new Set<NodeId>();
    try {
      b.setPeers(new Map(senders.map((t, i) => [others[i]![0], t.address])));
      senders.forEach((t, i) => {
        t.setPeers(new Map([["b", b.address]]));
        t.onUnreachable(() => refused.add(others[i]![0]));
      });
      await until(
        () => {
          senders.forEach((t, i) => t.send(appendEntries(others[i]![0], "b", 1)));
          return refused.size === others.length;
        },
        8_000,
        "every sender refused",
      );
      return { got, events, refused };
    } finally {
      await Promise.allSettled([b, ...senders].map((t) => t.close()));
    }
  }

  test(`${name} mTLS: a peer without TLS, or with a certificate of another CA, gets nothing through`, async () => {
    const other: PeerTlsOptions = {
      cert: fixture("other-peer-a.crt"),
      key: fixture("other-peer-a.key"),
      ca: fixture("ca.crt"),
    };
    const { got, events } = await refusals([["p", undefined], ["a", other]]);
    assert.equal(got.length, 0);
    assert.ok(events.some((e) => e.type === "handshake-rejected"), JSON.stringify(events));
  });

  test(`${name} mTLS: a node whose certificate names m cannot speak as a (the issue's forged handshake)`, async () => {
    const { got, events } = await refusals([["a", peerTls("m")]]);
    assert.equal(got.length, 0);
    assert.ok(
      events.some((e) => e.type === "handshake-rejected" && /claims "a" but its certificate names "m"/.test(e.reason)),
      JSON.stringify(events),
    );
  });

  test(`${name} mTLS plus a shared secret: both must hold, and the secret never widens the certificate`, async () => {
    const secret = new TextEncoder().encode("a tls+secret test secret, 32 B..");
    const events: TransportEvent[] = [];
    const b = await make({
      clusterId: "tls",
      self: "b",
      tls: peerTls("b"),
      secret,
      onEvent: (e) => events.push(e),
      ...FAST,
    });
    const a = await make({ clusterId: "tls", self: "a", tls: peerTls("a"), secret, ...FAST });
    const other = new TextEncoder().encode("another secret of 32 bytes......");
    const c = await make({ clusterId: "tls", self: "c", tls: peerTls("c"), secret: other, ...FAST });
    // m holds the secret, but its certificate does not name c.
    const mAsC = await make({ clusterId: "tls", self: "c", tls: peerTls("m"), secret, ...FAST });
    const got: Message[] = [];
    b.onMessage((m) => got.push(m));
    try {
      b.setPeers(new Map([["a", a.address], ["c", c.address]]));
      for (const t of [a, c, mAsC]) t.setPeers(new Map([["b", b.address]]));
      await until(
        () => {
          for (const [t, id] of [[a, "a"], [c, "c"], [mAsC, "c"]] as const) t.send(appendEntries(id, "b", 1));
          const reasons = events.flatMap((e) => e.type === "handshake-rejected" ? [e.reason] : []);
          return got.length > 0 && reasons.some((r) => /secret mismatch/.test(r)) &&
            reasons.some((r) => /claims "c" but its certificate names "m"/.test(r));
        },
        8_000,
        "a delivered, c and m-as-c refused",
      );
      assert.ok(got.every((m) => m.from === "a"), "only a gets through");
    } finally {
      await Promise.allSettled([a, b, c, mAsC].map((t) => t.close()));
    }
  });

  test(`${name} mTLS: the dialer refuses a server that is not the node it dialled`, async () => {
    // c listens with its own certificate; a believes b lives at c's address.
    const events: TransportEvent[] = [];
    const c = await make({ clusterId: "tls", self: "c", tls: peerTls("c"), ...FAST });
    const a = await make({ clusterId: "tls", self: "a", tls: peerTls("a"), onEvent: (e) => events.push(e), ...FAST });
    const got: Message[] = [];
    c.onMessage((m) => got.push(m));
    try {
      c.setPeers(new Map([["a", a.address]]));
      a.setPeers(new Map([["b", c.address]]));
      let unreachable = false;
      a.onUnreachable(() => (unreachable = true));
      await until(() => (a.send(appendEntries("a", "b", 1)), unreachable), 8_000, "refusal");
      assert.equal(got.length, 0);
      assert.ok(
        events.some((e) => e.type === "connect-failed" && /altnames|hostname/i.test(e.reason)),
        JSON.stringify(events),
      );
    } finally {
      await Promise.allSettled([a, c].map((t) => t.close()));
    }
  });
}
