/// <reference types="bun" />
/**
 * raftd's {@link Platform} on Bun: `Bun.serve`, `process` signals, and
 * `@plank/raft/bun`.
 *
 * @module
 */

import {
  BunFs,
  bunTlsClient,
  CorruptLogError,
  createHttpTransport,
  DataDirLockedError,
  peerWebSocket,
  secretKey,
  startNode,
  StorageError,
} from "../../adapters/bun/mod.ts";
import type { Platform, Server } from "./platform.ts";

/** The Bun platform. */
export function bunPlatform(): Platform {
  return {
    name: "bun",
    adapter: { startNode, createHttpTransport, DataDirLockedError, StorageError, CorruptLogError, secretKey },
    tlsClient: bunTlsClient,
    fs: new BunFs(),
    args: process.argv.slice(2),
    serve(host, port, handler, tls): Promise<Server> {
      try {
        const server = Bun.serve({
          hostname: host,
          port,
          ...(tls === undefined ? {} : { tls }),
          // Joins wait for a learner to catch up: don't cut slow requests short.
          idleTimeout: 0,
          fetch: (req, srv) => handler(req, { remoteAddress: srv.requestIP(req)?.address }),
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
