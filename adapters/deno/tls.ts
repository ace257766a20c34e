/**
 * Mutual TLS for the TCP transport on Deno, through Deno's `node:tls`:
 * `Deno.listenTls` can neither request nor verify client certificates
 * (2.9.6), `node:tls` in Deno can (`requestCert`, `rejectUnauthorized`,
 * `getPeerCertificate`). Both ends verify the other against the peer CA;
 * the dialer verifies the server for the node id it dialed (TLS server
 * name), the listener hands the client certificate's names to the transport.
 *
 * @module
 */

import tls from "node:tls";
import {
  caList,
  certificateIdentity,
  type ClientTlsOptions,
  type PeerTlsOptions,
  type TlsClient,
} from "../transport/certificates.ts";
import type { StreamConnection, StreamDriver, StreamHandlers, StreamListener } from "../transport/stream.ts";
import type { PeerIdentity, TransportEvent } from "../transport/transport.ts";

/** A verified TLS socket as a {@link StreamConnection}. */
function wrap(
  socket: tls.TLSSocket,
  identity: PeerIdentity,
  handlersFor: (c: StreamConnection) => StreamHandlers,
): StreamConnection {
  socket.setNoDelay(true);
  let closed = false;
  const gone = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const conn: StreamConnection = {
    identity,
    write: (bytes) =>
      new Promise<void>((resolve, reject) => {
        if (closed) return reject(new Error("socket closed"));
        socket.write(bytes, (err) => err ? reject(err) : resolve());
      }),
    close: () => {
      closed = true;
      socket.destroy();
      return gone;
    },
  };
  const handlers = handlersFor(conn);
  socket.on("data", (chunk: Uint8Array) => handlers.onData(chunk));
  socket.on("error", () => socket.destroy());
  void gone.then(() => {
    closed = true;
    handlers.onClose();
  });
  return conn;
}

/**
 * The {@link StreamDriver} for mutual TLS on Deno. Refused handshakes (no
 * certificate, another CA) are reported to `onEvent`.
 */
export function denoTlsDriver(options: PeerTlsOptions, onEvent?: (e: TransportEvent) => void): StreamDriver {
  const base = { cert: options.cert, key: options.key, ca: caList(options.ca), minVersion: "TLSv1.2" as const };
  return {
    authenticates: true,
    listen(host, port, accept): Promise<StreamListener> {
      const server = tls.createServer({ ...base, requestCert: true, rejectUnauthorized: true }, (socket) => {
        if (!socket.authorized) {
          socket.destroy();
          return;
        }
        wrap(socket, certificateIdentity(socket.getPeerCertificate().subjectaltname), accept);
      });
      server.on(
        "tlsClientError",
        (err) => onEvent?.({ type: "handshake-rejected", reason: `TLS: ${err.message}`, from: undefined }),
      );
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const addr = server.address();
          resolve({
            host,
            port: typeof addr === "object" && addr !== null ? addr.port : port,
            close: () => new Promise<void>((r) => server.close(() => r())),
          });
        });
      });
    },
    dial(host, port, handlers, peer): Promise<StreamConnection> {
      return new Promise((resolve, reject) => {
        // servername: the certificate is checked for the node id, wherever the node lives.
        const socket = tls.connect({ ...base, host, port, servername: peer, rejectUnauthorized: true }, () => {
          socket.off("error", reject);
          resolve(wrap(socket, certificateIdentity(socket.getPeerCertificate().subjectaltname), () => handlers));
        });
        socket.once("error", reject);
      });
    },
  };
}

/** `fetch` and WebSocket over Deno's HTTP client with these TLS options (see {@link TlsClient}). */
export function denoTlsClient(options: ClientTlsOptions): TlsClient {
  const client = Deno.createHttpClient({
    ...(options.ca === undefined ? {} : { caCerts: caList(options.ca) }),
    ...(options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : {}),
  });
  return {
    // Casts: when Bun types share the program, they redeclare fetch and WebSocket without Deno's `client`.
    fetch: (url, init) => fetch(url, { ...init, client } as RequestInit),
    webSocket: (url) => new WebSocket(url, { client } as unknown as string[]),
    close: () => client.close(),
  };
}
