import { transportContract } from "../../tests/contract/transport.ts";
import { createHttpTransport } from "../transport/http.ts";

if (typeof Deno !== "undefined") {
  transportContract("HTTP transport on Deno.serve", (opts) => {
    const t = createHttpTransport(opts);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {} },
      (req) => t.handler(req) ?? new Response("not found", { status: 404 }),
    );
    let closed: Promise<void> | undefined;
    return Promise.resolve({
      address: `127.0.0.1:${server.addr.port}`,
      send: (m) => t.send(m),
      onMessage: (h) => t.onMessage(h),
      onUnreachable: (h) => t.onUnreachable(h),
      setPeers: (p) => t.setPeers(p),
      close: () =>
        closed ??= (async () => {
          await t.close();
          await server.shutdown();
        })(),
    });
  });
}
