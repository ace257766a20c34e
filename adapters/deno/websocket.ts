/**
 * Peer streams for the HTTP transport on Deno: `Deno.upgradeWebSocket`
 * inside whatever `Deno.serve` handler mounts the transport, so nothing
 * else needs wiring.
 *
 * @module
 */

import type { PeerSocketHandlers, WebSocketUpgrade } from "../transport/websocket.ts";

/** The {@link WebSocketUpgrade} for Deno; `server` is not needed. */
export const denoWebSocketUpgrade: WebSocketUpgrade = (req, _server, accept): Response | undefined => {
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(req);
  } catch {
    return undefined; // not an upgradable request (e.g. not HTTP/1.1)
  }
  const { socket, response } = upgraded;
  socket.binaryType = "arraybuffer";
  let handlers: PeerSocketHandlers | undefined;
  socket.onopen = () => {
    handlers = accept({ send: (bytes) => socket.send(bytes as Uint8Array<ArrayBuffer>), close: () => socket.close() });
  };
  socket.onmessage = (e) => {
    // Peers speak binary frames only; text is a protocol error.
    if (e.data instanceof ArrayBuffer) handlers?.onMessage(new Uint8Array(e.data));
    else socket.close(1003, "binary frames only");
  };
  socket.onclose = () => handlers?.onClose();
  return response;
};
