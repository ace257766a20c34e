/**
 * Shared-secret peer authentication for clusters without certificates: a
 * challenge-response handshake that never sends the secret, then records
 * that each carry a MAC under a key derived for that one connection. All
 * cryptography is Web Crypto (`crypto.subtle`: HKDF and HMAC-SHA-256).
 *
 * The handshake, in length-prefixed frames (`framing.ts`), on a connection
 * the client (the sender of Raft traffic) opened to the server:
 *
 * ```
 * C → S  HELLO      "PLKS" v1 type=1, nonce_c (32 B), cluster id, client id, server id
 * S → C  CHALLENGE  type=2, nonce_s (32 B), mac_s = HMAC(K_auth, "plank server proof" ‖ T)
 * C → S  PROOF      type=3, mac_c = HMAC(K_auth, "plank client proof" ‖ T)
 * S → C  ACCEPT     type=5 (only then does the client send records)
 * either REFUSE     type=4, a short reason ("secret mismatch", ...), then close
 * ```
 *
 * where `T = HELLO ‖ nonce_s` is the transcript (cluster id, both node ids
 * and both fresh nonces), and `K_auth = HKDF(secret, "plank-raft secret v1",
 * "handshake")`. The server proves the secret first (the client checks
 * `mac_s` before revealing anything), the labels keep one side's proof from
 * being replayed as the other's, and fresh nonces from both sides make any
 * recorded handshake useless on a new connection.
 *
 * After PROOF, the client sends records `[u64 seq][data][HMAC(K_c2s, seq ‖
 * data)]`, `K_c2s = HKDF(secret, nonce_c ‖ nonce_s, "plank records c2s" ‖
 * T)`. The sequence number must count up from 0, so records cannot be
 * replayed, reordered, dropped from the middle or moved to another
 * connection; a bad MAC closes the connection. The server never sends data
 * after the handshake: Raft streams are one-way.
 *
 * What it does not give: confidentiality (run it over TLS for that), and any
 * binding of a node id to a particular machine: whoever holds the secret can
 * claim any node id. See SECURITY.md.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import type { NodeId } from "../../core/types.ts";
import {
  concatBytes,
  encodeFrame,
  FRAME_HEADER_BYTES as FRAME_HEADER,
  FrameDecoder,
  FrameTooLargeError,
  HandshakeError,
} from "./framing.ts";
import type { StreamConnection, StreamDriver, StreamHandlers } from "./stream.ts";
import { checkIdentity } from "./inbound.ts";
import { MIN_SECRET_BYTES, type PeerIdentity, type TransportEvent } from "./transport.ts";

const MAGIC = [0x50, 0x4c, 0x4b, 0x53]; // "PLKS"
const VERSION = 1;
const HELLO = 1;
const CHALLENGE = 2;
const PROOF = 3;
const REFUSE = 4;
const ACCEPT = 5;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
const SEQ_BYTES = 8;
/** Largest handshake frame (ids and cluster id are at most 255 bytes each). */
const MAX_HANDSHAKE_FRAME = 1024;
/** Largest data in one record; a bigger write is split into several. */
export const MAX_RECORD_DATA = 1 << 20;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const SERVER_LABEL = utf8.encode("plank server proof\0");
const CLIENT_LABEL = utf8.encode("plank client proof\0");
const RECORDS_LABEL = utf8.encode("plank records c2s\0");

/** The shared-secret handshake failed: a secret mismatch, another cluster, or a malformed or late message. */
export class SecretHandshakeError extends Error {
  /** Discriminator. */
  readonly _tag: "SecretHandshakeError" = "SecretHandshakeError";
  /** What went wrong, for a log line. */
  readonly reason: string;

  /**
   * Describe a failed handshake.
   *
   * @param reason what went wrong
   */
  constructor(reason: string) {
    super(`shared-secret handshake failed: ${reason}`);
    this.name = "SecretHandshakeError";
    this.reason = reason;
  }
}

/** Options of a {@link SecretChannel}. */
export interface SecretChannelOptions {
  /** Our cluster id (bound into the transcript; a peer of another cluster is refused). */
  readonly clusterId: string;
  /** This node. */
  readonly self: NodeId;
  /** The shared secret, at least 16 bytes. */
  readonly secret: Uint8Array;
  /** How long a handshake may take before the connection is closed. Default 5 s. */
  readonly handshakeTimeoutMs?: number;
  /** Largest number of received bytes waiting for their MAC check before the connection is closed. Default 128 MiB. */
  readonly maxPendingBytes?: number;
  /** Where refusals are reported (for a log line on both sides). */
  readonly onEvent?: (event: TransportEvent) => void;
}

interface Keys {
  readonly master: CryptoKey;
  readonly auth: CryptoKey;
}

const hmac = { name: "HMAC", hash: "SHA-256", length: 256 } as const;

function hkdf(salt: Uint8Array, info: Uint8Array): Parameters<typeof crypto.subtle.deriveKey>[0] {
  return {
    name: "HKDF",
    hash: "SHA-256",
    salt: salt as Uint8Array<ArrayBuffer>,
    info: info as Uint8Array<ArrayBuffer>,
  };
}

function importMaster(secret: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", secret as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveKey", "deriveBits"]);
}

/**
 * An HMAC-SHA-256 key for one `purpose`, derived from the shared secret
 * with HKDF (salt `"plank-raft secret v1"`, info `purpose`): keys for
 * different purposes are independent, so a MAC made for one (the peer
 * handshake uses `"handshake"`) is worthless for another (raftd's join
 * proofs).
 */
export async function secretKey(secret: Uint8Array, purpose: string): Promise<CryptoKey> {
  return await deriveHmac(await importMaster(secret), utf8.encode("plank-raft secret v1"), utf8.encode(purpose));
}

function deriveHmac(master: CryptoKey, salt: Uint8Array, info: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.deriveKey(hkdf(salt, info), master, hmac, false, ["sign", "verify"]);
}

async function importKeys(secret: Uint8Array): Promise<Keys> {
  return { master: await importMaster(secret), auth: await secretKey(secret, "handshake") };
}

async function sign(key: CryptoKey, ...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, concatBytes(parts) as Uint8Array<ArrayBuffer>));
}

function verify(key: CryptoKey, mac: Uint8Array, ...parts: Uint8Array[]): Promise<boolean> {
  return crypto.subtle.verify(
    "HMAC",
    key,
    mac as Uint8Array<ArrayBuffer>,
    concatBytes(parts) as Uint8Array<ArrayBuffer>,
  );
}

/**
 * The connection's record key, as raw bytes for {@link RecordMac}: derived
 * with Web Crypto's HKDF like every other key here.
 */
async function recordKey(
  keys: Keys,
  transcript: Uint8Array,
  nonceC: Uint8Array,
  nonceS: Uint8Array,
): Promise<RecordMac> {
  const raw = await crypto.subtle.deriveBits(
    hkdf(concatBytes([nonceC, nonceS]), concatBytes([RECORDS_LABEL, transcript])),
    keys.master,
    256,
  );
  return new RecordMac(new Uint8Array(raw));
}

/**
 * HMAC-SHA-256 of records, with the runtime's synchronous `node:crypto`
 * (native in Deno and Bun). Why not `crypto.subtle` here as in the
 * handshake: it is asynchronous, and a MAC per record in both directions
 * cost ~170 µs per peer round trip on Deno (bench/transport.ts and
 * BENCHMARKS.md); the synchronous HMAC costs a few µs and keeps records in
 * order without a queue of pending checks.
 */
class RecordMac {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /** The MAC of `data`, written into `out` (32 bytes). */
  sign(data: Uint8Array, out: Uint8Array): void {
    out.set(createHmac("sha256", this.#key).update(data).digest());
  }

  /** Whether `mac` is the MAC of `data` (compared in constant time). */
  verify(data: Uint8Array, mac: Uint8Array): boolean {
    return mac.length === MAC_BYTES && timingSafeEqual(createHmac("sha256", this.#key).update(data).digest(), mac);
  }
}

// ---------------------------------------------------------------------------
// Handshake messages
// ---------------------------------------------------------------------------

interface Hello {
  readonly nonce: Uint8Array;
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
}

function shortString(s: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > 255) throw new RangeError(`${JSON.stringify(s.slice(0, 20))}… is longer than 255 bytes`);
  return concatBytes([Uint8Array.of(b.length), b]);
}

function encodeHello(h: Hello): Uint8Array {
  return concatBytes([
    Uint8Array.from(MAGIC),
    Uint8Array.of(VERSION, HELLO),
    h.nonce,
    shortString(h.clusterId),
    shortString(h.from),
    shortString(h.to),
  ]);
}

function decodeHello(b: Uint8Array): Hello {
  if (b.length < 6 || MAGIC.some((m, i) => b[i] !== m)) throw new SecretHandshakeError("not a shared-secret hello");
  if (b[4] !== VERSION) throw new SecretHandshakeError(`unsupported handshake version ${b[4]}`);
  if (b[5] !== HELLO) throw new SecretHandshakeError(`expected a hello, got message type ${b[5]}`);
  let at = 6;
  const take = (n: number): Uint8Array => {
    if (b.length - at < n) throw new SecretHandshakeError("truncated hello");
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  const str = (): string => {
    try {
      return utf8Strict.decode(take(take(1)[0]));
    } catch (e) {
      if (e instanceof SecretHandshakeError) throw e;
      throw new SecretHandshakeError("hello string is not UTF-8");
    }
  };
  const nonce = take(NONCE_BYTES);
  const hello = { nonce, clusterId: str(), from: str(), to: str() };
  if (at !== b.length) throw new SecretHandshakeError("trailing bytes after hello");
  return hello;
}

function refuseFrame(reason: string): Uint8Array {
  return encodeFrame(concatBytes([Uint8Array.of(REFUSE), utf8.encode(reason.slice(0, 200))]));
}

/** The reason in a REFUSE frame, quoted and cut short: it comes from the other side. */
function refusedBecause(b: Uint8Array): string {
  let text: string;
  try {
    text = utf8Strict.decode(b.subarray(1, 201));
  } catch {
    text = "(unreadable reason)";
  }
  return JSON.stringify(text);
}

// ---------------------------------------------------------------------------
// The channel
// ---------------------------------------------------------------------------

/**
 * Shared-secret authentication for one transport: wraps a driver (TCP,
 * WebSocket) so that it dials and accepts only peers that prove the secret.
 * {@link SecretChannel.accept} and {@link SecretChannel.dial} do the same
 * over a single connection, for transports that accept outside a driver.
 */
export class SecretChannel {
  readonly #opts: SecretChannelOptions;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  #keys: Promise<Keys> | undefined;

  /**
   * Validate the options; keys are derived on first use.
   *
   * @param opts cluster, node and secret
   */
  constructor(opts: SecretChannelOptions) {
    if (opts.secret.length < MIN_SECRET_BYTES) {
      throw new RangeError(`the shared secret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    this.#opts = opts;
    this.#timeoutMs = opts.handshakeTimeoutMs ?? 5_000;
    this.#maxPending = opts.maxPendingBytes ?? 128 * 1024 * 1024;
  }

  #keysOnce(): Promise<Keys> {
    return this.#keys ??= importKeys(this.#opts.secret);
  }

  #report(reason: string, from: NodeId | undefined): void {
    this.#opts.onEvent?.({ type: "handshake-rejected", reason, from });
  }

  /** `inner` with every connection authenticated by the secret (and `identity` set on accepted ones). */
  driver(inner: StreamDriver): StreamDriver {
    return {
      authenticates: true,
      listen: (host, port, accept) => inner.listen(host, port, (raw) => this.accept(raw, accept)),
      dial: (host, port, handlers, peer) => this.dial((h) => inner.dial(host, port, h, peer), peer, handlers),
    };
  }

  /**
   * The accepting side over one raw connection: returns the handlers for its
   * raw bytes and calls `accept` with the authenticated connection (its
   * `identity` names the peer) once the peer has proved the secret.
   */
  accept(raw: StreamConnection, accept: (conn: StreamConnection) => StreamHandlers): StreamHandlers {
    let decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME);
    let state: "hello" | "proof" | "open" | "closed" = "hello";
    let work: Promise<void> = Promise.resolve();
    let pending = 0;
    let from: NodeId | undefined;
    let transcript: Uint8Array | undefined;
    let nonces: [Uint8Array, Uint8Array] | undefined;
    let key: RecordMac | undefined;
    let seq = 0;
    let handlers: StreamHandlers | undefined;
    const timer = setTimeout(() => fail("handshake not completed in time", false), this.#timeoutMs);

    const fail = (reason: string, tell: boolean): void => {
      if (state === "closed") return;
      const wasOpen = state === "open";
      state = "closed";
      clearTimeout(timer);
      if (!wasOpen) this.#report(reason, from);
      else this.#report(`closed an authenticated stream: ${reason}`, from);
      if (tell) void raw.write(refuseFrame(reason)).catch(() => {}).finally(() => raw.close());
      else void raw.close();
    };

    /** A record on an open connection: checked and delivered synchronously. */
    const onRecord = (frame: Uint8Array): void => {
      if (frame.length < SEQ_BYTES + MAC_BYTES) return fail("record too short", false);
      const body = frame.subarray(0, frame.length - MAC_BYTES);
      const ok = key!.verify(body, frame.subarray(frame.length - MAC_BYTES));
      const got = new DataView(body.buffer, body.byteOffset, SEQ_BYTES).getBigUint64(0);
      if (!ok) return fail("record MAC does not verify", false);
      if (got !== BigInt(seq)) return fail(`record ${got} out of sequence (expected ${seq})`, false);
      seq++;
      handlers!.onData(body.subarray(SEQ_BYTES));
    };

    const onFrame = async (frame: Uint8Array): Promise<void> => {
      if (state === "closed") return;
      if (state === "open") return onRecord(frame);
      if (frame[0] === REFUSE) return fail(`the peer refused: ${refusedBecause(frame)}`, false);
      const keys = await this.#keysOnce();
      if (state === "hello") {
        const hello = decodeHello(frame);
        from = hello.from;
        if (hello.clusterId !== this.#opts.clusterId) {
          return fail(
            `cluster mismatch: ${JSON.stringify(hello.from)} is in cluster ${JSON.stringify(hello.clusterId)}`,
            true,
          );
        }
        if (hello.to !== this.#opts.self) {
          return fail(`${JSON.stringify(hello.from)} wanted node ${JSON.stringify(hello.to)}`, true);
        }
        if (hello.from === this.#opts.self) return fail("a peer claims to be this node", true);
        // Over mutual TLS, the secret never widens whom the certificate speaks for.
        try {
          checkIdentity(hello.from, raw.identity, false);
        } catch (err) {
          if (err instanceof HandshakeError) return fail(err.reason, true);
          throw err;
        }
        const nonceS = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
        transcript = concatBytes([frame, nonceS]);
        nonces = [hello.nonce, nonceS];
        const macS = await sign(keys.auth, SERVER_LABEL, transcript);
        if (state !== "hello") return;
        state = "proof";
        await raw.write(encodeFrame(concatBytes([Uint8Array.of(CHALLENGE), nonceS, macS])));
        return;
      }
      // state === "proof"
      if (frame[0] !== PROOF || frame.length !== 1 + MAC_BYTES) return fail("expected a proof", true);
      const ok = await verify(keys.auth, frame.subarray(1), CLIENT_LABEL, transcript!);
      if (state !== "proof") return;
      if (!ok) {
        return fail(
          `secret mismatch: ${JSON.stringify(from)} could not prove the cluster secret (is its secret the same?)`,
          true,
        );
      }
      key = await recordKey(keys, transcript!, nonces![0], nonces![1]);
      if (state !== "proof") return;
      state = "open";
      clearTimeout(timer);
      // Records may be large; the client sends none before it has our ACCEPT.
      decoder = new FrameDecoder(SEQ_BYTES + MAX_RECORD_DATA + MAC_BYTES);
      const identity: PeerIdentity = { names: [from!], via: "secret" };
      handlers = accept({
        identity,
        write: () => Promise.reject(new Error("peer streams are one-way")),
        close: () => raw.close(),
      });
      await raw.write(encodeFrame(Uint8Array.of(ACCEPT)));
    };

    return {
      onData: (chunk) => {
        if (state === "closed") return;
        let frames: Uint8Array[];
        try {
          frames = decoder.push(chunk);
        } catch (e) {
          if (!(e instanceof FrameTooLargeError)) throw e;
          return fail(e.message, state !== "open");
        }
        for (const frame of frames) {
          if ((state as string) === "closed") return; // a record before this one failed
          // Open with nothing queued: no promise hop (records are the hot path).
          if (state === "open" && pending === 0) {
            onRecord(frame);
            continue;
          }
          pending += frame.length;
          if (pending > this.#maxPending) return fail("too many bytes waiting for the handshake", false);
          work = work.then(() => onFrame(frame)).then(
            () => void (pending -= frame.length),
            (e) => fail(e instanceof SecretHandshakeError ? e.reason : String(e), true),
          );
        }
      },
      onClose: () => {
        const wasOpen = state === "open";
        if (state !== "closed") {
          if (!wasOpen && state === "proof") this.#report(`${JSON.stringify(from)} left during the handshake`, from);
          state = "closed";
          clearTimeout(timer);
        }
        // Records already verified were delivered; the session ends here.
        if (wasOpen) void work.finally(() => handlers?.onClose());
      },
    };
  }

  /**
   * The dialing side: `open` establishes the raw connection (its handlers
   * are given); resolves the authenticated connection once `peer` proved
   * the secret, or rejects with a {@link SecretHandshakeError}.
   */
  async dial(
    open: (raw: StreamHandlers) => Promise<StreamConnection>,
    peer: NodeId,
    handlers: StreamHandlers,
  ): Promise<StreamConnection> {
    const keys = await this.#keysOnce();
    const decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME);
    // Handshake frames from the server, handed to the one `next()` waiting for them.
    const inbox: (Uint8Array | Error)[] = [];
    let wake: (() => void) | undefined;
    const deliver = (item: Uint8Array | Error) => {
      inbox.push(item);
      wake?.();
    };
    const next = async (): Promise<Uint8Array> => {
      while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
      const item = inbox.shift()!;
      if (item instanceof Error) throw item;
      if (item[0] === REFUSE) {
        throw new SecretHandshakeError(`${JSON.stringify(peer)} refused: ${refusedBecause(item)}`);
      }
      return item;
    };
    let opened = false;
    let closed = false;
    const raw = await open({
      onData: (chunk) => {
        let frames: Uint8Array[];
        try {
          frames = decoder.push(chunk);
        } catch (e) {
          deliver(new SecretHandshakeError(String((e as Error).message)));
          return;
        }
        for (const f of frames) {
          if (!opened) deliver(f);
          else if (f[0] === REFUSE) {
            this.#report(`${JSON.stringify(peer)} refused: ${refusedBecause(f)}`, peer);
            void raw.close();
          }
        }
      },
      onClose: () => {
        deliver(new SecretHandshakeError(`${JSON.stringify(peer)} closed the connection during the handshake`));
        if (opened && !closed) {
          closed = true;
          handlers.onClose();
        }
      },
    });
    try {
      const nonceC = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
      const hello = encodeHello({ nonce: nonceC, clusterId: this.#opts.clusterId, from: this.#opts.self, to: peer });
      await raw.write(encodeFrame(hello));
      const reply = await next();
      if (reply[0] !== CHALLENGE || reply.length !== 1 + NONCE_BYTES + MAC_BYTES) {
        throw new SecretHandshakeError(`${JSON.stringify(peer)} sent no valid challenge`);
      }
      const nonceS = reply.subarray(1, 1 + NONCE_BYTES);
      const transcript = concatBytes([hello, nonceS]);
      if (!(await verify(keys.auth, reply.subarray(1 + NONCE_BYTES), SERVER_LABEL, transcript))) {
        const reason = "secret mismatch";
        await raw.write(refuseFrame(`${reason}: your proof does not verify with my secret`)).catch(() => {});
        throw new SecretHandshakeError(
          `${reason}: ${JSON.stringify(peer)} could not prove the cluster secret (is its secret the same?)`,
        );
      }
      const macC = await sign(keys.auth, CLIENT_LABEL, transcript);
      await raw.write(encodeFrame(concatBytes([Uint8Array.of(PROOF), macC])));
      const key = await recordKey(keys, transcript, nonceC, nonceS);
      const accepted = await next();
      if (accepted[0] !== ACCEPT || accepted.length !== 1) {
        throw new SecretHandshakeError(`${JSON.stringify(peer)} did not accept the proof`);
      }
      opened = true;
      return sealing(raw, key, { names: [peer], via: "secret" });
    } catch (e) {
      await raw.close();
      if (e instanceof SecretHandshakeError) this.#report(e.reason, peer);
      throw e instanceof SecretHandshakeError || !(e instanceof Error) ? e : new SecretHandshakeError(e.message);
    }
  }
}

/** The authenticated sending side: each write leaves as records of at most {@link MAX_RECORD_DATA} bytes. */
function sealing(raw: StreamConnection, key: RecordMac, identity: PeerIdentity): StreamConnection {
  let seq = 0;
  return {
    identity,
    write(bytes: Uint8Array): Promise<void> {
      // One buffer for the whole write: per record [u32 length][u64 seq][data][mac], the MAC written in place.
      const records = Math.max(1, Math.ceil(bytes.length / MAX_RECORD_DATA));
      const out = new Uint8Array(bytes.length + records * (FRAME_HEADER + SEQ_BYTES + MAC_BYTES));
      const view = new DataView(out.buffer);
      let at = 0;
      for (let r = 0; r < records; r++) {
        const data = bytes.subarray(r * MAX_RECORD_DATA, (r + 1) * MAX_RECORD_DATA);
        view.setUint32(at, SEQ_BYTES + data.length + MAC_BYTES);
        const body = out.subarray(at + FRAME_HEADER, at + FRAME_HEADER + SEQ_BYTES + data.length);
        view.setBigUint64(at + FRAME_HEADER, BigInt(seq++));
        body.set(data, SEQ_BYTES);
        key.sign(body, out.subarray(at + FRAME_HEADER + body.length, at + FRAME_HEADER + body.length + MAC_BYTES));
        at += FRAME_HEADER + body.length + MAC_BYTES;
      }
      return raw.write(out);
    },
    close: () => raw.close(),
  };
}
