/**
 * An HTTP peer transport (in the manner of goraft's HTTPTransporter) built
 * only on web-standard `fetch` / `Request` / `Response`, so it runs on Deno,
 * Bun and anything else with `fetch`.
 *
 * The user mounts {@link HttpTransport.handler} on their own server
 * (`Deno.serve`, `Bun.serve`, ...). Peers POST to `${prefix}/messages` a body
 * of length-prefixed frames, the handshake frame first, then messages; the
 * answer is 204 (accepted), 400 (bad frames) or 403 (unknown sender or
 * another cluster). Each peer has one request in flight at a time, carrying
 * everything queued for it (batching).
 *
 * With a runtime's {@link WebSocketUpgrade} (the Deno and Bun adapters pass
 * theirs), the handler also accepts a WebSocket at `${prefix}/stream`, and
 * the transport sends to peers over one such long-lived socket each: the
 * same frames, pipelined, without a request/response per batch. A peer that
 * does not upgrade (426, or any failed dial) is sent POSTs for a while
 * before the stream is tried again, so mixed clusters keep talking.
 *
 * With a shared `secret` (see `secret.ts`), peers talk over streams only:
 * each stream starts with the challenge-response handshake and every record
 * carries a MAC. `POST` is refused (403) and never sent, because a one-shot
 * request has no round trip in which the server could contribute a fresh
 * nonce, so a recorded POST could be replayed.
 *
 * A POST body is decoded as it streams and refused (413) as soon as it
 * passes `maxBodyBytes`, whatever its `content-length` said.
 *
 * Mutual TLS needs the client's certificate, which neither `Deno.serve` nor
 * `Bun.serve` shows a handler: the HTTP transport's mTLS mode is
 * `Http2Transport` (`http2.ts`), peer streams over `node:http2` on a
 * listener of its own.
 *
 * @module
 */

import type { Message, NodeId } from "../../core/types.ts";
import type { ClientTlsOptions, TlsClient } from "./certificates.ts";
import { encodeMessageFrame, handshakeFrame } from "./framing.ts";
import { InboundSession } from "./inbound.ts";
import { PeerQueue } from "./queue.ts";
import { SecretChannel } from "./secret.ts";
import { OutboundPeer, type StreamConnection, type StreamHandlers } from "./stream.ts";
import {
  backoffDelay,
  emptyStats,
  type PeerTransport,
  type ResolvedTransportOptions,
  resolveTransportOptions,
  type TransportOptions,
  type TransportStats,
} from "./transport.ts";
import { type AcceptedPeerSocket, type OpenWebSocket, webSocketDialer, type WebSocketUpgrade } from "./websocket.ts";
import { requestUrl } from "./request_url.ts";

/** The subset of `fetch` the transport uses. */
export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

/** Options of the HTTP transport. Peer addresses are `"host:port"` of the peers' HTTP servers. */
export interface HttpTransportOptions extends TransportOptions {
  /** Path prefix the handler is mounted under. Default `"/raft"`. */
  readonly prefix?: string;
  /** URL scheme used to reach peers. Default `"http"`. */
  readonly scheme?: "http" | "https";
  /** The `fetch` to send with (e.g. one bound to a custom HTTP client). Default `globalThis.fetch`. */
  readonly fetch?: FetchFn;
  /** Largest request body accepted. Default `maxQueueBytes` plus one frame. */
  readonly maxBodyBytes?: number;
  /** The runtime's WebSocket upgrade; with it the handler accepts peer streams at `${prefix}/stream`. */
  readonly upgrade?: WebSocketUpgrade;
  /** Send to peers over WebSocket streams (falling back to POST). Default: true when `upgrade` is given. */
  readonly streams?: boolean;
  /** How long a peer that refused a stream is sent POSTs before the stream is tried again. Default 3 s. */
  readonly streamRetryMs?: number;
  /** Opens the client side of a peer stream (e.g. with TLS client options). Default `new WebSocket(url)`. */
  readonly webSocket?: OpenWebSocket;
}

/**
 * {@link HttpTransportOptions} plus TLS client options, which each runtime's
 * `createHttpTransport` turns into its `fetch` and WebSocket client (the
 * scheme then defaults to `https`).
 */
export interface RuntimeHttpTransportOptions extends HttpTransportOptions {
  /** Reach peers over https/wss with these trust anchors (and client certificate). */
  readonly tls?: ClientTlsOptions;
}

/**
 * Build the HTTP transport with `client`'s fetch and WebSocket when TLS
 * options are given (closing the client with the transport), as the Deno
 * and Bun adapters do with their runtime's client.
 */
export function createHttpTransportWith(
  opts: RuntimeHttpTransportOptions,
  upgrade: WebSocketUpgrade,
  tlsClient: (tls: ClientTlsOptions) => TlsClient,
): HttpTransport {
  if (opts.tls === undefined) return createHttpTransport({ upgrade, ...opts });
  const client = tlsClient(opts.tls);
  const t = createHttpTransport({
    upgrade,
    scheme: "https",
    fetch: client.fetch,
    webSocket: client.webSocket,
    ...opts,
  });
  return {
    handler: (req, server) => t.handler(req, server),
    send: (m) => t.send(m),
    onMessage: (h) => t.onMessage(h),
    onUnreachable: (h) => t.onUnreachable(h),
    setPeers: (p) => t.setPeers(p),
    get stats() {
      return t.stats;
    },
    close: () => t.close().finally(() => client.close()),
  };
}

/** A {@link PeerTransport} over HTTP, plus the request handler peers talk to. */
export interface HttpTransport extends PeerTransport {
  /**
   * Serve a peer's request. Returns undefined when the request is not for
   * this transport (another path), so it composes with the user's routes.
   * `server` is handed to the runtime's upgrade (Bun needs its `Server` for
   * peer streams; Deno needs nothing).
   */
  handler(req: Request, server?: unknown): Promise<Response> | undefined;
  /** Counters of rejected requests, dropped messages and the like. */
  readonly stats: TransportStats;
}

/** The sending side towards one peer over HTTP. */
class HttpPeer {
  readonly #queue: PeerQueue;
  #inFlight: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #flushScheduled = false;
  #attempt = 0;
  #overflowReported = false;
  #closed = false;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    readonly transport: HttpTransportImpl,
  ) {
    const { maxQueueBytes, maxQueueMessages } = transport.opts;
    this.#queue = new PeerQueue(maxQueueBytes, maxQueueMessages);
  }

  /** Nothing queued and no request in flight. */
  get idle(): boolean {
    return this.#inFlight === undefined && this.#queue.length === 0;
  }

  send(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    if (!this.#queue.offer(frame)) {
      this.transport.stats.queueOverflows++;
      if (!this.#overflowReported) {
        this.#overflowReported = true;
        this.transport.opts.onEvent({ type: "queue-overflow", peer: this.id });
        this.transport.unreachable(this.id);
      }
      return false;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        this.#pump();
      });
    }
    return true;
  }

  #pump(): void {
    if (this.#closed || this.#inFlight || this.#retryTimer !== undefined) return;
    // Every request is a fresh "connection": it starts with the handshake.
    if (this.#queue.length === 0) return;
    const body = this.#queue.take(this.transport.handshake)!;
    this.#inFlight = this.#post(body);
  }

  async #post(body: Uint8Array): Promise<void> {
    const t = this.transport;
    const abort = new AbortController();
    this.#abort = abort;
    let failure: string | undefined;
    try {
      const res = await t.fetch(`${t.scheme}://${this.address}${t.prefix}/messages`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: body as Uint8Array<ArrayBuffer>,
        signal: abort.signal,
      });
      // Always consume the body, or the connection (and Deno's resource sanitizer) stays busy.
      await res.body?.cancel();
      if (res.status !== 204) failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = String(err);
    }
    this.#abort = undefined;
    this.#inFlight = undefined;
    this.#queue.settle();
    if (this.#closed) return;
    if (failure === undefined) {
      this.#attempt = 0;
      this.#overflowReported = false;
      this.#pump();
      return;
    }
    // The batch is lost; Raft retransmits what matters. Back off before the next request.
    t.stats.connectFailures++;
    t.opts.onEvent({ type: "connect-failed", peer: this.id, reason: failure });
    t.unreachable(this.id);
    this.#attempt++;
    const delay = backoffDelay(this.#attempt, t.opts.reconnectMinMs, t.opts.reconnectMaxMs, Math.random());
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, delay);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#queue.clear();
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#abort?.abort();
    await this.#inFlight;
  }
}

/** What the transport keeps per peer: the POST sender, or a stream with POST as its fallback. */
interface Sender {
  readonly address: string;
  send(frame: Uint8Array): boolean;
  close(): Promise<void>;
}

/** Sends over a WebSocket stream; after a failed dial, over POST until `streamRetryMs` has passed. */
class StreamedPeer implements Sender {
  readonly stream: OutboundPeer;
  readonly post: HttpPeer;
  #postUntil = 0;

  constructor(readonly id: NodeId, readonly address: string, readonly transport: HttpTransportImpl) {
    this.stream = new OutboundPeer(id, address, transport.streamContext);
    this.post = new HttpPeer(id, address, transport);
  }

  send(frame: Uint8Array): boolean {
    // Back to the stream only once no POST is pending, so messages never overtake each other.
    if (this.#postUntil !== 0 && (Date.now() < this.#postUntil || !this.post.idle)) return this.post.send(frame);
    this.#postUntil = 0;
    return this.stream.send(frame);
  }

  /** The stream could not be opened: what it held is dropped (Raft resends) and POST takes over for a while. */
  fallBack(): void {
    this.stream.discardQueued();
    this.#postUntil = Date.now() + this.transport.streamRetryMs;
  }

  async close(): Promise<void> {
    await Promise.all([this.stream.close(), this.post.close()]);
  }
}

class HttpTransportImpl implements HttpTransport {
  readonly opts: ResolvedTransportOptions;
  readonly prefix: string;
  readonly scheme: string;
  readonly fetch: FetchFn;
  readonly maxBodyBytes: number;
  readonly handshake: Uint8Array;
  readonly stats: TransportStats = emptyStats();
  readonly upgrade: WebSocketUpgrade | undefined;
  readonly streams: boolean;
  readonly streamRetryMs: number;
  readonly streamContext: ConstructorParameters<typeof OutboundPeer>[2];
  readonly secret: SecretChannel | undefined;
  readonly #outbound = new Map<NodeId, Sender>();
  readonly #inbound = new Set<AcceptedPeerSocket>();
  readonly #closing = new Set<Promise<void>>();
  #peers: ReadonlyMap<NodeId, string>;
  #onMessage: ((message: Message) => void) | undefined;
  #onUnreachable: ((peer: NodeId) => void) | undefined;
  #closed: Promise<void> | undefined;

  constructor(opts: HttpTransportOptions) {
    this.opts = resolveTransportOptions(opts);
    this.prefix = (opts.prefix ?? "/raft").replace(/\/+$/, "");
    this.scheme = opts.scheme ?? "http";
    this.fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.maxBodyBytes = opts.maxBodyBytes ?? this.opts.maxQueueBytes + this.opts.maxFrameBytes;
    this.handshake = handshakeFrame(this.opts.clusterId, this.opts.self);
    this.#peers = new Map(this.opts.peers);
    this.upgrade = opts.upgrade;
    this.streams = opts.streams ?? opts.upgrade !== undefined;
    this.streamRetryMs = opts.streamRetryMs ?? 3_000;
    const o = this.opts;
    this.secret = o.secret === undefined ? undefined : new SecretChannel({
      clusterId: o.clusterId,
      self: o.self,
      secret: o.secret,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      onEvent: o.onEvent,
    });
    if (this.secret !== undefined && (opts.upgrade === undefined || opts.streams === false)) {
      throw new TypeError("the HTTP transport's shared-secret mode needs peer streams (an upgrade, streams not false)");
    }
    const dialer = webSocketDialer(`${this.prefix}/stream`, this.scheme === "https" ? "wss" : "ws", opts.webSocket);
    this.streamContext = {
      opts: this.opts,
      driver: this.secret?.driver(dialer) ?? dialer,
      stats: this.stats,
      handshake: this.handshake,
      unreachable: (peer) => this.unreachable(peer),
      dialFailed: (peer) => {
        // Never fall back to POST in secret mode: POSTs are not authenticated.
        const sender = this.#outbound.get(peer);
        if (sender instanceof StreamedPeer && this.secret === undefined) sender.fallBack();
      },
    };
  }

  unreachable(peer: NodeId): void {
    this.#onUnreachable?.(peer);
  }

  send(message: Message): boolean {
    if (this.#closed || message.to === this.opts.self) return false;
    const address = this.#peers.get(message.to);
    if (address === undefined) return false;
    let peer = this.#outbound.get(message.to);
    if (peer === undefined) {
      peer = this.streams ? new StreamedPeer(message.to, address, this) : new HttpPeer(message.to, address, this);
      this.#outbound.set(message.to, peer);
    }
    return peer.send(encodeMessageFrame(message, this.opts.maxFrameBytes));
  }

  onMessage(handler: (message: Message) => void): void {
    this.#onMessage = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.#onUnreachable = handler;
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, peer] of this.#outbound) {
      if (peers.get(id) !== peer.address) {
        this.#outbound.delete(id);
        const p = peer.close();
        this.#closing.add(p);
        void p.finally(() => this.#closing.delete(p));
      }
    }
    this.#peers = new Map(peers);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const closing: Promise<unknown>[] = [...this.#closing];
      for (const peer of this.#outbound.values()) closing.push(peer.close());
      this.#outbound.clear();
      for (const socket of this.#inbound) socket.close();
      this.#inbound.clear();
      await Promise.allSettled(closing);
    })();
    return this.#closed;
  }

  handler(req: Request, server?: unknown): Promise<Response> | undefined {
    const path = requestUrl(req).pathname;
    if (path === `${this.prefix}/stream`) return Promise.resolve(this.#accept(req, server));
    if (path !== `${this.prefix}/messages`) return undefined;
    return this.#serve(req);
  }

  /** Upgrade a peer's stream request; the session validates its handshake like a TCP connection's. */
  #accept(req: Request, server: unknown): Response {
    if (this.#closed) return new Response(null, { status: 503 });
    if (req.method !== "GET" || req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade\n", { status: 426, headers: { upgrade: "websocket" } });
    }
    const response = this.upgrade?.(req, server, (socket) => {
      if (this.#closed) {
        socket.close();
        return { onMessage: () => {}, onClose: () => {} };
      }
      this.#inbound.add(socket);
      const raw: StreamConnection = {
        write: (bytes) => Promise.resolve(socket.send(bytes)),
        close: () => Promise.resolve(socket.close()),
      };
      const stream = (conn: StreamConnection): StreamHandlers => {
        const session = this.#session(conn);
        return {
          onData: (data) => {
            if (session.push(data) !== "ok") socket.close();
          },
          onClose: () => {},
        };
      };
      const handlers = this.secret ? this.secret.accept(raw, stream) : stream(raw);
      return {
        onMessage: (data) => handlers.onData(data),
        onClose: () => {
          this.#inbound.delete(socket);
          handlers.onClose();
        },
      };
    });
    return response ?? new Response("peer streams are not wired on this server; use POST\n", { status: 426 });
  }

  #session(conn?: StreamConnection): InboundSession {
    return new InboundSession({
      clusterId: this.opts.clusterId,
      self: this.opts.self,
      maxFrameBytes: this.opts.maxFrameBytes,
      isKnownPeer: (id) => id !== this.opts.self && this.#peers.has(id),
      deliver: (message) => this.#deliver(message),
      stats: this.stats,
      onEvent: this.opts.onEvent,
      requireIdentity: this.secret !== undefined,
    }, conn?.identity);
  }

  async #serve(req: Request): Promise<Response> {
    if (req.method !== "POST") return new Response(null, { status: 405, headers: { allow: "POST" } });
    if (this.#closed) return new Response(null, { status: 503 });
    if (this.secret !== undefined) {
      await req.body?.cancel().catch(() => {});
      this.stats.rejectedHandshakes++;
      this.opts.onEvent({ type: "handshake-rejected", reason: "POST refused: shared-secret mode", from: undefined });
      return new Response("peer POSTs are disabled in shared-secret mode; use the stream\n", { status: 403 });
    }
    // The body is decoded as it streams: memory stays at one partial frame, and
    // reading stops at the first bad frame or once maxBodyBytes have come.
    const declared = req.headers.get("content-length");
    if (declared !== null && !(Number(declared) <= this.maxBodyBytes)) {
      await req.body?.cancel().catch(() => {});
      return new Response(null, { status: 413 });
    }
    const session = this.#session();
    let total = 0;
    if (req.body !== null) {
      const reader = req.body.getReader();
      for (;;) {
        let chunk: Uint8Array | undefined;
        try {
          chunk = (await reader.read()).value;
        } catch {
          return new Response(null, { status: 400 }); // the client went away mid-body
        }
        if (chunk === undefined) break;
        total += chunk.length;
        const status = total > this.maxBodyBytes ? "too-large" : session.push(chunk);
        if (status === "ok") continue;
        await reader.cancel().catch(() => {});
        return new Response(null, { status: status === "too-large" ? 413 : status === "forbidden" ? 403 : 400 });
      }
    }
    if (session.peer === undefined || !session.idle) {
      // No handshake, or a truncated last frame.
      this.stats.badFrames++;
      this.opts.onEvent({ type: "bad-frame", reason: "truncated request body" });
      return new Response(null, { status: 400 });
    }
    return new Response(null, { status: 204 });
  }

  #deliver(message: Message): void {
    const handler = this.#onMessage;
    if (handler === undefined || this.#closed) {
      this.stats.droppedMessages++;
      return;
    }
    this.stats.delivered++;
    try {
      handler(message);
    } catch (error) {
      this.opts.onEvent({ type: "handler-error", error });
    }
  }
}

/** Create an HTTP transport; mount its `handler` on your server under `prefix` (default `/raft`). */
export function createHttpTransport(opts: HttpTransportOptions): HttpTransport {
  return new HttpTransportImpl(opts);
}
