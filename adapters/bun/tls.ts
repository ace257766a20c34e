/// <reference types="bun" />
/**
 * TLS client options on Bun: `fetch` and `WebSocket` take a `tls` object
 * (trust anchors, client certificate), so peers' HTTPS servers can be
 * verified against a private CA. Mutual TLS between peers over TCP lives in
 * `tcp.ts` (`bunTlsDriver`).
 *
 * @module
 */

import { caList, type ClientTlsOptions, type TlsClient } from "../transport/certificates.ts";

/** `fetch` and WebSocket with Bun's `tls` option set from these TLS options (see {@link TlsClient}). */
export function bunTlsClient(options: ClientTlsOptions): TlsClient {
  const tls = {
    ...(options.ca === undefined ? {} : { ca: caList(options.ca) }),
    ...(options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : {}),
  };
  return {
    fetch: (url, init) => fetch(url, { ...init, tls } as RequestInit),
    webSocket: (url) => new WebSocket(url, { tls } as unknown as string[]),
    close: () => {},
  };
}
