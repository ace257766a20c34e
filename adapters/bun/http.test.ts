/// <reference types="bun" />
import { transportContract } from "../../tests/contract/transport.ts";
import { createHttpTransport } from "../transport/http.ts";

if (typeof Bun !== "undefined") {
  transportContract("HTTP transport on Bun.serve", (opts) => {
    const t = createHttpTransport(opts);
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: opts.port ?? 0,
      fetch: (req) => t.handler(req) ?? new Response("not found", { status: 404 }),
    });
    let closed: Promise<void> | undefined;
    return Promise.resolve({
      address: `127.0.0.1:${server.port}`,
      send: (m) => t.send(m),
      onMessage: (h) => t.onMessage(h),
      onUnreachable: (h) => t.onUnreachable(h),
      setPeers: (p) => t.setPeers(p),
      close: () =>
        closed ??= (async () => {
          await t.close();
          await server.stop(true);
        })(),
    });
  });
}
