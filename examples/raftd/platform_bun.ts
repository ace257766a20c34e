/// <reference types="bun" />
/**
 * raftd's {@link Platform} on Bun: `Bun.serve`, `process` signals, and
 * `@plank/raft/bun`.
 *
 * @module
 */

import { BunFs, BunTcpTransport, bunTlsClient, peerWebSocket } from "../../adapters/bun/mod.ts";
import * as adapter from "../../adapters/bun/mod.ts";
import type { RequestInfo } from "./http.ts";
import type { Platform, Server } from "./platform.ts";
import { MAX_ROUTED_SEGMENTS, rewrittenUnrouted, segmentsDiffer } from "./raw_path.ts";

/** The Bun platform. */
export function bunPlatform(): Platform {
  return {
    name: "bun",
    adapter,
    tlsClient: bunTlsClient,
    tcpTransport: (options) => new BunTcpTransport(options),
    fs: new BunFs(),
    args: process.argv.slice(2),
    pid: process.pid,
    serve(host, port, handler, tls): Promise<Server> {
      try {
        const info = (req: Request, srv: Bun.Server<unknown>, rewrittenPath: boolean): RequestInfo => ({
          remoteAddress: srv.requestIP(req)?.address,
          rewrittenPath,
        });
        // Bun's req.url has its dot segments resolved already; its router sees the raw target (raw_path.ts).
        const routed = (req: Bun.BunRequest, srv: Bun.Server<unknown>) => {
          const params = req.params as Record<string, string>;
          const raw = Array.from({ length: Object.keys(params).length }, (_, i) => params[`p${i}`]!);
          return handler(req, info(req, srv, segmentsDiffer(raw, req.url)));
        };
        const routes: Record<string, typeof routed> = {};
        for (let depth = 1; depth <= MAX_ROUTED_SEGMENTS; depth++) {
          routes["/" + Array.from({ length: depth }, (_, i) => `:p${i}`).join("/")] = routed;
        }
        const server = Bun.serve({
          hostname: host,
          port,
          ...(tls === undefined ? {} : { tls }),
          // Joins wait for a learner to catch up: don't cut slow requests short.
          idleTimeout: 0,
          routes,
          fetch: (req, srv) => handler(req, info(req, srv, rewrittenUnrouted(req.url))),
          // Peer streams: the HTTP transport upgrades /raft/stream through `server` (see main.ts).
          websocket: peerWebSocket,
          error: (e) => new Response(`internal error: ${e.message}\n`, { status: 500 }),
        });
        return Promise.resolve({ port: server.port ?? port, shutdown: () => server.stop(false), native: server });
      } catch (e) {
        return Promise.reject(e);
      }
    },
    onShutdownSignal(fn) {
      for (const s of ["SIGINT", "SIGTERM"] as const) process.on(s, () => fn(s));
    },
    exit: (code) => process.exit(code),
  };
}
