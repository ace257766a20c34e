/// <reference types="bun" />
/**
 * Peer streams for the HTTP transport on Bun. Bun upgrades through the
 * `Server` and routes socket events to the `websocket` handlers given to
 * `Bun.serve`, so a server that mounts the transport passes both:
 *
 * ```ts
 * Bun.serve({
 *   fetch: (req, server) => transport.handler(req, server) ?? app(req),
 *   websocket: peerWebSocket,
 * });
 * ```
 *
 * Without them the transport answers stream requests with 426 and its peers
 * send POSTs instead (slower, still correct).
 *
 * @module
 */

import type { PeerSocketHandlers, WebSocketUpgrade } from "../transport/websocket.ts";
import type { ServerWebSocket, WebSocketHandler } from "bun";

/** What an upgraded peer socket carries in `ws.data`. */
interface PeerSocketData {
  readonly plankPeer: {
    readonly accept: Parameters<WebSocketUpgrade>[2];
    handlers?: PeerSocketHandlers;
  };
}

function peerData(ws: ServerWebSocket<unknown>): PeerSocketData["plankPeer"] | undefined {
  const data = ws.data as Partial<PeerSocketData> | undefined;
  return typeof data === "object" && data !== null ? data.plankPeer : undefined;
}

/** The {@link WebSocketUpgrade} for Bun; `server` must be the request's `Server`. */
export const bunWebSocketUpgrade: WebSocketUpgrade = (req, server, accept): Response | undefined => {
  const s = server as { upgrade?: (req: Request, opts: { data: PeerSocketData }) => boolean } | undefined;
  if (typeof s?.upgrade !== "function") return undefined;
  try {
    if (!s.upgrade(req, { data: { plankPeer: { accept } } })) return undefined;
  } catch {
    return undefined; // Bun.serve was started without `websocket` handlers
  }
  // Bun has already answered the upgrade; what fetch returns for it is ignored.
  return new Response(null, { status: 101 });
};

/**
 * The `websocket` handlers to pass to `Bun.serve` for peer streams. Sockets
 * that this transport did not upgrade are left alone (a server with its own
 * WebSockets calls these from its handlers for sockets it did not open).
 */
export const peerWebSocket: WebSocketHandler<unknown> = {
  open(ws) {
    const peer = peerData(ws);
    if (peer) peer.handlers = peer.accept({ send: (bytes) => void ws.sendBinary(bytes), close: () => ws.close() });
  },
  message(ws, message) {
    const peer = peerData(ws);
    if (!peer) return;
    // Peers speak binary frames only; text is a protocol error.
    if (typeof message === "string") ws.close(1003, "binary frames only");
    else peer.handlers?.onMessage(message);
  },
  close(ws) {
    peerData(ws)?.handlers?.onClose();
  },
};
