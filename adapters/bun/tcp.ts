/// <reference types="bun" />
/**
 * The TCP peer transport on Bun's sockets (`Bun.listen` / `Bun.connect`),
 * optionally with mutual TLS (Bun's `tls` options: both ends verify the
 * other against the peer CA; the dialer verifies the server for the node id
 * it dialed as the TLS server name).
 *
 * @module
 */

import { caList, certificateIdentity, type PeerTlsOptions } from "../transport/certificates.ts";
import type { PeerIdentity, TransportEvent } from "../transport/transport.ts";

import {
  type StreamConnection,
  type StreamDriver,
  type StreamHandlers,
  type StreamListener,
  StreamTransport,
  type StreamTransportOptions,
} from "../transport/stream.ts";

/** Per-socket state Bun keeps in `socket.data`. */
interface SocketState {
  handlersFor: (c: StreamConnection) => StreamHandlers;
  conn?: BunConnection;
  /** TLS: settles once the handshake verified the peer (dialled sockets wait for it). */
  verified?: (error: Error | undefined) => void;
  /** TLS: where refused handshakes are reported. */
  onEvent?: (e: TransportEvent) => void;
}

/**
 * A Bun socket as a {@link StreamConnection}. `socket.write` takes what the
 * kernel accepts and returns the count; the rest waits here for `drain`.
 */
class BunConnection implements StreamConnection {
  readonly #socket: Bun.Socket<SocketState>;
  readonly #handlers: StreamHandlers;
  #pending: { rest: Uint8Array; resolve: () => void; reject: (e: Error) => void } | undefined;
  #closed = false;
  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;
  /** Who the TLS handshake verified, on TLS sockets. */
  readonly identity: PeerIdentity | undefined;

  constructor(
    socket: Bun.Socket<SocketState>,
    handlersFor: (c: StreamConnection) => StreamHandlers,
    identity?: PeerIdentity,
  ) {
    this.#socket = socket;
    this.identity = identity;
    this.#whenClosed = new Promise((resolve) => this.#resolveClosed = resolve);
    // Raft messages are small and latency-sensitive; batching is done by us, not by Nagle.
    socket.setNoDelay(true);
    this.#handlers = handlersFor(this);
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("socket closed"));
    if (this.#pending) return Promise.reject(new Error("write already in progress"));
    const n = this.#socket.write(bytes);
    if (n < 0) return Promise.reject(new Error("socket closed"));
    if (n === bytes.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#pending = { rest: bytes.subarray(n), resolve, reject };
    });
  }

  /** The socket can take more: continue the pending write. */
  drain(): void {
    const p = this.#pending;
    if (!p) return;
    const n = this.#socket.write(p.rest);
    if (n < 0) {
      this.#pending = undefined;
      p.reject(new Error("socket closed"));
    } else if (n === p.rest.length) {
      this.#pending = undefined;
      p.resolve();
    } else {
      p.rest = p.rest.subarray(n);
    }
  }

  data(chunk: Uint8Array): void {
    this.#handlers.onData(chunk);
  }

  /** Bun reported the socket closed. */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(new Error("socket closed"));
    this.#resolveClosed();
    this.#handlers.onClose();
  }

  close(): Promise<void> {
    if (!this.#closed) this.#socket.terminate();
    return this.#whenClosed;
  }
}

/** Socket handlers shared by listening and dialled sockets; per-socket state lives in `socket.data`. */
const handlers: Bun.SocketHandler<SocketState, "uint8array"> = {
  binaryType: "uint8array",
  open(socket) {
    socket.data.conn = new BunConnection(socket, socket.data.handlersFor);
  },
  data(socket, chunk) {
    socket.data.conn?.data(chunk);
  },
  drain(socket) {
    socket.data.conn?.drain();
  },
  close(socket) {
    socket.data.conn?.closed();
  },
  error(socket) {
    // A handler threw (a bug) or the socket failed: drop the connection rather than continue in an unknown state.
    socket.terminate();
  },
  connectError() {
    // Reported through the rejected `Bun.connect` promise.
  },
};

/** A Bun socket server as a {@link StreamListener}. */
function listenerOf(server: Bun.TCPSocketListener<SocketState>): StreamListener {
  return {
    host: server.hostname,
    port: server.port,
    close(): Promise<void> {
      server.stop(true);
      return Promise.resolve();
    },
  };
}

/**
 * Handlers for TLS sockets: the connection exists only once the handshake
 * verified the peer (`open` comes before the handshake and is ignored).
 */
const tlsHandlers: Bun.SocketHandler<SocketState, "uint8array"> = {
  ...handlers,
  open() {},
  handshake(socket, success, authorizationError) {
    const state = socket.data;
    if (!success || authorizationError) {
      const reason = `TLS: ${authorizationError?.message ?? "handshake failed"}`;
      state.onEvent?.({ type: "handshake-rejected", reason, from: undefined });
      state.verified?.(new Error(reason));
      socket.terminate();
      return;
    }
    const identity = certificateIdentity(socket.getPeerCertificate()?.subjectaltname);
    state.conn = new BunConnection(socket, state.handlersFor, identity);
    state.verified?.(undefined);
  },
  close(socket) {
    socket.data.verified?.(new Error("connection closed during the TLS handshake"));
    socket.data.conn?.closed();
  },
};

/**
 * The {@link StreamDriver} for mutual TLS on Bun. Refused handshakes (no
 * certificate, another CA, a server that is not the node dialled) are
 * reported to `onEvent`.
 */
export function bunTlsDriver(options: PeerTlsOptions, onEvent?: (e: TransportEvent) => void): StreamDriver {
  const base = { cert: options.cert, key: options.key, ca: caList(options.ca), rejectUnauthorized: true };
  return {
    authenticates: true,
    listen(host, port, accept): Promise<StreamListener> {
      const server = Bun.listen<SocketState>({
        hostname: host,
        port,
        tls: { ...base, requestCert: true },
        data: { handlersFor: accept, onEvent },
        socket: {
          ...(tlsHandlers as unknown as Bun.SocketHandler<SocketState>),
          open(socket) {
            socket.data = { handlersFor: accept, onEvent };
          },
        },
      });
      return Promise.resolve(listenerOf(server));
    },
    async dial(host, port, streamHandlers, peer): Promise<StreamConnection> {
      let verified!: (error: Error | undefined) => void;
      const done = new Promise<Error | undefined>((resolve) => (verified = resolve));
      const state: SocketState = { handlersFor: () => streamHandlers, verified, onEvent };
      await Bun.connect<SocketState>({
        hostname: host,
        port,
        // The certificate is checked for the node id, wherever the node lives.
        tls: { ...base, serverName: peer },
        data: state,
        socket: tlsHandlers as unknown as Bun.SocketHandler<SocketState>,
      });
      const error = await done;
      state.verified = undefined;
      if (error !== undefined || !state.conn) throw error ?? new Error(`TLS connection to ${host}:${port} failed`);
      return state.conn;
    },
  };
}

/** The {@link StreamDriver} for Bun. */
export const bunStreamDriver: StreamDriver = {
  listen(host, port, accept): Promise<StreamListener> {
    const server = Bun.listen<SocketState>({
      hostname: host,
      port,
      // Each accepted socket gets its own state object in `open`; this one is only the template.
      data: { handlersFor: accept },
      socket: {
        ...(handlers as unknown as Bun.SocketHandler<SocketState>),
        open(socket) {
          socket.data = { handlersFor: accept };
          socket.data.conn = new BunConnection(socket, accept);
        },
      },
    });
    return Promise.resolve(listenerOf(server));
  },
  async dial(host, port, streamHandlers): Promise<StreamConnection> {
    const state: SocketState = { handlersFor: () => streamHandlers };
    await Bun.connect<SocketState>({
      hostname: host,
      port,
      data: state,
      socket: handlers as unknown as Bun.SocketHandler<SocketState>,
    });
    if (!state.conn) throw new Error(`connection to ${host}:${port} closed before it opened`);
    return state.conn;
  },
};

/**
 * Raft peer transport over TCP on Bun. Listens on `opts.listen`
 * (`"host:port"`, port 0 for any); call {@link BunTcpTransport.start} first.
 * With `opts.tls`, peers talk mutual TLS.
 */
export class BunTcpTransport extends StreamTransport {
  /**
   * Create the transport; nothing is bound until `start()`.
   *
   * @param opts transport options plus the listen address
   */
  constructor(opts: StreamTransportOptions) {
    super(opts.tls ? bunTlsDriver(opts.tls, opts.onEvent) : bunStreamDriver, opts);
  }
}
