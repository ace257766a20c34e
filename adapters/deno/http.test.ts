import { test } from "node:test";
import assert from "node:assert/strict";
import { transportContract, until } from "../../tests/contract/transport.ts";
import { appendEntries } from "../../tests/contract/messages.ts";
import type { Message } from "../../core/types.ts";
import { createHttpTransport as createPostTransport, type HttpTransportOptions } from "../transport/http.ts";
import { createHttpTransport } from "./mod.ts";

if (typeof Deno !== "undefined") {
  /** Serve `create(opts)` on Deno.serve and present it as a contract transport. */
  const served =
    (create: (o: HttpTransportOptions) => ReturnType<typeof createPostTransport>) =>
    (opts: HttpTransportOptions & { port?: number }) => {
      const t = create(opts);
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {} },
        (req) => t.handler(req) ?? new Response("not found", { status: 404 }),
      );
      let closed: Promise<void> | undefined;
      return Promise.resolve({
        address: `127.0.0.1:${server.addr.port}`,
        send: (m: Message) => t.send(m),
        onMessage: (h: (m: Message) => void) => t.onMessage(h),
        onUnreachable: (h: (p: string) => void) => t.onUnreachable(h),
        setPeers: (p: ReadonlyMap<string, string>) => t.setPeers(p),
        close: () =>
          closed ??= (async () => {
            await t.close();
            await server.shutdown();
          })(),
      });
    };

  transportContract("HTTP transport on Deno.serve (POST per batch)", served(createPostTransport));
  transportContract("HTTP transport on Deno.serve (WebSocket peer streams)", served(createHttpTransport));

  test("Deno: a streaming sender falls back to POST towards a server that cannot upgrade", async () => {
    const post = await served(createPostTransport)({ clusterId: "c", self: "b", peers: new Map() });
    const streaming = await served(createHttpTransport)({
      clusterId: "c",
      self: "a",
      peers: new Map([["b", post.address]]),
      reconnectMinMs: 5,
      reconnectMaxMs: 20,
    });
    post.setPeers(new Map([["a", streaming.address]]));
    const got: number[] = [];
    post.onMessage((m) => m.type === "AppendEntries" && got.push(m.seq));
    try {
      // The first messages may be lost with the refused stream; Raft resends, and so do we.
      await until(
        () => {
          streaming.send(appendEntries("a", "b", got.length + 1000));
          return got.length > 0;
        },
        4_000,
        "delivery over POST",
      );
      for (let seq = 1; seq <= 100; seq++) streaming.send(appendEntries("a", "b", seq));
      await until(() => got.filter((s) => s < 1000).length === 100, 4_000, "100 messages");
      assert.deepEqual(got.filter((s) => s < 1000), Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await Promise.allSettled([streaming.close(), post.close()]);
    }
  });
}
