/**
 * Peer streams over WebSocket for the HTTP transport: one long-lived,
 * pipelined connection per peer on the same port as the HTTP API, instead of
 * one POST per batch. The dialing side uses the web-standard `WebSocket`
 * client (Deno and Bun both have it); the accepting side needs the runtime's
 * upgrade, which the Deno and Bun adapters supply as a {@link WebSocketUpgrade}.
 *
 * Frames on the wire are the TCP transport's (handshake first, then
 * length-prefixed messages); a WebSocket message may carry any number of them.
 *
 * @module
 */

import type { StreamConnection, StreamDriver, StreamHandlers } from "./stream.ts";

/** What the transport does with one accepted peer socket. */
export interface PeerSocketHandlers {
  /** A binary message arrived. */
  onMessage(data: Uint8Array): void;
  /** The socket closed (called once). */
  onClose(): void;
}

/** The accepting side of a peer socket, as the transport holds it. */
export interface AcceptedPeerSocket {
  /** Send one binary message (the shared-secret handshake answers on the socket). */
  send(bytes: Uint8Array): void;
  /** Close the socket. Idempotent. */
  close(): void;
}

/** Opens the client side of a WebSocket to `url` (binary messages); where TLS client options go. */
export type OpenWebSocket = (url: string) => WebSocket;

/**
 * A runtime's WebSocket upgrade: answers `req` with the upgrade response
 * and, once the socket opens, calls `accept` for its handlers. Returns
 * undefined when this request cannot be upgraded here (then the transport
 * answers 426 and peers fall back to POST). `server` is whatever the user
 * passed to the transport's handler (Bun needs its `Server`).
 */
export type WebSocketUpgrade = (
  req: Request,
  server: unknown,
  accept: (socket: AcceptedPeerSocket) => PeerSocketHandlers,
) => Response | undefined;

/** Bytes a WebSocket may hold unsent before a write waits for it to drain. */
const HIGH_WATER = 1 << 20;
/** Largest WebSocket message we send; a bigger batch goes out as several. */
const MAX_MESSAGE = 1 << 20;
/** How often a waiting write looks at `bufferedAmount` (the API has no drain event). */
const DRAIN_POLL_MS = 2;

/**
 * A {@link StreamDriver} that dials peers with the `WebSocket` client at
 * `${scheme}://host:port${path}`. It cannot listen: inbound sockets arrive
 * through the HTTP server's upgrade.
 */
export function webSocketDialer(
  path: string,
  scheme: "ws" | "wss",
  open: OpenWebSocket = (url) => new WebSocket(url),
): StreamDriver {
  return {
    listen: () => Promise.reject(new Error("a WebSocket dialer does not listen; mount the transport's handler")),
    dial: (host, port, handlers) =>
      dialWebSocket(`${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${path}`, handlers, open),
  };
}

function dialWebSocket(url: string, handlers: StreamHandlers, openSocket: OpenWebSocket): Promise<StreamConnection> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = openSocket(url);
    } catch (e) {
      reject(e);
      return;
    }
    ws.binaryType = "arraybuffer";
    let open = false;
    let closed = false;
    const finished = new Promise<void>((r) => ws.addEventListener("close", () => r(), { once: true }));
    ws.addEventListener("open", () => {
      open = true;
      resolve({
        write: (bytes) => {
          if (closed || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("WebSocket closed"));
          // Servers cap a message's size (Bun: 16 MiB); the receiver reassembles frames across messages.
          for (let at = 0; at < bytes.length; at += MAX_MESSAGE) {
            ws.send(bytes.subarray(at, at + MAX_MESSAGE) as Uint8Array<ArrayBuffer>);
          }
          return ws.bufferedAmount < HIGH_WATER ? Promise.resolve() : drained(ws, () => closed);
        },
        close: () => {
          if (!closed) {
            closed = true;
            ws.close();
          }
          return finished;
        },
      });
    }, { once: true });
    ws.addEventListener("message", (e) => {
      // Peers never write on a connection we opened; nothing to do but accept it.
      if (e.data instanceof ArrayBuffer) handlers.onData(new Uint8Array(e.data));
    });
    ws.addEventListener("error", (e) => {
      if (!open) reject(new Error((e as ErrorEvent).message || `WebSocket to ${url} failed`));
    }, { once: true });
    ws.addEventListener("close", (e) => {
      closed = true;
      if (!open) reject(new Error(`WebSocket to ${url} closed before opening (code ${e.code})`));
      else handlers.onClose();
    }, { once: true });
  });
}

function drained(ws: WebSocket, isClosed: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (isClosed()) reject(new Error("WebSocket closed"));
      else if (ws.bufferedAmount < HIGH_WATER / 2) resolve();
      else setTimeout(check, DRAIN_POLL_MS);
    };
    setTimeout(check, DRAIN_POLL_MS);
  });
}
