/**
 * Mutual TLS between peers, the parts both runtimes share: the options (PEM
 * text) and the rule that binds a node id to a certificate. The TLS itself
 * is the runtime's (`node:tls` on Deno, `Bun.listen`/`Bun.connect` on Bun).
 *
 * The rule: a certificate speaks for the node ids in its DNS subject
 * alternative names. The dialer asks the runtime to verify the server's
 * certificate for the peer's node id (the TLS server name is the node id,
 * not the address), and the accepting side checks that the node the Raft
 * handshake claims is among the client certificate's DNS names. So a CA
 * issuing peer certificates must give each node a certificate naming only
 * that node's id.
 *
 * @module
 */

import type { PeerIdentity } from "./transport.ts";

/** Mutual TLS for peer connections (PEM text). Every peer's certificate must be signed by `ca`. */
export interface PeerTlsOptions {
  /** This node's certificate (chain), whose DNS subject alternative name is this node's id. */
  readonly cert: string;
  /** Its private key. */
  readonly key: string;
  /** The CA certificate(s) that signed the peers' certificates; nothing else is trusted. */
  readonly ca: string | readonly string[];
}

/**
 * The identity of a verified peer certificate, from its `subjectaltname`
 * as `getPeerCertificate()` reports it (`"DNS:a, IP Address:127.0.0.1"`).
 */
export function certificateIdentity(subjectaltname: string | undefined): PeerIdentity {
  const names: string[] = [];
  for (const part of (subjectaltname ?? "").split(", ")) {
    if (part.startsWith("DNS:")) names.push(part.slice(4));
  }
  return { names, via: "tls" };
}

/** `ca` as the list the TLS options take. */
export function caList(ca: string | readonly string[]): string[] {
  return typeof ca === "string" ? [ca] : [...ca];
}

/** How this node reaches other nodes' HTTPS servers (PEM text): whom to trust, and optionally a client certificate. */
export interface ClientTlsOptions {
  /** CA certificate(s) to trust in addition to the runtime's roots. */
  readonly ca?: string | readonly string[];
  /** A client certificate to present, with `key`. */
  readonly cert?: string;
  /** The client certificate's private key. */
  readonly key?: string;
}

/**
 * `fetch` and the WebSocket client configured with {@link ClientTlsOptions},
 * as each runtime builds them (Deno: `Deno.createHttpClient`; Bun: the `tls`
 * option of `fetch` and `WebSocket`). `close` releases what they hold.
 */
export interface TlsClient {
  /** `fetch` with these TLS options. */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** Opens a WebSocket with these TLS options. */
  readonly webSocket: (url: string) => WebSocket;
  /** Release the client (Deno's HTTP client is a resource). */
  close(): void;
}
