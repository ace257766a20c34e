/**
 * Peer authentication on real sockets, for any transport that takes the
 * shared-secret option: the whole {@link transportContract} with a secret,
 * and refusal of peers that do not hold it.
 *
 * @module
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message, NodeId } from "../../core/types.ts";
import type { TransportEvent } from "../../adapters/transport/transport.ts";
import { appendEntries } from "./messages.ts";
import { type ContractOptions, type MakeTransport, transportContract, until } from "./transport.ts";

/** A 32-byte test secret (never use a fixed secret outside tests). */
export const TEST_SECRET: Uint8Array = new TextEncoder().encode("plank test secret, 32 bytes long");
const OTHER_SECRET = new TextEncoder().encode("another secret, also 32 bytes!!!");
const FAST = { reconnectMinMs: 5, reconnectMaxMs: 50 } as const;

const reasonsOf = (events: TransportEvent[]): string[] =>
  events.flatMap((e) =>
    e.type === "handshake-rejected" ? [e.reason] : e.type === "connect-failed" ? [`connect: ${e.reason}`] : []
  );

/**
 * Register the secret-mode suite for one transport implementation.
 *
 * @param name label for the tests
 * @param make builds and starts a transport listening on 127.0.0.1 (it must pass `secret` through)
 */
export function secretContract(name: string, make: MakeTransport): void {
  transportContract(`${name} with a shared secret`, (opts: ContractOptions) => make({ ...opts, secret: TEST_SECRET }));

  test(`${name}: only a peer that holds the secret gets a message through; a mismatch is logged on both sides`, async () => {
    const events = new Map<NodeId, TransportEvent[]>();
    const build = (self: NodeId, secret: Uint8Array | undefined) => {
      const log: TransportEvent[] = [];
      events.set(self, log);
      return make({ clusterId: "auth", self, secret, onEvent: (e) => log.push(e), ...FAST });
    };
    const b = await build("b", TEST_SECRET);
    const plain = await build("p", undefined);
    const wrong = await build("w", OTHER_SECRET);
    const good = await build("g", TEST_SECRET);
    const got: Message[] = [];
    b.onMessage((m) => got.push(m));
    try {
      b.setPeers(new Map([["p", plain.address], ["w", wrong.address], ["g", good.address]]));
      for (const t of [plain, wrong, good]) t.setPeers(new Map([["b", b.address]]));
      const bad = new Set<NodeId>();
      plain.onUnreachable(() => bad.add("p"));
      wrong.onUnreachable(() => bad.add("w"));
      await until(
        () => {
          plain.send(appendEntries("p", "b", 1));
          wrong.send(appendEntries("w", "b", 1));
          return bad.size === 2;
        },
        6_000,
        "both strangers refused",
      );
      assert.equal(got.length, 0, "nothing from a peer without the secret");
      const serverSide = reasonsOf(events.get("b")!);
      assert.ok(serverSide.some((r) => /secret mismatch/.test(r)), `b logs the mismatch: ${serverSide.join(" | ")}`);
      const clientSide = reasonsOf(events.get("w")!);
      assert.ok(clientSide.some((r) => /secret mismatch/.test(r)), `w logs the mismatch: ${clientSide.join(" | ")}`);
      // Positive control: the holder of the secret gets through.
      await until(
        () => {
          good.send(appendEntries("g", "b", 7));
          return got.length > 0;
        },
        6_000,
        "delivery from the holder of the secret",
      );
      assert.ok(got.every((m) => m.from === "g"));
    } finally {
      await Promise.allSettled([b, plain, wrong, good].map((t) => t.close()));
    }
  });
}
