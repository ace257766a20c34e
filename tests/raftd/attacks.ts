/**
 * The outsider's attack scripts from issue 11, as a test can run them: only
 * what `GET /status` shows (cluster id, member ids, term, commit) and the
 * public wire format, sent over every path a peer could use (the WebSocket
 * stream, the POST fallback, the mTLS peer port over TCP or HTTP/2).
 *
 * @module
 */

import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { encodeMessage } from "../../core/codec/mod.ts";
import type { Message } from "../../core/types.ts";
import { concatBytes, encodeFrame, handshakeFrame } from "../../adapters/transport/framing.ts";
import { encodeCommand } from "../../examples/raftd/kv.ts";
import type { Status } from "./harness.ts";

const frame = (m: Message) => encodeFrame(encodeMessage(m));

/**
 * A stream claiming to come from the leader: handshake, then an
 * AppendEntries at commit + 1 in the current term carrying `PUT key=value`
 * and committing it (the follower's "prevIndex ≤ commit" shortcut accepts any
 * prevTerm there).
 */
export function forgedAppend(target: Status, key: string, value: string): Uint8Array {
  const leader = target.leader!;
  const data = encodeCommand({ op: "put", key, value: new TextEncoder().encode(value) });
  const index = target.commit + 1;
  return concatBytes([
    handshakeFrame(target.cluster, leader),
    frame({
      type: "AppendEntries",
      group: 0,
      from: leader,
      to: target.id,
      term: target.term,
      prevIndex: target.commit,
      prevTerm: target.term,
      entries: [{ index, term: target.term, kind: "command", data, config: undefined }],
      commit: index,
      seq: 0,
    }),
  ]);
}

/** A vote request from member `from` to `target` at `term` (with the transfer flag, which skips leader stickiness). */
export function forgedVote(target: Status, from: string, term: number): Uint8Array {
  return concatBytes([
    handshakeFrame(target.cluster, from),
    frame({
      type: "RequestVote",
      group: 0,
      from,
      to: target.id,
      term,
      preVote: false,
      lastIndex: target.commit + 1000,
      lastTerm: target.term,
      transfer: true,
    }),
  ]);
}

/** A TimeoutNow "from the leader" telling `target` to campaign at once. */
export function forgedTimeoutNow(target: Status): Uint8Array {
  return concatBytes([
    handshakeFrame(target.cluster, target.leader!),
    frame({
      type: "TimeoutNow",
      group: 0,
      from: target.leader!,
      to: target.id,
      term: target.term,
      candidate: target.id,
    }),
  ]);
}

/** What a raw connection saw: whether the server closed it, and anything it sent back. */
export interface RawResult {
  /** The server closed the connection (or refused the upgrade) within the wait. */
  readonly closedByServer: boolean;
  /** Bytes the server sent. */
  readonly received: number;
}

/** Send `bytes` over a WebSocket to `address`'s `/raft/stream`, as a peer would; wait up to `ms`. */
export function overStream(address: string, bytes: Uint8Array, ms = 1_500): Promise<RawResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${address}/raft/stream`);
    ws.binaryType = "arraybuffer";
    let received = 0;
    const timer = setTimeout(() => {
      ws.close();
      resolve({ closedByServer: false, received });
    }, ms);
    ws.onopen = () => ws.send(bytes as Uint8Array<ArrayBuffer>);
    ws.onmessage = (e) => received += (e.data as ArrayBuffer).byteLength;
    ws.onclose = () => {
      clearTimeout(timer);
      resolve({ closedByServer: true, received });
    };
    ws.onerror = () => {};
  });
}

/** POST `bytes` to `address`'s `/raft/messages`; the status code. */
export async function overPost(address: string, bytes: Uint8Array): Promise<number> {
  const res = await fetch(`http://${address}/raft/messages`, {
    method: "POST",
    body: bytes as Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return res.status;
}

/** Write `bytes` on a raw TCP connection (or TLS with `options`) to `host:port`; wait up to `ms`. */
export function overSocket(
  host: string,
  port: number,
  bytes: Uint8Array,
  options?: tls.ConnectionOptions,
  ms = 1_500,
): Promise<RawResult> {
  return new Promise((resolve) => {
    let received = 0;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ closedByServer, received });
    };
    const socket = options
      ? tls.connect({ host, port, ...options }, () => socket.write(bytes))
      : net.connect(port, host, () => socket.write(bytes));
    const timer = setTimeout(() => finish(false), ms);
    socket.on("data", (d: Uint8Array) => received += d.length);
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

/**
 * Open an HTTP/2 session to `host:port` (TLS with `options`: CA, optional
 * client certificate, server name) and POST `bytes` on `/raft/stream`, as a
 * peer of the HTTP transport's mTLS mode would; wait up to `ms`.
 * `received` counts response bytes; the server closing the stream or the
 * session (or refusing the handshake) counts as closed.
 */
export function overHttp2(
  host: string,
  port: number,
  bytes: Uint8Array,
  options: http2.SecureClientSessionOptions,
  ms = 1_500,
): Promise<RawResult & { readonly status: number | undefined }> {
  return new Promise((resolve) => {
    let received = 0;
    let status: number | undefined;
    let done = false;
    const session = http2.connect(`https://${host}:${port}`, options);
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ closedByServer, received, status });
    };
    const timer = setTimeout(() => finish(false), ms);
    session.on("error", () => finish(true));
    session.on("close", () => finish(true));
    const stream = session.request({ ":method": "POST", ":path": "/raft/stream" }, { endStream: false });
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (d: Uint8Array) => received += d.length);
    stream.on("error", () => finish(true));
    stream.on("close", () => finish(true));
    stream.write(bytes);
  });
}

/** Send an HTTP/1.1 request with a raw `Host` header value; the status line. */
export function rawHostRequest(port: number, host: string): Promise<string> {
  return new Promise((resolve) => {
    let buf = "";
    const s = net.connect(port, "127.0.0.1", () => {
      s.write(`GET /status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    const timer = setTimeout(() => (s.destroy(), resolve(`no answer: ${buf.slice(0, 40)}`)), 5_000);
    s.on("data", (d: Uint8Array) => buf += new TextDecoder().decode(d));
    s.on("close", () => (clearTimeout(timer), resolve(buf.split("\r\n")[0]!)));
    s.on("error", () => {});
  });
}
