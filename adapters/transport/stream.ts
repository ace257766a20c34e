/**
 * The runtime-independent TCP transport: handshakes, per-peer bounded queues,
 * batching, reconnect with back-off. A runtime supplies only a
 * {@link StreamDriver} (listen, dial, write with backpressure, close); see
 * `adapters/deno/tcp.ts` and `adapters/bun/tcp.ts`.
 *
 * One outbound connection per peer carries everything we send to it; we
 * receive on the connections peers open to us. Sending never waits for
 * replies (pipelining) and everything queued for a peer while the previous
 * write was in progress leaves in one write (batching).
 *
 * @module
 */

import type { Message, NodeId } from "../../core/types.ts";
import type { PeerTlsOptions } from "./certificates.ts";
import { encodeMessageFrame, handshakeFrame } from "./framing.ts";
import { InboundSession } from "./inbound.ts";
import { PeerQueue } from "./queue.ts";
import { SecretChannel } from "./secret.ts";
import {
  backoffDelay,
  emptyStats,
  formatHostPort,
  parseHostPort,
  type PeerIdentity,
  type PeerTransport,
  type ResolvedTransportOptions,
  resolveTransportOptions,
  type TransportOptions,
  type TransportStats,
} from "./transport.ts";

/** Callbacks a driver invokes for one connection. */
export interface StreamHandlers {
  /** Bytes arrived. The chunk may be reused by the driver after the call returns. */
  onData(chunk: Uint8Array): void;
  /** The connection ended, for whatever reason (called once, also after a local close). */
  onClose(): void;
}

/** One established byte stream, as a driver exposes it. */
export interface StreamConnection {
  /**
   * Who the other end authenticated as, when the driver authenticates (TLS
   * with client certificates, the shared-secret channel); set before any data.
   */
  readonly identity?: PeerIdentity;
  /** Write all of `bytes`; resolves once the runtime took them all (backpressure), rejects if the connection broke. */
  write(bytes: Uint8Array): Promise<void>;
  /** Close; resolves once the connection is fully released. Idempotent. */
  close(): Promise<void>;
}

/** A bound listening socket. */
export interface StreamListener {
  /** Bound host. */
  readonly host: string;
  /** Bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stop accepting and release the port. */
  close(): Promise<void>;
}

/** The few socket operations a runtime must provide (no-delay sockets, please). */
export interface StreamDriver {
  /** True when every connection this driver accepts carries an `identity` (the transport then requires one). */
  readonly authenticates?: boolean;
  /** Listen on `host:port`; `accept` is called for each inbound connection before any data. */
  listen(
    host: string,
    port: number,
    accept: (conn: StreamConnection) => StreamHandlers,
  ): Promise<StreamListener>;
  /**
   * Open a connection to node `peer`; rejects when it cannot be established
   * (or, for an authenticating driver, when the other end cannot prove it is `peer`).
   */
  dial(host: string, port: number, handlers: StreamHandlers, peer: NodeId): Promise<StreamConnection>;
}

/** Options of a TCP transport. */
export interface StreamTransportOptions extends TransportOptions {
  /** Where to listen, `"host:port"`; port 0 picks a free one. */
  readonly listen: string;
  /**
   * Mutual TLS: peers connect over TLS with certificates signed by `ca`,
   * each naming its node id (see `certificates.ts`). The runtime's transport
   * (`DenoTcpTransport`, `BunTcpTransport`) picks its TLS driver for it.
   */
  readonly tls?: PeerTlsOptions;
}

/** What the outbound peers share with their transport. */
export interface OutboundContext {
  /** The transport's resolved options. */
  readonly opts: ResolvedTransportOptions;
  /** How to dial. */
  readonly driver: StreamDriver;
  /** The transport's counters. */
  readonly stats: TransportStats;
  /** The frame every new connection starts with. */
  readonly handshake: Uint8Array;
  /** Report a peer unreachable to the node. */
  unreachable(peer: NodeId): void;
  /** A dial failed (after the event and the unreachable report); the HTTP transport falls back to POST here. */
  dialFailed?(peer: NodeId): void;
}

/** Resolve `promise`, or reject after `ms`; a late success is handed to `onLate` for cleanup. */
function withTimeout<T>(promise: Promise<T>, ms: number, onLate: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (timedOut) onLate(value);
        else resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        if (!timedOut) reject(err);
      },
    );
  });
}

/** The sending side towards one peer: its queue, its connection, its reconnect timer. */
export class OutboundPeer {
  readonly id: NodeId;
  readonly address: string;
  readonly #ctx: OutboundContext;
  readonly #queue: PeerQueue;
  #conn: StreamConnection | undefined;
  #dialing: Promise<void> | undefined;
  #writing: Promise<void> | undefined;
  #flushScheduled = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #needHandshake = true;
  #overflowReported = false;
  #closed = false;

  /** A sender towards `id` at `address` (`"host:port"`); nothing is dialed before the first send. */
  constructor(id: NodeId, address: string, ctx: OutboundContext) {
    this.id = id;
    this.address = address;
    this.#ctx = ctx;
    this.#queue = new PeerQueue(ctx.opts.maxQueueBytes, ctx.opts.maxQueueMessages);
  }

  /** Queue one encoded frame; false when the queue is full or the peer closed. */
  send(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    if (!this.#queue.offer(frame)) {
      this.#ctx.stats.queueOverflows++;
      // Report once per overflow episode, not once per refused message.
      if (!this.#overflowReported) {
        this.#overflowReported = true;
        this.#ctx.opts.onEvent({ type: "queue-overflow", peer: this.id });
        this.#ctx.unreachable(this.id);
      }
      return false;
    }
    // Flush at the end of the current task, so everything sent in it shares one write.
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
    if (this.#closed) return;
    const conn = this.#conn;
    if (conn === undefined) {
      if (this.#dialing === undefined && this.#retryTimer === undefined && this.#queue.length > 0) {
        this.#dialing = this.#dial();
      }
      return;
    }
    if (this.#writing !== undefined) return;
    const batch = this.#queue.take(this.#needHandshake ? this.#ctx.handshake : undefined);
    if (batch === undefined) return;
    this.#needHandshake = false;
    this.#writing = conn.write(batch).then(
      () => {
        this.#writing = undefined;
        this.#queue.settle();
        this.#overflowReported = false;
        this.#pump();
      },
      () => {
        this.#writing = undefined;
        this.#queue.settle();
        this.#lost(conn);
      },
    );
  }

  async #dial(): Promise<void> {
    let conn: StreamConnection;
    const holder: { conn?: StreamConnection } = {};
    try {
      const { host, port } = parseHostPort(this.address);
      const dialed = this.#ctx.driver.dial(host, port, {
        // Peers never write on the connection we opened; data here is ignored.
        onData: () => {},
        onClose: () => {
          if (holder.conn) this.#lost(holder.conn);
        },
      }, this.id);
      conn = await withTimeout(dialed, this.#ctx.opts.connectTimeoutMs, (late) => void late.close());
    } catch (err) {
      this.#dialing = undefined;
      if (this.#closed) return;
      this.#ctx.stats.connectFailures++;
      this.#ctx.opts.onEvent({ type: "connect-failed", peer: this.id, reason: String(err) });
      this.#ctx.unreachable(this.id);
      this.#ctx.dialFailed?.(this.id);
      this.#scheduleRetry();
      return;
    }
    this.#dialing = undefined;
    if (this.#closed) {
      await conn.close();
      return;
    }
    holder.conn = conn;
    this.#conn = conn;
    this.#needHandshake = true;
    this.#attempt = 0;
    this.#pump();
  }

  #lost(conn: StreamConnection): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    void conn.close();
    if (this.#closed) return;
    this.#ctx.opts.onEvent({ type: "connection-lost", peer: this.id });
    this.#ctx.unreachable(this.id);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    this.#attempt++;
    const { reconnectMinMs, reconnectMaxMs } = this.#ctx.opts;
    const delay = backoffDelay(this.#attempt, reconnectMinMs, reconnectMaxMs, Math.random());
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, delay);
  }

  /** Drop what is queued but not yet written (its sender switches paths; Raft resends). */
  discardQueued(): void {
    this.#queue.clear();
  }

  /** Drop the queue and the connection; resolves once everything is released. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#queue.clear();
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    await Promise.allSettled([conn?.close(), this.#writing, this.#dialing]);
  }
}

/** `driver` wrapped in the shared-secret channel when the options carry a secret. */
export function withSecret(driver: StreamDriver, opts: ResolvedTransportOptions): StreamDriver {
  if (opts.secret === undefined) return driver;
  const channel = new SecretChannel({
    clusterId: opts.clusterId,
    self: opts.self,
    secret: opts.secret,
    handshakeTimeoutMs: opts.handshakeTimeoutMs,
    onEvent: opts.onEvent,
  });
  return channel.driver(driver);
}

/**
 * A {@link PeerTransport} over any byte-stream runtime. Call
 * {@link StreamTransport.start} before use.
 */
export class StreamTransport implements PeerTransport {
  readonly #opts: ResolvedTransportOptions;
  readonly #driver: StreamDriver;
  readonly #listen: string;
  readonly #ctx: OutboundContext;
  readonly #outbound = new Map<NodeId, OutboundPeer>();
  readonly #inbound = new Set<StreamConnection>();
  readonly #closing = new Set<Promise<void>>();
  #peers: ReadonlyMap<NodeId, string>;
  #listener: StreamListener | undefined;
  #onMessage: ((message: Message) => void) | undefined;
  #onUnreachable: ((peer: NodeId) => void) | undefined;
  #closed: Promise<void> | undefined;
  /** Counters of rejected connections, dropped messages and the like. */
  readonly stats: TransportStats = emptyStats();

  /**
   * Create a transport over `driver`; nothing is bound until `start()`.
   * With `opts.secret`, the driver's connections are wrapped in the
   * shared-secret channel.
   *
   * @param driver the runtime's sockets
   * @param opts transport options; `listen` is where to accept peers
   */
  constructor(driver: StreamDriver, opts: StreamTransportOptions) {
    this.#opts = resolveTransportOptions(opts);
    driver = withSecret(driver, this.#opts);
    this.#driver = driver;
    this.#listen = opts.listen;
    this.#peers = new Map(this.#opts.peers);
    this.#ctx = {
      opts: this.#opts,
      driver,
      stats: this.stats,
      handshake: handshakeFrame(this.#opts.clusterId, this.#opts.self),
      unreachable: (peer) => this.#onUnreachable?.(peer),
    };
  }

  /** Bind the listening socket. */
  async start(): Promise<void> {
    if (this.#listener) throw new Error("transport already started");
    if (this.#closed) throw new Error("transport closed");
    const { host, port } = parseHostPort(this.#listen);
    this.#listener = await this.#driver.listen(host, port, (conn) => this.#accept(conn));
  }

  /** The bound `"host:port"` (with the real port when 0 was asked for). Available after `start()`. */
  get address(): string {
    if (!this.#listener) throw new Error("transport not started");
    return formatHostPort(this.#listener.host, this.#listener.port);
  }

  /** See {@link PeerTransport.send}. */
  send(message: Message): boolean {
    if (this.#closed || message.to === this.#opts.self) return false;
    const address = this.#peers.get(message.to);
    if (address === undefined) return false;
    let peer = this.#outbound.get(message.to);
    if (peer === undefined) {
      peer = new OutboundPeer(message.to, address, this.#ctx);
      this.#outbound.set(message.to, peer);
    }
    return peer.send(encodeMessageFrame(message, this.#opts.maxFrameBytes));
  }

  /** See {@link PeerTransport.onMessage}. */
  onMessage(handler: (message: Message) => void): void {
    this.#onMessage = handler;
  }

  /** See {@link PeerTransport.onUnreachable}. */
  onUnreachable(handler: (peer: NodeId) => void): void {
    this.#onUnreachable = handler;
  }

  /** See {@link PeerTransport.setPeers}. Removed or re-addressed peers lose their queue and connection. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, peer] of this.#outbound) {
      if (peers.get(id) !== peer.address) {
        this.#outbound.delete(id);
        this.#track(peer.close());
      }
    }
    this.#peers = new Map(peers);
  }

  /** See {@link PeerTransport.close}. */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    const listener = this.#listener;
    const closing: Promise<unknown>[] = [...this.#closing];
    if (listener) closing.push(listener.close());
    for (const peer of this.#outbound.values()) closing.push(peer.close());
    for (const conn of this.#inbound) closing.push(conn.close());
    this.#outbound.clear();
    await Promise.allSettled(closing);
  }

  #track(p: Promise<void>): void {
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }

  #accept(conn: StreamConnection): StreamHandlers {
    if (this.#closed) {
      void conn.close();
      return { onData: () => {}, onClose: () => {} };
    }
    this.#inbound.add(conn);
    const session = new InboundSession({
      clusterId: this.#opts.clusterId,
      self: this.#opts.self,
      maxFrameBytes: this.#opts.maxFrameBytes,
      isKnownPeer: (id) => id !== this.#opts.self && this.#peers.has(id),
      deliver: (message) => this.#deliver(message),
      stats: this.stats,
      onEvent: this.#opts.onEvent,
      requireIdentity: this.#driver.authenticates === true,
    }, conn.identity);
    return {
      onData: (chunk) => {
        if (session.push(chunk) !== "ok") void conn.close();
      },
      onClose: () => {
        this.#inbound.delete(conn);
      },
    };
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
      // A throwing handler must not take the connection (and its other messages) down with it.
      this.#opts.onEvent({ type: "handler-error", error });
    }
  }
}
