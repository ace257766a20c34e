/**
 * The HTTP transport's mutual-TLS mode: peer streams over HTTP/2 with client
 * certificates, through the runtime's `node:http2` (the same API on Deno
 * and Bun). Neither `Deno.serve` nor `Bun.serve` shows a handler the
 * client's certificate, and Bun's `node:https` does not either; an
 * `http2.createSecureServer` with `requestCert` does on both runtimes. So
 * this mode serves peers on its own listener instead of the user's server.
 *
 * Each peer opens one HTTP/2 session and one long-lived `POST
 * ${prefix}/stream` request on it; the request body carries the same frames
 * as the TCP transport and the WebSocket stream (handshake first), with the
 * same bounds ({@link InboundSession}). Both ends verify the other against
 * the peer CA; the dialer checks the server's certificate for the node id it
 * dialled (TLS server name), the listener binds the handshake's claimed id to
 * the client certificate's names (`certificates.ts`, `checkIdentity`).
 *
 * @module
 */

import http2 from "node:http2";
import type net from "node:net";
import tls from "node:tls";
import type { NodeId } from "../../core/types.ts";
import { caList, certificateIdentity, type PeerTlsOptions } from "./certificates.ts";
import {
  type StreamConnection,
  type StreamDriver,
  type StreamHandlers,
  type StreamListener,
  StreamTransport,
  type StreamTransportOptions,
} from "./stream.ts";
import type { TransportEvent } from "./transport.ts";

/** A peer has no business opening more streams than this at once (one per connection it dials). */
const MAX_CONCURRENT_STREAMS = 4;
/**
 * The receive window (stream and session) a listener grants: HTTP/2's
 * default 64 KiB would make every batch above it wait a round trip for a
 * WINDOW_UPDATE. Bounded memory still comes from the frame decoder.
 */
const WINDOW_BYTES = 4 * 1024 * 1024;

/** The longest refusal reason a listener sends back on a stream (and a dialer reads). */
const MAX_REASON_BYTES = 256;

/** Which stream's data the transport is being handed, so a refusal can be explained on it. */
interface Receiving {
  current: http2.Http2Stream | undefined;
  /** Streams a reason was written on: they end gracefully, so the reason arrives. */
  readonly explained: WeakSet<http2.Http2Stream>;
}

/** An HTTP/2 stream (either side) as a {@link StreamConnection}. */
function wrap(
  stream: http2.Http2Stream,
  identity: StreamConnection["identity"],
  handlersFor: (c: StreamConnection) => StreamHandlers,
  release: () => void,
  receiving?: Receiving,
): StreamConnection {
  let closed = false;
  const gone = new Promise<void>((resolve) => stream.once("close", () => resolve()));
  const conn: StreamConnection = {
    identity,
    write: (bytes) =>
      new Promise<void>((resolve, reject) => {
        if (closed || stream.destroyed) return reject(new Error("stream closed"));
        stream.write(bytes, (err) => err ? reject(err) : resolve());
      }),
    close: () => {
      closed = true;
      if (stream.destroyed) {
        // nothing left to release on the stream
      } else if (receiving?.explained.has(stream)) {
        // End after the reason, so the dialer reads it; a dialer that never reads is cut off soon.
        stream.end();
        setTimeout(() => stream.destroy(), 1_000).unref?.();
      } else stream.close(http2.constants.NGHTTP2_CANCEL);
      release();
      return gone;
    },
  };
  const handlers = handlersFor(conn);
  stream.on("data", (chunk: Uint8Array) => {
    if (receiving === undefined) return handlers.onData(chunk);
    receiving.current = stream;
    try {
      handlers.onData(chunk);
    } finally {
      receiving.current = undefined;
    }
  });
  stream.on("error", () => stream.destroy());
  void gone.then(() => {
    closed = true;
    release();
    handlers.onClose();
  });
  return conn;
}

/** Options of {@link http2TlsDriver}. */
export interface Http2DriverOptions {
  /** The peer certificate, key and CA. */
  readonly tls: PeerTlsOptions;
  /** Path prefix of the peer stream (`${prefix}/stream`). Default `"/raft"`. */
  readonly prefix?: string;
  /** Observer of refused handshakes and requests. */
  readonly onEvent?: (e: TransportEvent) => void;
  /**
   * Whether refusals are explained on the stream ({@link Http2Driver.explain})
   * and a dialer logs what the listener wrote back. Default true; off when
   * another protocol (the shared-secret channel) owns the server's direction.
   */
  readonly explainRefusals?: boolean;
}

/** The {@link StreamDriver} of {@link http2TlsDriver}, which can tell a refused dialer why. */
export interface Http2Driver extends StreamDriver {
  /**
   * Called (synchronously) while the transport refuses the handshake of the
   * stream whose data it is being handed: writes `reason` back on that
   * stream, so the dialer can log it too. Elsewhere a no-op.
   */
  explain(reason: string): void;
}

/**
 * The {@link StreamDriver} for the HTTP transport's mTLS mode: listens with
 * an HTTP/2 secure server that requires a client certificate of the peer CA
 * and accepts only `POST ${prefix}/stream`; dials one HTTP/2 session and
 * stream per connection. Refused TLS handshakes and requests are reported
 * to `onEvent`.
 */
export function http2TlsDriver(options: Http2DriverOptions): Http2Driver {
  const { onEvent } = options;
  const peerTls = options.tls;
  const path = `${(options.prefix ?? "/raft").replace(/\/+$/, "")}/stream`;
  const base = { cert: peerTls.cert, key: peerTls.key, ca: caList(peerTls.ca), minVersion: "TLSv1.2" as const };
  const refused = (reason: string) => onEvent?.({ type: "handshake-rejected", reason, from: undefined });
  const receiving: Receiving = { current: undefined, explained: new WeakSet() };
  const explaining = options.explainRefusals !== false;
  return {
    authenticates: true,
    explain(reason) {
      if (!explaining) return;
      const stream = receiving.current;
      if (stream === undefined || stream.destroyed || receiving.explained.has(stream)) return;
      receiving.explained.add(stream);
      stream.write(new TextEncoder().encode(reason).slice(0, MAX_REASON_BYTES));
    },
    listen(host, port, accept): Promise<StreamListener> {
      const server = http2.createSecureServer({
        ...base,
        requestCert: true,
        rejectUnauthorized: true,
        settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, initialWindowSize: WINDOW_BYTES },
      });
      const sessions = new Set<http2.ServerHttp2Session>();
      server.on("session", (session) => {
        sessions.add(session);
        session.once("close", () => sessions.delete(session));
        session.on("error", () => session.destroy());
        session.setLocalWindowSize(WINDOW_BYTES);
      });
      // Raft messages are small and latency-bound: no Nagle delay (the session's own socket may not be touched).
      server.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
      server.on("tlsClientError", (err) => refused(`TLS: ${err.message}`));
      server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
        stream.on("error", () => stream.destroy());
        const socket = stream.session?.socket as {
          authorized?: boolean;
          getPeerCertificate?: () => { subjectaltname?: string };
        } | undefined;
        if (socket?.authorized !== true || socket.getPeerCertificate === undefined) {
          // rejectUnauthorized already refused the handshake; never serve an unverified session.
          refused("TLS: client certificate not verified");
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        }
        if (headers[":path"] !== path || headers[":method"] !== "POST") {
          refused(`HTTP/2: ${String(headers[":method"])} ${String(headers[":path"]).slice(0, 64)} is not POST ${path}`);
          stream.respond({ ":status": headers[":path"] === path ? 405 : 404 }, { endStream: true });
          return;
        }
        stream.respond({ ":status": 200, "content-type": "application/octet-stream" });
        const identity = certificateIdentity(socket.getPeerCertificate().subjectaltname);
        wrap(stream, identity, accept, () => {}, receiving);
      });
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const addr = server.address();
          resolve({
            host,
            port: typeof addr === "object" && addr !== null ? addr.port : port,
            close: () =>
              new Promise<void>((r) => {
                server.close(() => r());
                // close() waits for open sessions; peers' long-lived streams would hold it forever.
                for (const s of sessions) s.destroy();
              }),
          });
        });
      });
    },
    dial(host, port, handlers, peer: NodeId): Promise<StreamConnection> {
      return new Promise((resolve, reject) => {
        const authority = host.includes(":") ? `[${host}]` : host;
        // A TLS error names the cause; a server refusing our certificate under TLS 1.3 sends an alert
        // that neither runtime surfaces, so HTTP/2 only sees the connection close before an answer.
        let tlsError: string | undefined;
        const session = http2.connect(`https://${authority}:${port}`, {
          // Our own TLS socket, so that it can be made no-delay; servername: the certificate is checked
          // for the node id, wherever the node lives.
          createConnection: () => {
            const socket = tls.connect({
              ...base,
              host,
              port,
              servername: peer,
              rejectUnauthorized: true,
              ALPNProtocols: ["h2"],
            });
            socket.on("error", (e) => (tlsError ??= e.message));
            return socket.setNoDelay(true);
          },
        });
        let settled = false;
        const fail = (err: unknown) => {
          if (!settled) {
            settled = true;
            reject(err);
          }
          session.destroy();
        };
        session.on("error", fail);
        const stream = session.request({ ":method": "POST", ":path": path }, { endStream: false });
        stream.on("error", fail);
        stream.once("close", () => {
          // Let a pending socket error land first: it says why.
          setTimeout(() => {
            fail(
              new Error(
                tlsError === undefined
                  ? `refused: ${peer} closed the connection before answering (our certificate refused? see its log)`
                  : `TLS: ${tlsError} (peer ${peer} refused the connection)`,
              ),
            );
          }, 20);
        });
        stream.once("response", (headers) => {
          const status = headers[":status"];
          if (status !== 200) return fail(new Error(`HTTP/2 ${status} from ${peer} for POST ${path}`));
          settled = true;
          // The listener writes nothing on our stream but a refusal's reason: log it when the stream ends.
          let reason = "";
          if (explaining) {
            stream.on("data", (chunk: Uint8Array) => {
              if (reason.length < MAX_REASON_BYTES) {
                reason += new TextDecoder().decode(chunk).slice(0, MAX_REASON_BYTES);
              }
            });
          }
          stream.once("close", () => {
            if (reason !== "") {
              onEvent?.({ type: "connect-failed", peer, reason: `refused: ${reason.slice(0, MAX_REASON_BYTES)}` });
            }
          });
          const socket = session.socket as { getPeerCertificate?: () => { subjectaltname?: string } } | undefined;
          const identity = certificateIdentity(socket?.getPeerCertificate?.().subjectaltname);
          resolve(wrap(stream, identity, () => handlers, () => session.destroy()));
        });
      });
    },
  };
}

/** Options of the HTTP transport's mTLS mode: a listen address and the peer certificate are required. */
export interface Http2TransportOptions extends StreamTransportOptions {
  /** Mutual TLS: this node's certificate (naming its id), key, and the peer CA. */
  readonly tls: PeerTlsOptions;
  /** Path prefix of the peer stream. Default `"/raft"`. */
  readonly prefix?: string;
}

/**
 * The HTTP transport in mutual-TLS mode: peer streams over HTTP/2 on its own
 * listener (`listen`), every peer verified against the peer CA and bound to
 * its certificate's node id. Call `start()` before use. With a `secret`
 * too, the shared-secret channel runs inside the TLS stream.
 *
 * ```ts ignore
 * const t = new Http2Transport({ clusterId: "c", self: "a", listen: "0.0.0.0:9001", tls: { cert, key, ca } });
 * await t.start();
 * ```
 */
export class Http2Transport extends StreamTransport {
  /**
   * Create the transport; nothing is bound until `start()`.
   *
   * @param opts transport options, the listen address and the peer certificate
   */
  constructor(opts: Http2TransportOptions) {
    const driver = http2TlsDriver({
      tls: opts.tls,
      ...(opts.prefix === undefined ? {} : { prefix: opts.prefix }),
      ...(opts.onEvent === undefined ? {} : { onEvent: opts.onEvent }),
      explainRefusals: opts.secret === undefined,
    });
    super(driver, {
      ...opts,
      // A handshake refused by the session is explained to the dialer on its stream.
      onEvent: (e) => {
        if (e.type === "handshake-rejected") driver.explain(e.reason);
        opts.onEvent?.(e);
      },
    });
  }
}
