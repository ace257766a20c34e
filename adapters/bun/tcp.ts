/// <reference types="bun" />
/**
 * The TCP peer transport on Bun's sockets (`Bun.listen` / `Bun.connect`).
 *
 * @module
 */

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

  constructor(socket: Bun.Socket<SocketState>, handlersFor: (c: StreamConnection) => StreamHandlers) {
    this.#socket = socket;
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
    return Promise.resolve({
      host: server.hostname,
      port: server.port,
      close(): Promise<void> {
        server.stop(true);
        return Promise.resolve();
      },
    });
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
 */
export class BunTcpTransport extends StreamTransport {
  /**
   * Create the transport; nothing is bound until `start()`.
   *
   * @param opts transport options plus the listen address
   */
  constructor(opts: StreamTransportOptions) {
    super(bunStreamDriver, opts);
  }
}
