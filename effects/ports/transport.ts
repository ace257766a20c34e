/**
 * The transport port: how a node's messages travel to its peers, best effort and never blocking.
 *
 * As effect 4's own modules do, the port keeps its interface, its service
 * and its layers together: the Promise-style interface `createNode` takes,
 * the effect service the interpreter runs on (function-style
 * `Context.Service`, since class-style services fail JSR's no-slow-types
 * check), and the conversion and Layer between them.
 *
 * @module
 */

import { Context, Effect, Layer } from "effect";
import type { Message, NodeId } from "../../core/types.ts";
import { closing } from "./attempt.ts";

/**
 * Moves messages between nodes, best effort and never blocking: `send`
 * returns false instead of waiting when a peer is unknown or its queue is
 * full (plank's `PeerTransport`s fit). The node owns the address book: it
 * calls `setPeers` with the full book whenever that changes.
 */
export interface TransportPort {
  /** Enqueues `message`; false when it cannot be delivered. */
  send(message: Message): boolean;
  /** Installs the receive handler. */
  onMessage(handler: (message: Message) => void): void;
  /** Installs the unreachable-peer handler. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Replaces the address book (`"host:port"` per peer, this node excluded). */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Stops the transport; called when the node stops. */
  close(): Promise<void>;
}

/** Callbacks a node installs on its transport. */
export interface TransportHandlers {
  /** A message for this node arrived. */
  onMessage(message: Message): void;
  /** A peer could not be reached (queue full, connection lost). */
  onUnreachable(peer: NodeId): void;
}

/**
 * Moves messages between nodes, best effort and never blocking: `send`
 * returns false instead of waiting when a peer is unknown or its queue is full.
 */
export interface Transport {
  /** Enqueues `message` for delivery to `message.to`. */
  send(message: Message): boolean;
  /** Installs the receive callbacks (once, when the node starts). */
  listen(handlers: TransportHandlers): void;
  /** Replaces the address book (`"host:port"` per node) after membership changes. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
}
/** The {@link Transport} service key. */
export const Transport: Context.Service<Transport, Transport> = Context.Service<Transport>("@plank/raft/Transport");

/** The {@link Transport} service over a Promise port. */
export function transportFromPort(port: TransportPort): Transport {
  return {
    send: (message) => port.send(message),
    listen: (handlers) => {
      port.onMessage((m) => handlers.onMessage(m));
      port.onUnreachable((peer) => handlers.onUnreachable(peer));
    },
    setPeers: (peers) => port.setPeers(peers),
  };
}

/** A Layer providing {@link Transport} from a port; the transport is closed with the layer's scope. */
export function transportLayer(port: TransportPort): Layer.Layer<Transport> {
  return Layer.effect(
    Transport,
    Effect.acquireRelease(Effect.succeed(transportFromPort(port)), () => closing(() => port.close())),
  );
}
