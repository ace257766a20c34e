/**
 * The TCP peer transport on Deno's sockets (`Deno.listen` / `Deno.connect`).
 *
 * @module
 */

import {
  type StreamConnection,
  type StreamDriver,
  type StreamHandlers,
  type StreamListener,
  StreamTransport,
  type StreamTransportOptions,
} from "../transport/stream.ts";
import { denoTlsDriver } from "./tls.ts";

/** Bytes read per `conn.read` call. Large enough that a busy peer costs few reads. */
const READ_BUFFER_BYTES = 256 * 1024;

/** Wrap a Deno connection: start its read loop, expose write/close. */
function wrap(conn: Deno.TcpConn, handlersFor: (c: StreamConnection) => StreamHandlers): StreamConnection {
  // Raft messages are small and latency-sensitive; batching is done by us, not by Nagle.
  conn.setNoDelay(true);
  let closed = false;
  let writing: Promise<unknown> | undefined;
  let readLoop: Promise<void> = Promise.resolve();
  const shut = (): void => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // Already closed by the runtime.
    }
  };
  const self: StreamConnection = {
    write(bytes: Uint8Array): Promise<void> {
      const p = (async () => {
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      })();
      writing = p.catch(() => {});
      return p;
    },
    async close(): Promise<void> {
      shut();
      await Promise.allSettled([readLoop, writing]);
    },
  };
  const handlers = handlersFor(self);
  readLoop = (async () => {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (!closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        handlers.onData(buf.subarray(0, n));
      }
    } catch {
      // Reset by the peer, or closed locally while reading: either way, done.
    }
    shut();
    handlers.onClose();
  })();
  return self;
}

/** The {@link StreamDriver} for Deno. */
export const denoStreamDriver: StreamDriver = {
  listen(host, port, accept): Promise<StreamListener> {
    const listener = Deno.listen({ hostname: host, port, transport: "tcp" });
    let stopped = false;
    const acceptLoop = (async () => {
      while (!stopped) {
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch {
          if (stopped) return;
          // Transient (e.g. out of file descriptors): pause instead of spinning.
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        wrap(conn, accept);
      }
    })();
    return Promise.resolve({
      host: listener.addr.hostname,
      port: listener.addr.port,
      async close(): Promise<void> {
        stopped = true;
        try {
          listener.close();
        } catch {
          // Already closed.
        }
        await acceptLoop;
      },
    });
  },
  async dial(host, port, handlers): Promise<StreamConnection> {
    const conn = await Deno.connect({ hostname: host, port, transport: "tcp" });
    return wrap(conn, () => handlers);
  },
};

/**
 * Raft peer transport over TCP on Deno. Listens on `opts.listen`
 * (`"host:port"`, port 0 for any); call {@link DenoTcpTransport.start} first.
 * With `opts.tls`, peers talk mutual TLS (`node:tls`, see `tls.ts`).
 *
 * ```ts
 * const t = new DenoTcpTransport({ clusterId: "c1", self: "a", listen: "0.0.0.0:7001",
 *   peers: new Map([["b", "10.0.0.2:7001"]]) });
 * await t.start();
 * ```
 */
export class DenoTcpTransport extends StreamTransport {
  /**
   * Create the transport; nothing is bound until `start()`.
   *
   * @param opts transport options plus the listen address
   */
  constructor(opts: StreamTransportOptions) {
    super(opts.tls ? denoTlsDriver(opts.tls, opts.onEvent) : denoStreamDriver, opts);
  }
}
