/**
 * The receiving half shared by the TCP and HTTP transports: turns the bytes
 * of one inbound connection (or request body) into validated messages.
 *
 * @module
 */

import { DecodeError, decodeMessage } from "../../core/codec/mod.ts";
import type { Message, NodeId } from "../../core/types.ts";
import { checkHandshake, decodeHandshake, FrameDecoder, FrameTooLargeError, HandshakeError } from "./framing.ts";
import type { PeerIdentity, TransportEvent, TransportStats } from "./transport.ts";

/** What an inbound session needs from its transport. */
export interface InboundContext {
  /** Our cluster id. */
  readonly clusterId: string;
  /** This node. */
  readonly self: NodeId;
  /** Largest frame accepted. */
  readonly maxFrameBytes: number;
  /** Whether `id` is in the current address book. */
  isKnownPeer(id: NodeId): boolean;
  /** Hand a validated message to the receive handler. */
  deliver(message: Message): void;
  /** Counters to update. */
  readonly stats: TransportStats;
  /** Event observer. */
  readonly onEvent: (event: TransportEvent) => void;
  /** Refuse connections that did not authenticate below the handshake (TLS or shared-secret mode). */
  readonly requireIdentity?: boolean;
}

/**
 * The sender a handshake claims must be one the connection authenticated as
 * (certificate names, secret-handshake id); without an identity the claim is
 * only accepted when the transport does not authenticate. Throws a forbidden
 * {@link HandshakeError}.
 */
export function checkIdentity(claimed: NodeId, identity: PeerIdentity | undefined, required: boolean): void {
  if (identity === undefined) {
    if (required) throw new HandshakeError(`${JSON.stringify(claimed)} did not authenticate`, true);
    return;
  }
  if (!identity.names.includes(claimed)) {
    const proved = identity.via === "tls" ? "its certificate names" : "it proved the secret as";
    throw new HandshakeError(
      `handshake claims ${JSON.stringify(claimed)} but ${proved} ${
        identity.names.map((n) => JSON.stringify(n)).join(", ") || "no node id"
      }`,
      true,
    );
  }
}

/**
 * How a session ended up: `ok` to keep reading, `bad-frame` (oversized,
 * undecodable, malformed handshake: HTTP 400) or `forbidden` (another
 * cluster, unknown sender: HTTP 403). Anything but `ok` closes the connection.
 */
export type InboundStatus = "ok" | "bad-frame" | "forbidden";

/**
 * One inbound connection: expects the handshake frame first, then messages.
 * Messages whose `from` is not the handshake's sender (or no longer in the
 * address book) or whose `to` is not us are dropped and counted; the
 * connection stays up, because a single stray message is not an attack.
 */
export class InboundSession {
  readonly #ctx: InboundContext;
  readonly #decoder: FrameDecoder;
  readonly #identity: PeerIdentity | undefined;
  #peer: NodeId | undefined;
  #status: InboundStatus = "ok";

  /**
   * Start a session for one connection or request body.
   *
   * @param ctx the transport's receive context
   * @param identity who the connection authenticated as, if it did (the handshake must claim one of its names)
   */
  constructor(ctx: InboundContext, identity?: PeerIdentity) {
    this.#ctx = ctx;
    this.#identity = identity;
    this.#decoder = new FrameDecoder(ctx.maxFrameBytes);
  }

  /** The sender named in the handshake, once it was accepted. */
  get peer(): NodeId | undefined {
    return this.#peer;
  }

  /** Whether the stream ended on a frame boundary (HTTP bodies must). */
  get idle(): boolean {
    return this.#decoder.idle;
  }

  /** Feed received bytes; delivers the messages they complete. Once not `ok`, stays so and ignores input. */
  push(chunk: Uint8Array): InboundStatus {
    if (this.#status !== "ok") return this.#status;
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameTooLargeError)) throw err;
      return this.#fail("bad-frame", err.message);
    }
    for (const frame of frames) {
      if (this.#peer === undefined) {
        if (!this.#acceptHandshake(frame)) return this.#status;
        continue;
      }
      let message: Message;
      try {
        message = decodeMessage(frame);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        return this.#fail("bad-frame", err.message);
      }
      this.#receive(this.#peer, message);
    }
    return this.#status;
  }

  #acceptHandshake(frame: Uint8Array): boolean {
    let from: NodeId | undefined;
    try {
      const h = decodeHandshake(frame);
      from = h.from;
      checkHandshake(h, this.#ctx.clusterId, (id) => this.#ctx.isKnownPeer(id));
      checkIdentity(h.from, this.#identity, this.#ctx.requireIdentity === true);
      this.#peer = h.from;
      return true;
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      this.#status = err.forbidden ? "forbidden" : "bad-frame";
      this.#ctx.stats.rejectedHandshakes++;
      this.#ctx.onEvent({ type: "handshake-rejected", reason: err.reason, from });
      return false;
    }
  }

  #receive(peer: NodeId, message: Message): void {
    const ctx = this.#ctx;
    const reason = message.from !== peer
      ? `sender ${message.from} differs from handshake sender ${peer}`
      : message.to !== ctx.self
      ? `addressed to ${message.to}, not ${ctx.self}`
      : !ctx.isKnownPeer(peer)
      ? `sender ${peer} left the address book`
      : undefined;
    if (reason !== undefined) {
      ctx.stats.droppedMessages++;
      ctx.onEvent({ type: "message-dropped", reason, from: message.from, to: message.to });
      return;
    }
    ctx.deliver(message);
  }

  #fail(status: InboundStatus, reason: string): InboundStatus {
    this.#status = status;
    this.#ctx.stats.badFrames++;
    this.#ctx.onEvent({ type: "bad-frame", reason });
    return status;
  }
}
