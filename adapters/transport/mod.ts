/**
 * Runtime-independent peer transports: the {@link PeerTransport} port, the
 * wire framing and handshake, the generic stream (TCP) transport that runtime
 * drivers plug into, and the fetch-based HTTP transport.
 *
 * @module
 */

export {
  backoffDelay,
  emptyStats,
  formatHostPort,
  type HostPort,
  MIN_SECRET_BYTES,
  parseHostPort,
  type PeerIdentity,
  type PeerTransport,
  type ResolvedTransportOptions,
  resolveTransportOptions,
  type TransportEvent,
  type TransportOptions,
  type TransportStats,
} from "./transport.ts";
export {
  concatBytes,
  decodeHandshake,
  encodeFrame,
  encodeHandshake,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameTooLargeError,
  type Handshake,
  HANDSHAKE_MAGIC,
  HandshakeError,
  PROTOCOL_VERSION,
} from "./framing.ts";
export {
  type StreamConnection,
  type StreamDriver,
  type StreamHandlers,
  type StreamListener,
  StreamTransport,
  type StreamTransportOptions,
} from "./stream.ts";
export {
  createHttpTransport,
  type FetchFn,
  type HttpTransport,
  type HttpTransportOptions,
  type RuntimeHttpTransportOptions,
} from "./http.ts";
export {
  type Http2Driver,
  type Http2DriverOptions,
  http2TlsDriver,
  Http2Transport,
  type Http2TransportOptions,
} from "./http2.ts";
export { certificateIdentity, type ClientTlsOptions, type PeerTlsOptions, type TlsClient } from "./certificates.ts";
export {
  MAX_RECORD_DATA,
  SecretChannel,
  type SecretChannelOptions,
  SecretHandshakeError,
  secretKey,
} from "./secret.ts";
export {
  type AcceptedPeerSocket,
  type OpenWebSocket,
  type PeerSocketHandlers,
  webSocketDialer,
  type WebSocketUpgrade,
} from "./websocket.ts";
export { requestUrl } from "./request_url.ts";
