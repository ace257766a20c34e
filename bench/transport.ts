/**
 * TCP transport throughput on the runtime that runs it: two transports on
 * 127.0.0.1, 200,000 AppendEntries of one 128-byte entry each from one to the
 * other, with at most WINDOW messages outstanding (as a leader's flow-control
 * window would keep it). Prints messages/s and MB/s of wire bytes.
 *
 * ```
 * deno run -A bench/transport.ts        bun bench/transport.ts
 * ```
 *
 * Optional arguments: `MESSAGES ENTRY_BYTES WINDOW`, and `--auth
 * plain,secret,mtls` to run the same stream with peer authentication (the
 * shared-secret channel: a MAC per record; mutual TLS with the test
 * certificates in tests/fixtures/tls), one after the other in this run.
 * Each mode also times 3,000 ping-pongs (one message each way, one at a
 * time): the per-round-trip cost a leader's replication sees.
 *
 * @module
 */

import process from "node:process";
import type { AppendEntries, Message } from "../core/mod.ts";
import type { PeerTransport } from "../adapters/deno/mod.ts";
// The codec is not a public entry point; it is used here only to size the wire bytes.
import { encodeMessage } from "../core/codec/mod.ts";
import { peerTls } from "../tests/contract/tls.ts";

const [total = 200_000, entryBytes = 128, window = 20_000] = process.argv
  .slice(2)
  .filter((a) => /^\d+$/.test(a))
  .map(Number);
const authAt = process.argv.indexOf("--auth");
const modes = (authAt > 0 ? process.argv[authAt + 1] ?? "plain" : "plain").split(",") as Auth[];
type Auth = "plain" | "secret" | "mtls";
const SECRET = new TextEncoder().encode("bench secret, 32 bytes of it....");

const isDeno = typeof Deno !== "undefined";
const runtime = isDeno ? `deno ${Deno.version.deno}` : `bun ${process.versions.bun}`;

/** A started TCP transport from the runtime's public adapter entry point, as a user would build it. */
async function tcp(self: string, auth: Auth): Promise<PeerTransport & { readonly address: string }> {
  const opts = {
    clusterId: "bench",
    self,
    listen: "127.0.0.1:0",
    ...(auth === "secret" ? { secret: SECRET } : {}),
    ...(auth === "mtls" ? { tls: peerTls(self) } : {}),
  };
  const t = isDeno
    ? new (await import("../adapters/deno/mod.ts")).DenoTcpTransport(opts)
    : new (await import("../adapters/bun/mod.ts")).BunTcpTransport(opts);
  await t.start();
  return t;
}

const data = new Uint8Array(entryBytes).fill(0x61);
const message = (seq: number): AppendEntries => ({
  type: "AppendEntries",
  group: 0,
  from: "a",
  to: "b",
  term: 1,
  prevIndex: seq - 1,
  prevTerm: 1,
  entries: [{ term: 1, index: seq, kind: "command", data, config: undefined }],
  commit: seq - 1,
  seq,
});

/** Wire bytes of one message: payload plus the 4-byte length prefix (varints make it vary slightly with seq). */
const wireBytes = (seq: number): number => encodeMessage(message(seq)).length + 4;

/** One run: `total` messages a → b over a transport with `auth`; prints the figures. */
async function run(auth: Auth): Promise<void> {
  const leader = await tcp("a", auth);
  const follower = await tcp("b", auth);
  leader.setPeers(new Map([["b", follower.address]]));
  follower.setPeers(new Map([["a", leader.address]]));

  let sent = 0;
  let received = 0;
  let outOfOrder = 0;
  let refused = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => done = resolve);

  /** Keep up to `window` messages outstanding. */
  function pump(): void {
    while (sent < total && sent - received < window) {
      if (!leader.send(message(sent + 1))) {
        refused++;
        break;
      }
      sent++;
    }
  }

  follower.onMessage((m: Message) => {
    received++;
    if (m.type !== "AppendEntries" || m.seq !== received) outOfOrder++;
    if (received === total) done();
    else if (received % 1_000 === 0) pump();
  });

  const start = performance.now();
  pump();
  await finished;
  const seconds = (performance.now() - start) / 1_000;

  // Estimate the wire size from three points; sizes differ only by varint width.
  const bytes = total * (wireBytes(1) + wireBytes(total >> 1) + wireBytes(total)) / 3;
  console.log(
    `transport tcp ${auth} (${runtime}): ${total.toLocaleString("en")} AppendEntries x ${entryBytes} B in ${
      seconds.toFixed(2)
    } s: ${Math.round(total / seconds).toLocaleString("en")} msg/s, ${
      (bytes / seconds / 1e6).toFixed(1)
    } MB/s (window ${window}, out of order ${outOfOrder}, refused sends ${refused})`,
  );
  // Ping-pong: what one record each way costs, with nothing to batch.
  const ROUNDS = 3_000;
  let rounds = 0;
  let pong!: () => void;
  const pinged = new Promise<void>((resolve) => pong = resolve);
  follower.onMessage((m: Message) =>
    void follower.send({ ...message(1), from: "b", to: "a", seq: m.type === "AppendEntries" ? m.seq : 0 })
  );
  leader.onMessage(() => {
    if (++rounds === ROUNDS) pong();
    else leader.send(message(rounds + 1));
  });
  const t0 = performance.now();
  leader.send(message(1));
  await pinged;
  const us = ((performance.now() - t0) / ROUNDS) * 1000;
  console.log(`transport tcp ${auth} (${runtime}): round trip ${us.toFixed(0)} us (mean of ${ROUNDS} ping-pongs)`);
  await Promise.all([leader.close(), follower.close()]);
}

for (const mode of modes) await run(mode);
