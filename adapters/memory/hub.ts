/**
 * An in-process network connecting several nodes, for tests and examples.
 * Delivery is asynchronous (a microtask later), in order per sender and
 * receiver. Messages to a node that is not attached (stopped) are dropped and
 * reported to the sender as unreachable, as a failed connection would be;
 * messages to or from a node cut off by {@link MemoryHub.isolate} vanish
 * silently.
 *
 * @module
 */

import type { Message, NodeId } from "../../core/types.ts";
import type { TransportPort } from "../../effects/ports/mod.ts";

interface Endpoint {
  onMessage: (m: Message) => void;
  onUnreachable: (peer: NodeId) => void;
}

/** Connects the in-memory transports of one process. */
export class MemoryHub {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly isolated = new Set<NodeId>();
  /** Called synchronously for every message a node sends, before delivery (for tests that check ordering). */
  onSend: ((message: Message) => void) | undefined = undefined;
  /** Messages for which this returns true are lost on the wire, silently (for tests of lost answers). */
  drop: ((message: Message) => boolean) | undefined = undefined;
  /** Replaces a message on the wire by what it returns (for tests of data damaged in transit). */
  tamper: ((message: Message) => Message) | undefined = undefined;
  /** Messages delivered so far. */
  delivered = 0;

  /** A fresh transport for node `id`; it is attached while open. */
  transport(id: NodeId): TransportPort {
    const endpoint: Endpoint = { onMessage: () => {}, onUnreachable: () => {} };
    let closed = false;
    this.endpoints.set(id, endpoint);
    return {
      send: (message) => {
        if (closed) return false;
        this.onSend?.(message);
        const target = this.endpoints.get(message.to);
        if (!target) {
          // Like a real transport whose connection attempt fails: the sender hears about it.
          queueMicrotask(() => {
            if (!closed) endpoint.onUnreachable(message.to);
          });
          return true;
        }
        // Lost on the wire, silently.
        if (this.isolated.has(id) || this.isolated.has(message.to) || this.drop?.(message)) return true;
        const arriving = this.tamper?.(message) ?? message;
        queueMicrotask(() => {
          if (this.endpoints.get(message.to) !== target || this.isolated.has(message.to)) return;
          this.delivered++;
          target.onMessage(arriving);
        });
        return true;
      },
      onMessage: (handler) => {
        endpoint.onMessage = handler;
      },
      onUnreachable: (handler) => {
        endpoint.onUnreachable = handler;
      },
      setPeers: () => {},
      close: () => {
        closed = true;
        if (this.endpoints.get(id) === endpoint) this.endpoints.delete(id);
        return Promise.resolve();
      },
    };
  }

  /** Cuts `id` off the network (both directions) until {@link MemoryHub.heal}. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Reconnects every isolated node. */
  heal(): void {
    this.isolated.clear();
  }
}
