/**
 * raftd's {@link Platform} on Deno: `Deno.serve`, `Deno.addSignalListener`,
 * and `@plank/raft/deno`.
 *
 * @module
 */

import { DenoFs, DenoTcpTransport, denoTlsClient } from "../../adapters/deno/mod.ts";
import * as adapter from "../../adapters/deno/mod.ts";
import type { Platform, Server } from "./platform.ts";
import { rewrittenFromRawUrl } from "./raw_path.ts";

/** The Deno platform. */
export function denoPlatform(): Platform {
  return {
    name: "deno",
    adapter,
    tlsClient: denoTlsClient,
    tcpTransport: (options) => new DenoTcpTransport(options),
    fs: new DenoFs(),
    args: Deno.args,
    pid: Deno.pid,
    serve(host, port, handler, tls): Promise<Server> {
      return new Promise((resolve, reject) => {
        try {
          const server = Deno.serve({
            hostname: host,
            port,
            ...tls,
            onListen: (addr) => resolve({ port: addr.port, shutdown: () => server.shutdown() }),
            onError: (e) => new Response(`internal error: ${e instanceof Error ? e.message : e}\n`, { status: 500 }),
          }, (req, info) =>
            handler(req, {
              remoteAddress: (info.remoteAddr as Deno.NetAddr).hostname,
              // Deno's req.url is the target as sent; `new URL` would resolve its dot segments.
              rewrittenPath: rewrittenFromRawUrl(req.url),
            }));
        } catch (e) {
          reject(e);
        }
      });
    },
    onShutdownSignal(fn) {
      for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => fn(s));
    },
    exit: (code) => Deno.exit(code),
  };
}
