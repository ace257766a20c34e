/**
 * Who may call raftd's membership and leadership endpoints (`POST /join`,
 * `DELETE /members/ID`, `POST /transfer`):
 *
 * - with `-admin-token`: only requests with `Authorization: Bearer TOKEN`
 *   (compared in constant time), from anywhere;
 * - without one: only loopback clients (`curl localhost:4001/...` on the
 *   node's machine);
 * - and `POST /join` also from whoever proves the cluster secret
 *   (`-cluster-secret`), by challenge-response: a request without
 *   credentials (or with a bare `Authorization: PlankSecret`, which a joiner
 *   holding the secret always sends first, so that even on loopback its
 *   secret is checked) gets `401` with `WWW-Authenticate: PlankSecret nonce="N"`;
 *   the joiner repeats it with `Authorization: PlankSecret nonce="N",
 *   mac="M"`, `M = HMAC(K_join, "plank join" ‖ cluster ‖ N ‖ body)`. The
 *   nonce is a timestamp and random bytes under a MAC of the secret, so any
 *   node can check a nonce another node issued (a follower forwards the
 *   join to the leader, which checks it again); it is good for 60 seconds
 *   and once per node. The secret never crosses the wire.
 *
 * Every check happens on every hop: a follower forwards only what it
 * accepted, with the credentials, and the leader checks them again.
 *
 * @module
 */

import { isLoopbackHost } from "./cli.ts";

/** The protected routes. */
export type AdminRoute = "join" | "member" | "transfer";

/** What the gate is built from. */
export interface AdminGateOptions {
  /** The Bearer token, when `-admin-token` was given. */
  readonly token?: string;
  /** The cluster secret and its HMAC key derivation, when `-cluster-secret` was given. */
  readonly secret?: {
    readonly bytes: Uint8Array;
    readonly key: (secret: Uint8Array, purpose: string) => Promise<CryptoKey>;
  };
  /** Cluster id, bound into join proofs. */
  readonly cluster: string;
  /** Clock (ms). Default `Date.now`. */
  readonly now?: () => number;
  /** Told about every refusal (for a log line). */
  readonly onRefused?: (status: number, reason: string, remote: string | undefined) => void;
}

/** How long a join nonce is good for, on any node (clocks within this of each other). */
export const NONCE_TTL_MS = 60_000;
const NONCE_RANDOM = 16;
const NONCE_TAG = 16;
/** Nonces remembered as used; past this many live ones, proofs are refused until some expire. */
const MAX_USED_NONCES = 10_000;

const utf8 = new TextEncoder();
const JOIN_LABEL = utf8.encode("plank join\0");

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unb64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(text)) return undefined;
  try {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `PlankSecret nonce="…", mac="…"` (or the challenge's `nonce="…"` alone) as a map. */
export function parseSecretAuth(header: string | null): Map<string, string> | undefined {
  const m = /^PlankSecret(?:\s+(.*))?$/i.exec((header ?? "").trim());
  if (m === null) return undefined;
  const params = new Map<string, string>();
  if (m[1] === undefined) return params;
  for (const part of m[1].split(",")) {
    const kv = /^\s*([a-z]+)="([^"]*)"\s*$/.exec(part);
    if (kv === null) return undefined;
    params.set(kv[1]!, kv[2]!);
  }
  return params;
}

function hmac(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return crypto.subtle.sign("HMAC", key, data as Uint8Array<ArrayBuffer>).then((b) => new Uint8Array(b));
}

/** The join proof for `nonce` and `body` (the joiner computes it; the gate checks it). */
export async function joinProof(key: CryptoKey, cluster: string, nonce: string, body: Uint8Array): Promise<string> {
  return b64url(await hmac(key, concat(JOIN_LABEL, utf8.encode(cluster), Uint8Array.of(0), utf8.encode(nonce), body)));
}

/** The `Authorization` header answering a `PlankSecret` challenge, or undefined when `challenge` is not one. */
export async function answerChallenge(
  joinKey: CryptoKey,
  cluster: string,
  challenge: string | null,
  body: Uint8Array,
): Promise<string | undefined> {
  const nonce = /PlankSecret\s+nonce="([A-Za-z0-9_-]+)"/.exec(challenge ?? "")?.[1];
  if (nonce === undefined) return undefined;
  return `PlankSecret nonce="${nonce}", mac="${await joinProof(joinKey, cluster, nonce, body)}"`;
}

/** Checks credentials for the admin routes; see the module doc. */
export class AdminGate {
  readonly #o: AdminGateOptions;
  readonly #now: () => number;
  readonly #tokenKey: CryptoKey | undefined;
  readonly #tokenMac: Uint8Array | undefined;
  readonly #nonceKey: CryptoKey | undefined;
  /** The key joiners prove the secret with (undefined without a secret). */
  readonly joinKey: CryptoKey | undefined;
  readonly #used = new Map<string, number>();

  private constructor(o: AdminGateOptions, keys: {
    tokenKey?: CryptoKey;
    tokenMac?: Uint8Array;
    nonceKey?: CryptoKey;
    joinKey?: CryptoKey;
  }) {
    this.#o = o;
    this.#now = o.now ?? (() => Date.now());
    this.#tokenKey = keys.tokenKey;
    this.#tokenMac = keys.tokenMac;
    this.#nonceKey = keys.nonceKey;
    this.joinKey = keys.joinKey;
  }

  /** Build the gate (derives its keys). */
  static async create(o: AdminGateOptions): Promise<AdminGate> {
    let tokenKey: CryptoKey | undefined, tokenMac: Uint8Array | undefined;
    if (o.token !== undefined) {
      // Compare tokens as MACs under a random key: crypto.subtle.verify compares in constant time.
      tokenKey = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
      tokenMac = await hmac(tokenKey, utf8.encode(o.token));
    }
    const secret = o.secret;
    return new AdminGate(o, {
      tokenKey,
      tokenMac,
      nonceKey: secret && await secret.key(secret.bytes, "raftd join nonce"),
      joinKey: secret && await secret.key(secret.bytes, "raftd join"),
    });
  }

  /** Whether a token is configured (then loopback alone is not enough). */
  get hasToken(): boolean {
    return this.#tokenKey !== undefined;
  }

  /** A fresh join nonce: timestamp, random bytes, and their MAC. */
  async nonce(): Promise<string> {
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setBigUint64(0, BigInt(this.#now()));
    const body = concat(stamp, crypto.getRandomValues(new Uint8Array(NONCE_RANDOM)));
    const tag = (await hmac(this.#nonceKey!, body)).subarray(0, NONCE_TAG);
    return b64url(concat(body, tag));
  }

  async #nonceOk(nonce: string): Promise<boolean> {
    const raw = unb64url(nonce);
    if (raw === undefined || raw.length !== 8 + NONCE_RANDOM + NONCE_TAG) return false;
    const body = raw.subarray(0, 8 + NONCE_RANDOM);
    const expected = (await hmac(this.#nonceKey!, body)).subarray(0, NONCE_TAG);
    let diff = 0;
    for (let i = 0; i < NONCE_TAG; i++) diff |= expected[i]! ^ raw[8 + NONCE_RANDOM + i]!;
    if (diff !== 0) return false;
    const issued = Number(new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0));
    return Math.abs(this.#now() - issued) <= NONCE_TTL_MS;
  }

  /** Remember `nonce` as used; false when it was used already (or too many are live). */
  #use(nonce: string): boolean {
    const now = this.#now();
    for (const [n, expires] of this.#used) if (expires < now) this.#used.delete(n);
    if (this.#used.has(nonce) || this.#used.size >= MAX_USED_NONCES) return false;
    this.#used.set(nonce, now + 2 * NONCE_TTL_MS);
    return true;
  }

  async #tokenOk(header: string | null): Promise<boolean | undefined> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (m === null) return undefined;
    if (this.#tokenKey === undefined) return false;
    return await crypto.subtle.verify(
      "HMAC",
      this.#tokenKey,
      this.#tokenMac as Uint8Array<ArrayBuffer>,
      utf8.encode(m[1]!),
    );
  }

  /**
   * Undefined when the request may go on; otherwise the 401/403 to answer.
   * `body` is the join request's body (bound into a secret proof);
   * `remote` the client's IP address.
   */
  async check(
    req: Request,
    route: AdminRoute,
    body: Uint8Array | undefined,
    remote: string | undefined,
  ): Promise<Response | undefined> {
    const authorization = req.headers.get("authorization");
    const token = await this.#tokenOk(authorization);
    if (token === true) return undefined;
    const proof = parseSecretAuth(authorization);
    if (route === "join" && this.joinKey !== undefined && proof !== undefined) {
      if (proof.size === 0) return this.#refuse(401, "prove the cluster secret", route, remote);
      const nonce = proof.get("nonce") ?? "";
      const mac = proof.get("mac") ?? "";
      const expected = await joinProof(this.joinKey, this.#o.cluster, nonce, body ?? new Uint8Array(0));
      let same = expected.length === mac.length;
      for (let i = 0; i < expected.length && same; i++) same = expected.charCodeAt(i) === mac.charCodeAt(i);
      if (same && await this.#nonceOk(nonce)) {
        if (this.#use(nonce)) return undefined;
        return this.#refuse(403, "join proof already used; ask again", route, remote);
      }
      return this.#refuse(
        403,
        "secret mismatch: join proof does not verify (is the cluster secret the same?)",
        route,
        remote,
      );
    }
    if (token === false || proof !== undefined) return this.#refuse(403, "invalid credentials", route, remote);
    if (!this.hasToken && remote !== undefined && isLoopbackHost(remote)) return undefined;
    const why = this.hasToken
      ? "needs Authorization: Bearer <admin token>"
      : "answers loopback clients only (start raftd with -admin-token FILE to allow others)";
    const path = route === "join" ? "/join" : route === "member" ? "/members" : "/transfer";
    return this.#refuse(401, `${path} ${why}`, route, remote);
  }

  async #refuse(status: 401 | 403, message: string, route: AdminRoute, remote: string | undefined): Promise<Response> {
    this.#o.onRefused?.(status, message, remote);
    const challenges: string[] = [];
    if (this.hasToken) challenges.push('Bearer realm="raftd"');
    if (route === "join" && this.joinKey !== undefined) challenges.push(`PlankSecret nonce="${await this.nonce()}"`);
    const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
    // A refused proof also gets a fresh nonce, so a joiner whose nonce expired can retry at once.
    if (challenges.length > 0) headers["www-authenticate"] = challenges.join(", ");
    return new Response(`${message}\n`, { status, headers });
  }
}
