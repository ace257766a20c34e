/// <reference types="bun" />
import { streamFallbackTest, transportContract } from "../../tests/contract/transport.ts";
import { secretContract } from "../../tests/contract/auth.ts";
import type { Message } from "../../core/types.ts";
import { createHttpTransport as createPostTransport, type HttpTransportOptions } from "../transport/http.ts";
import { createHttpTransport, peerWebSocket } from "./mod.ts";
import { fixture } from "../../tests/contract/tls.ts";

if (typeof Bun !== "undefined") {
  /** Serve `create(opts)` on Bun.serve (with peer streams wired when `streams`) as a contract transport. */
  const served =
    (create: (o: HttpTransportOptions) => ReturnType<typeof createPostTransport>, streams: boolean, https = false) =>
    (opts: HttpTransportOptions & { port?: number }) => {
      const t = create(opts);
      const fetch = (req: Request, server: unknown) =>
        t.handler(req, server) ?? new Response("not found", { status: 404 });
      const tls = https ? { tls: { cert: fixture("server.crt"), key: fixture("server.key") } } : {};
      const listen = { hostname: "127.0.0.1", port: opts.port ?? 0, ...tls };
      const server = streams
        ? Bun.serve({ ...listen, fetch, websocket: peerWebSocket })
        : Bun.serve({ ...listen, fetch: (req) => fetch(req, undefined) });
      let closed: Promise<void> | undefined;
      return Promise.resolve({
        address: `127.0.0.1:${server.port}`,
        send: (m: Message) => t.send(m),
        onMessage: (h: (m: Message) => void) => t.onMessage(h),
        onUnreachable: (h: (p: string) => void) => t.onUnreachable(h),
        setPeers: (p: ReadonlyMap<string, string>) => t.setPeers(p),
        close: () =>
          closed ??= (async () => {
            await t.close();
            await server.stop(true);
          })(),
      });
    };

  transportContract("HTTP transport on Bun.serve (POST per batch)", served(createPostTransport, false));
  transportContract("HTTP transport on Bun.serve (WebSocket peer streams)", served(createHttpTransport, true));
  secretContract("HTTP transport on Bun.serve (WebSocket peer streams)", served(createHttpTransport, true));

  // Over https/wss: the server's certificate verified against the test CA.
  const overTls = (o: HttpTransportOptions) => createHttpTransport({ ...o, tls: { ca: fixture("ca.crt") } });
  transportContract("HTTP transport on Bun.serve over https/wss", served(overTls, true, true));
  secretContract("HTTP transport on Bun.serve over wss", served(overTls, true, true));

  // The receiver has the streaming transport but its Bun.serve lacks `websocket`: it answers 426.
  streamFallbackTest(
    "Bun: a streaming sender falls back to POST towards a server without websocket handlers",
    served(createHttpTransport, true),
    served(createHttpTransport, false),
  );
}
