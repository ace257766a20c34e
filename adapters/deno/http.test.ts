import { streamFallbackTest, transportContract } from "../../tests/contract/transport.ts";
import { secretContract } from "../../tests/contract/auth.ts";
import type { Message } from "../../core/types.ts";
import { createHttpTransport as createPostTransport, type HttpTransportOptions } from "../transport/http.ts";
import { createHttpTransport } from "./mod.ts";
import { fixture } from "../../tests/contract/tls.ts";

if (typeof Deno !== "undefined") {
  /** Serve `create(opts)` on Deno.serve and present it as a contract transport. */
  const served =
    (create: (o: HttpTransportOptions) => ReturnType<typeof createPostTransport>, https = false) =>
    (opts: HttpTransportOptions & { port?: number }) => {
      const t = create(opts);
      const tls = https ? { cert: fixture("server.crt"), key: fixture("server.key") } : {};
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {}, ...tls },
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
  secretContract("HTTP transport on Deno.serve (WebSocket peer streams)", served(createHttpTransport));

  // Over https/wss: the server's certificate verified against the test CA.
  const overTls = (o: HttpTransportOptions) => createHttpTransport({ ...o, tls: { ca: fixture("ca.crt") } });
  transportContract("HTTP transport on Deno.serve over https/wss", served(overTls, true));
  secretContract("HTTP transport on Deno.serve over wss", served(overTls, true));

  streamFallbackTest(
    "Deno: a streaming sender falls back to POST towards a server that cannot upgrade",
    served(createHttpTransport),
    served(createPostTransport),
  );
}
