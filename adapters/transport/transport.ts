/**
 * The peer transport port: how a node hands Raft messages to its peers and
 * receives theirs, independent of the runtime and of the wire (TCP, HTTP).
 *
 * @module
 */

import type { Message, NodeId } from "../../core/types.ts";

/**
 * Moves {@link Message}s between the nodes of one cluster.
 *
 * Delivery is best effort and at most once: Raft retransmits what matters, so
 * a transport drops rather than blocks when a peer is down or slow, and tells
 * the caller through `send`'s result and {@link PeerTransport.onUnreachable}.
 * Messages from one sender to one receiver arrive in the order sent while a
 * connection lasts.
 */
export interface PeerTransport {
  /**
   * Enqueue for delivery; never blocks. Returns false when the peer's bounded
   * queue is full or the peer is unknown (the caller reports it unreachable).
   */
  send(message: Message): boolean;
  /** Install the receive handler (messages already validated: known sender, right cluster, addressed to us). */
  onMessage(handler: (message: Message) => void): void;
  /** Notified when a peer becomes unreachable (queue overflow, connect failures, a lost connection). */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Replace the address book (membership changes add/remove peers at runtime). Addresses are `"host:port"`. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Stop listening, close every connection and drop every queue. Idempotent. */
  close(): Promise<void>;
}

/**
 * Who the other end of a connection proved to be, below the Raft handshake:
 * the node ids its TLS certificate names, or the one id it claimed inside a
 * shared-secret handshake. A connection's Raft handshake must claim one of
 * these; a transport configured to authenticate refuses connections without.
 */
export interface PeerIdentity {
  /** Node ids the peer may speak for. */
  readonly names: readonly NodeId[];
  /** How it was established. */
  readonly via: "tls" | "secret";
}

/** Something worth a log line: a rejected connection, a dropped message, a failed connect. */
export type TransportEvent =
  | { readonly type: "handshake-rejected"; readonly reason: string; readonly from: NodeId | undefined }
  | { readonly type: "bad-frame"; readonly reason: string }
  | { readonly type: "message-dropped"; readonly reason: string; readonly from: NodeId; readonly to: NodeId }
  | { readonly type: "queue-overflow"; readonly peer: NodeId }
  | { readonly type: "connect-failed"; readonly peer: NodeId; readonly reason: string }
  | { readonly type: "connection-lost"; readonly peer: NodeId }
  | { readonly type: "handler-error"; readonly error: unknown };

/** Counters a transport keeps so operators (and tests) can see what it refused. */
export interface TransportStats {
  /** Connections (or HTTP requests) closed because the handshake was invalid or the sender unknown. */
  rejectedHandshakes: number;
  /** Frames that were oversized or did not decode. */
  badFrames: number;
  /** Well-formed messages dropped (wrong sender or recipient, no handler installed). */
  droppedMessages: number;
  /** Sends refused because the peer's queue was full. */
  queueOverflows: number;
  /** Failed connection attempts (or failed HTTP requests). */
  connectFailures: number;
  /** Messages delivered to the receive handler. */
  delivered: number;
}

/** A fresh set of zeroed {@link TransportStats}. */
export function emptyStats(): TransportStats {
  return {
    rejectedHandshakes: 0,
    badFrames: 0,
    droppedMessages: 0,
    queueOverflows: 0,
    connectFailures: 0,
    delivered: 0,
  };
}

/** Options every transport accepts. */
export interface TransportOptions {
  /** Cluster identity exchanged in the handshake; peers of another cluster are refused. */
  readonly clusterId: string;
  /** This node. */
  readonly self: NodeId;
  /** Initial address book (`"host:port"` per peer). Replace later with `setPeers`. */
  readonly peers?: ReadonlyMap<NodeId, string>;
  /** Bound on the bytes queued (and in flight) per peer. Default 64 MiB. */
  readonly maxQueueBytes?: number;
  /** Bound on the messages queued (and in flight) per peer. Default 262,144. */
  readonly maxQueueMessages?: number;
  /** Largest frame accepted or sent. Default 64 MiB. */
  readonly maxFrameBytes?: number;
  /** First reconnect delay. Default 50 ms. */
  readonly reconnectMinMs?: number;
  /** Largest reconnect delay. Default 2 s. */
  readonly reconnectMaxMs?: number;
  /** Give up a connection attempt after this long. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Observer for noteworthy events (rejections, drops, connect failures); for logging. */
  readonly onEvent?: (event: TransportEvent) => void;
  /**
   * Shared-secret mode: peers must prove knowledge of this secret (at least
   * 16 bytes) in a challenge-response handshake, and every record they send
   * afterwards carries a MAC under a key derived for that connection. See
   * `secret.ts` and SECURITY.md.
   */
  readonly secret?: Uint8Array;
  /** How long a peer may take to finish the shared-secret handshake. Default 5 s. */
  readonly handshakeTimeoutMs?: number;
}

/** {@link TransportOptions} with every default filled in. */
export interface ResolvedTransportOptions {
  /** See {@link TransportOptions.clusterId}. */
  readonly clusterId: string;
  /** See {@link TransportOptions.self}. */
  readonly self: NodeId;
  /** See {@link TransportOptions.peers}. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** See {@link TransportOptions.maxQueueBytes}. */
  readonly maxQueueBytes: number;
  /** See {@link TransportOptions.maxQueueMessages}. */
  readonly maxQueueMessages: number;
  /** See {@link TransportOptions.maxFrameBytes}. */
  readonly maxFrameBytes: number;
  /** See {@link TransportOptions.reconnectMinMs}. */
  readonly reconnectMinMs: number;
  /** See {@link TransportOptions.reconnectMaxMs}. */
  readonly reconnectMaxMs: number;
  /** See {@link TransportOptions.connectTimeoutMs}. */
  readonly connectTimeoutMs: number;
  /** See {@link TransportOptions.onEvent}. */
  readonly onEvent: (event: TransportEvent) => void;
  /** See {@link TransportOptions.secret}. */
  readonly secret: Uint8Array | undefined;
  /** See {@link TransportOptions.handshakeTimeoutMs}. */
  readonly handshakeTimeoutMs: number;
}

const MiB = 1024 * 1024;

/** Shortest shared secret accepted: 128 bits. */
export const MIN_SECRET_BYTES = 16;

/** Fill in defaults and reject nonsensical values early, with a clear message. */
export function resolveTransportOptions(opts: TransportOptions): ResolvedTransportOptions {
  const resolved: ResolvedTransportOptions = {
    clusterId: opts.clusterId,
    self: opts.self,
    peers: opts.peers ?? new Map(),
    maxQueueBytes: opts.maxQueueBytes ?? 64 * MiB,
    maxQueueMessages: opts.maxQueueMessages ?? 262_144,
    maxFrameBytes: opts.maxFrameBytes ?? 64 * MiB,
    reconnectMinMs: opts.reconnectMinMs ?? 50,
    reconnectMaxMs: opts.reconnectMaxMs ?? 2_000,
    connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    onEvent: opts.onEvent ?? (() => {}),
    secret: opts.secret,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5_000,
  };
  for (
    const key of [
      "maxQueueBytes",
      "maxQueueMessages",
      "maxFrameBytes",
      "reconnectMinMs",
      "reconnectMaxMs",
      "connectTimeoutMs",
      "handshakeTimeoutMs",
    ] as const
  ) {
    const v = resolved[key];
    if (!(v > 0)) throw new RangeError(`transport option ${key} must be positive, got ${v}`);
  }
  if (resolved.reconnectMaxMs < resolved.reconnectMinMs) {
    throw new RangeError("transport option reconnectMaxMs must be >= reconnectMinMs");
  }
  if (resolved.secret !== undefined && resolved.secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(`transport option secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (resolved.maxFrameBytes > 0xffff_ffff) {
    throw new RangeError("transport option maxFrameBytes must fit the u32 length prefix");
  }
  return resolved;
}

/**
 * Reconnect delay before attempt number `attempt` (1 = first retry):
 * exponential from `minMs`, capped at `maxMs`, with "equal jitter" (half
 * fixed, half random) so that nodes restarted together do not reconnect in
 * lock-step. `random` is a draw in [0, 1).
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: number): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return exp / 2 + (exp / 2) * random;
}

/** A `"host:port"` address split into its parts. */
export interface HostPort {
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/** Parse `"host:port"` (IPv6 as `"[::1]:port"`). Throws `TypeError` on anything else. */
export function parseHostPort(address: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new TypeError(`invalid address ${JSON.stringify(address)}, expected "host:port"`);
  return { host: m[1] ?? m[2], port };
}

/** Format a host and port as `"host:port"`, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
