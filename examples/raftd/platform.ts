/**
 * What raftd needs from its runtime, so the rest of it is written once: the
 * runtime's adapter module (storage, transports), an HTTP server, shutdown
 * signals and process exit. `loadPlatform` picks Deno's or Bun's.
 *
 * @module
 */

import type * as Adapter from "../../adapters/deno/mod.ts";
import type { StreamTransport, StreamTransportOptions } from "../../adapters/transport/stream.ts";
import type { RequestInfo } from "./http.ts";

/** A listening HTTP server. */
export interface Server {
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish, then resolves. */
  shutdown(): Promise<void>;
  /** The runtime's own server object, handed to the peer transport's handler (Bun upgrades peer streams through it). */
  readonly native?: unknown;
}

/** The runtime-specific pieces. */
export interface Platform {
  /** `deno` or `bun`. */
  readonly name: "deno" | "bun";
  /** The runtime's adapter module (`@plank/raft/deno` or `@plank/raft/bun`): `startNode`, the HTTP transport, storage errors. */
  readonly adapter: Pick<
    typeof Adapter,
    | "startNode"
    | "createHttpTransport"
    | "Http2Transport"
    | "DataDirLockedError"
    | "StorageError"
    | "CorruptLogError"
    | "secretKey"
    | "forceNewClusterInDir"
  >;
  /** A TCP peer transport (mutual TLS with `tls`) of this runtime, not yet started. */
  readonly tcpTransport: (options: StreamTransportOptions) => StreamTransport;
  /** `fetch` and WebSocket trusting other nodes' HTTPS certificates (the runtime's TLS client). */
  readonly tlsClient: (tls: Adapter.ClientTlsOptions) => Adapter.TlsClient;
  /** The runtime's durable file system. */
  readonly fs: Adapter.DurableFs;
  /** This process's id (logged at start and shown by `/status`, for `kill`). */
  readonly pid: number;
  /** Command-line arguments after the script. */
  readonly args: readonly string[];
  /**
   * Serve `handler` on `host:port` (with the runtime's WebSocket wiring for
   * peer streams), over HTTPS with `tls`; rejects if the port cannot be bound.
   * The handler is told the client's address and whether the server
   * rewrote the request's path (`raw_path.ts`).
   */
  serve(
    host: string,
    port: number,
    handler: (req: Request, info: RequestInfo) => Promise<Response>,
    tls?: { readonly cert: string; readonly key: string },
  ): Promise<Server>;
  /** Call `fn` on SIGINT or SIGTERM. */
  onShutdownSignal(fn: (signal: string) => void): void;
  /** End the process. */
  exit(code: number): never;
}

/** The platform of the runtime this is running on. */
export async function loadPlatform(): Promise<Platform> {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
    return (await import("./platform_bun.ts")).bunPlatform();
  }
  return (await import("./platform_deno.ts")).denoPlatform();
}
