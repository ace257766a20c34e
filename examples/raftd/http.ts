/**
 * raftd's HTTP API as a pure `Request → Response` function over a
 * {@link RaftdService}, so it can be unit-tested without sockets or Raft.
 *
 * Every bad input gets a 4xx and a one-line reason; nothing a client sends
 * can throw out of the handler. When the service says this node cannot do
 * something because it is not the leader, the request is proxied to the
 * leader over HTTP (once: a forwarded request is never forwarded again).
 *
 * @module
 */

import { isHostPort, NODE_ID_PATTERN } from "./cli.ts";
import type { KvResult } from "./kv.ts";
import type { Metrics, RaftGauges } from "./metrics.ts";
import { MAX_KEY_SEGMENTS } from "./raw_path.ts";
import { requestUrl } from "../../adapters/transport/request_url.ts";

/** Header telling a client whether a failed write may have taken effect: `unknown` or `not-applied`. */
export const OUTCOME_HEADER = "x-raftd-outcome";

/** One cluster member as the API shows it. */
export interface MemberView {
  /** Node id. */
  readonly id: string;
  /** `host:port` of its HTTP server (clients and peers), if known. */
  readonly address: string | undefined;
  /** `voter` or `learner`. */
  readonly suffrage: "voter" | "learner";
  /** `host:port` of its mutual-TLS peer listener, when peers use mTLS. */
  readonly peer?: string;
}

/** A group's state on this node, as `/status` shows it (the node's own group, or one group of keys). */
export interface GroupStateView {
  /** Raft role, or `stopped`. */
  readonly role: string;
  /** Current term. */
  readonly term: number;
  /** Known leader id, or null. */
  readonly leader: string | null;
  /** The leader's address, or null. */
  readonly leaderAddress: string | null;
  /** Commit index. */
  readonly commit: number;
  /** Applied index. */
  readonly applied: number;
  /** Index of the last entry in this node's log. */
  readonly lastIndex: number;
  /** The members. */
  readonly members: readonly MemberView[];
}

/** `GET /status`: the node, and its own group's state. */
export interface StatusView extends GroupStateView {
  /** This node. */
  readonly id: string;
  /** This node's advertised address. */
  readonly address: string;
  /** Cluster id (peer handshakes; a joiner learns it here). */
  readonly cluster: string;
  /** This process's id (for `kill`). */
  readonly pid?: number;
  /** Under `-groups N`: every group of keys (the fields above are the control group's). */
  readonly groups?: readonly GroupView[];
}

/** One group of keys in `/status` (under `-groups N`). */
export interface GroupView extends GroupStateView {
  /** The group id (1..N). */
  readonly group: number;
  /** Whether it is quiescent here (idle: no heartbeats or election timer). */
  readonly quiescent: boolean;
  /** Index its latest snapshot here covers (0: none; see `-snapshot-entries`). */
  readonly snapshotIndex: number;
}

/** What a node answers to a successful `POST /join`. */
export interface JoinAnswer {
  /** Cluster id the new node must use in peer handshakes. */
  readonly cluster: string;
  /** The leader that added it. */
  readonly leader: string;
  /** Every member's address, the new node included. */
  readonly members: readonly MemberView[];
}

/**
 * What the HTTP layer needs from a running node. Methods fail with
 * {@link HttpError} (answered as is) or {@link NotLeaderError} (proxied to
 * the leader, or 503 when there is none).
 */
export interface RaftdService {
  /** Sets `key` once committed and applied. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Compare-and-set. */
  cas(key: string, prev: Uint8Array, value: Uint8Array): Promise<KvResult>;
  /** Deletes `key`; resolves with whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Reads `key`: linearizable (ReadIndex) unless `stale`. */
  get(key: string, stale: boolean): Promise<Uint8Array | undefined>;
  /** The node's state. */
  status(): StatusView;
  /**
   * Adds a node (leader only); `peer` is its mTLS peer address when peers
   * use mTLS; `replace` allows moving an existing member to `address`.
   */
  join(id: string, address: string, peer?: string, replace?: boolean): Promise<JoinAnswer>;
  /** Removes a node (leader only). */
  removeMember(id: string): Promise<void>;
  /** Transfers leadership (leader only). */
  transfer(to: string): Promise<void>;
  /** Gauges for `/metrics`. */
  gauges(): RaftGauges;
}

/** An answer with a status code and a one-line reason. */
export class HttpError extends Error {
  /** @param status HTTP status @param message one-line reason @param headers extra response headers */
  constructor(readonly status: number, message: string, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.name = "HttpError";
  }
}

/** This node is not the leader; the request should go to `leaderAddress` (503 when unknown). */
export class NotLeaderError extends Error {
  /** @param leaderAddress where the leader's HTTP server is, if known */
  constructor(readonly leaderAddress: string | undefined) {
    super(leaderAddress === undefined ? "no leader" : `not the leader (leader at ${leaderAddress})`);
    this.name = "NotLeaderError";
  }
}

/** Decides whether a request may use an admin route (see `admin.ts`): undefined to go on, else the answer. */
export interface AdminCheck {
  /** `body` is the join request's body; `remote` the client's IP address. */
  check(
    req: Request,
    route: "join" | "member" | "transfer",
    body: Uint8Array | undefined,
    remote: string | undefined,
  ): Promise<Response | undefined>;
}

/** What the server knows about a request beyond the request itself. */
export interface RequestInfo {
  /** The client's IP address. */
  readonly remoteAddress?: string;
  /**
   * The server resolved `.`/`..` segments (or read a backslash as `/`) in the path
   * the client sent: the request is refused rather than served for another path.
   */
  readonly rewrittenPath?: boolean;
}

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** The node. */
  readonly service: RaftdService;
  /** Where request counts and latencies go. */
  readonly metrics: Metrics;
  /** Largest value accepted (bytes); larger → 413. */
  readonly maxValueBytes: number;
  /** The peer transport's handler (returns undefined for paths it does not serve). */
  readonly peerHandler?: (req: Request) => Promise<Response> | undefined;
  /** Used to proxy to the leader. Default `globalThis.fetch`. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Seconds a client should wait before retrying a 503. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Clock for latency measurements (ms). Default `performance.now`. */
  readonly now?: () => number;
  /** Called with each request's outcome (for logging). */
  readonly onRequest?: (method: string, path: string, status: number, ms: number) => void;
  /** Called with unexpected errors (for logging). */
  readonly onError?: (error: unknown) => void;
  /** Who may use `/join`, `/members/ID` and `/transfer`. Without it they are open (unit tests only: raftd always sets it). */
  readonly admin?: AdminCheck;
  /** Scheme used to forward requests to the leader. Default `"http"`. */
  readonly scheme?: "http" | "https";
  /** The live view's routes (`/ui`, `/ui/cluster`; see `ui.ts`): undefined for a path it does not serve. */
  readonly ui?: (path: string) => Promise<Response> | undefined;
}

/** Header marking a request proxied by another raftd node. */
export const FORWARDED_HEADER = "x-raftd-forwarded";
/** Largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
const MAX_JSON_BYTES = 64 * 1024;

const encoder = new TextEncoder();

interface Route {
  readonly name: string;
  readonly allow: string;
  readonly handle: (req: Request, url: URL, params: string, remote: string | undefined) => Promise<Response>;
}

/** Build the request handler. */
export function createHandler(opts: HandlerOptions): (req: Request, info?: RequestInfo) => Promise<Response> {
  const { service, metrics, maxValueBytes } = opts;
  const retryAfter = String(opts.retryAfterSeconds ?? 1);
  const fetchFn = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const now = opts.now ?? (() => performance.now());

  const fail = (status: number, message: string, headers: Record<string, string> = {}): Response => {
    metrics.error(status);
    return text(status, message, headers);
  };

  async function proxy(req: Request, leader: string | undefined, body: Uint8Array | undefined): Promise<Response> {
    if (leader === undefined || req.headers.has(FORWARDED_HEADER)) {
      return fail(503, "no leader available, retry later", {
        "retry-after": retryAfter,
        [OUTCOME_HEADER]: "not-applied",
      });
    }
    const url = requestUrl(req);
    try {
      const headers: Record<string, string> = { [FORWARDED_HEADER]: "1" };
      // Credentials travel with the request: the leader checks them again.
      for (const name of ["content-type", "authorization"]) {
        const v = req.headers.get(name);
        if (v !== null) headers[name] = v;
      }
      const res = await fetchFn(`${opts.scheme ?? "http"}://${leader}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: body as Uint8Array<ArrayBuffer> | undefined,
        redirect: "manual",
      });
      const out = new Uint8Array(await res.arrayBuffer());
      const h = new Headers();
      for (const name of ["content-type", "retry-after", "allow", "www-authenticate", OUTCOME_HEADER]) {
        const v = res.headers.get(name);
        if (v !== null) h.set(name, v);
      }
      if (res.status >= 400) metrics.error(res.status);
      return new Response(out.length === 0 && res.status === 204 ? null : out, { status: res.status, headers: h });
    } catch {
      // The leader may have carried out a write whose answer was lost on the way back.
      if (req.method !== "GET") {
        return fail(504, `outcome unknown: no answer from the leader at ${leader}; read before retrying`, {
          [OUTCOME_HEADER]: "unknown",
        });
      }
      return fail(503, `leader at ${leader} unreachable, retry later`, { "retry-after": retryAfter });
    }
  }

  /** Run `f`; map the service's errors to answers (proxying NotLeaderError). */
  async function serve(req: Request, body: Uint8Array | undefined, f: () => Promise<Response>): Promise<Response> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof NotLeaderError) return await proxy(req, e.leaderAddress, body);
      if (e instanceof HttpError) {
        const headers: Record<string, string> = { ...e.headers };
        if (e.status === 503 && headers["retry-after"] === undefined) headers["retry-after"] = retryAfter;
        return fail(e.status, e.message, headers);
      }
      opts.onError?.(e);
      return fail(500, `internal error: ${oneLine(e)}`);
    }
  }

  const db: Route = {
    name: "db",
    allow: "GET, PUT, POST, DELETE",
    handle: async (req, url, rawKey) => {
      const key = parseKey(rawKey);
      if (typeof key !== "string") return fail(400, key.error);
      const method = req.method;
      const allowed = method === "GET" ? ["stale"] : method === "DELETE" ? [] : ["prev"];
      const q = parseQuery(url, allowed);
      if ("error" in q) {
        await discard(req);
        return fail(400, q.error);
      }
      if (method === "GET") {
        const staleText = q.params.get("stale");
        const stale = staleText === undefined ? false : parseBool(staleText);
        if (stale === undefined) return fail(400, `invalid stale=${JSON.stringify(staleText)}: expected true or false`);
        if (req.body !== null) await discard(req);
        return serve(req, undefined, async () => {
          metrics.read(stale ? "stale" : "linearizable");
          const value = await service.get(key, stale);
          if (value === undefined) return fail(404, `key not found: ${JSON.stringify(key)}`);
          return new Response(value as Uint8Array<ArrayBuffer>, {
            status: 200,
            headers: { "content-type": "application/octet-stream" },
          });
        });
      }
      if (method === "DELETE") {
        await discard(req);
        return serve(req, undefined, async () => {
          metrics.proposal("delete");
          const existed = await service.delete(key);
          return text(200, existed ? "deleted" : "absent");
        });
      }
      // PUT or POST: set, or compare-and-set with ?prev=.
      const body = await readLimited(req, maxValueBytes);
      if (body === "too-large") return fail(413, `value larger than ${maxValueBytes} bytes`);
      const prev = q.params.get("prev");
      if (prev === undefined) {
        return serve(req, body, async () => {
          metrics.proposal("put");
          await service.put(key, body);
          return new Response(null, { status: 200 });
        });
      }
      return serve(req, body, async () => {
        metrics.proposal("cas");
        const result = await service.cas(key, encoder.encode(prev), body);
        if (result.type === "mismatch") {
          return fail(
            412,
            result.current === undefined ? "compare failed: key not set" : "compare failed: current value differs",
          );
        }
        if (result.type !== "ok") return fail(500, `unexpected result ${result.type}`);
        return new Response(null, { status: 200 });
      });
    },
  };

  const status: Route = {
    name: "status",
    allow: "GET",
    handle: (_req, url) => {
      const q = parseQuery(url, []);
      if ("error" in q) return Promise.resolve(fail(400, q.error));
      return Promise.resolve(json(200, service.status()));
    },
  };

  const members: Route = {
    name: "members",
    allow: "GET",
    handle: (_req, url) => {
      const q = parseQuery(url, []);
      if ("error" in q) return Promise.resolve(fail(400, q.error));
      return Promise.resolve(json(200, service.status().members));
    },
  };

  /** The admin gate's answer when it refuses (counted as an error), else undefined. */
  async function denied(
    req: Request,
    route: "join" | "member" | "transfer",
    body: Uint8Array | undefined,
    remote: string | undefined,
  ): Promise<Response | undefined> {
    const res = await opts.admin?.check(req, route, body, remote);
    if (res !== undefined) metrics.error(res.status);
    return res;
  }

  const member: Route = {
    name: "member",
    allow: "DELETE",
    handle: async (req, url, rawId, remote) => {
      await discard(req);
      const q = parseQuery(url, []);
      if ("error" in q) return fail(400, q.error);
      const id = safeDecode(rawId);
      if (id === undefined || !NODE_ID_PATTERN.test(id)) return fail(400, "invalid member id");
      const refused = await denied(req, "member", undefined, remote);
      if (refused !== undefined) return refused;
      return serve(req, undefined, async () => {
        metrics.proposal("member");
        await service.removeMember(id);
        return text(200, `removed ${id}`);
      });
    },
  };

  const join: Route = {
    name: "join",
    allow: "POST",
    handle: async (req, url, _param, remote) => {
      const q = parseQuery(url, []);
      if ("error" in q) {
        await discard(req);
        return fail(400, q.error);
      }
      const body = await readLimited(req, MAX_JSON_BYTES);
      if (body === "too-large") return fail(413, `join request larger than ${MAX_JSON_BYTES} bytes`);
      const refused = await denied(req, "join", body, remote);
      if (refused !== undefined) return refused;
      const parsed = parseJoin(body);
      if ("error" in parsed) return fail(400, parsed.error);
      return serve(req, body, async () => {
        metrics.proposal("member");
        return json(200, await service.join(parsed.id, parsed.address, parsed.peer, parsed.replace));
      });
    },
  };

  const transfer: Route = {
    name: "transfer",
    allow: "POST",
    handle: async (req, url, _param, remote) => {
      await discard(req);
      const q = parseQuery(url, ["to"]);
      if ("error" in q) return fail(400, q.error);
      const to = q.params.get("to");
      if (to === undefined || !NODE_ID_PATTERN.test(to)) return fail(400, "transfer needs ?to=ID of a member");
      const refused = await denied(req, "transfer", undefined, remote);
      if (refused !== undefined) return refused;
      return serve(req, undefined, async () => {
        await service.transfer(to);
        return text(200, `leadership transferred to ${to}`);
      });
    },
  };

  const metricsRoute: Route = {
    name: "metrics",
    allow: "GET",
    handle: (_req, url) => {
      const q = parseQuery(url, []);
      if ("error" in q) return Promise.resolve(fail(400, q.error));
      return Promise.resolve(
        new Response(metrics.render(service.gauges()), {
          status: 200,
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        }),
      );
    },
  };

  const ui: Route = {
    name: "ui",
    allow: "GET",
    handle: async (req, url) => {
      await discard(req);
      const q = parseQuery(url, []);
      if ("error" in q) return fail(400, q.error);
      return await (opts.ui?.(url.pathname) ?? Promise.resolve(fail(404, `no such endpoint: ${url.pathname}`)));
    },
  };

  function route(path: string): { route: Route; param: string } | undefined {
    if (path === "/db" || path.startsWith("/db/")) return { route: db, param: path.slice(4) };
    if (path === "/status") return { route: status, param: "" };
    if (path === "/members") return { route: members, param: "" };
    if (path.startsWith("/members/")) return { route: member, param: path.slice("/members/".length) };
    if (path === "/join") return { route: join, param: "" };
    if (path === "/transfer") return { route: transfer, param: "" };
    if (path === "/metrics") return { route: metricsRoute, param: "" };
    if (path === "/ui" || path.startsWith("/ui/")) return { route: ui, param: "" };
    return undefined;
  }

  return async (req: Request, info?: RequestInfo): Promise<Response> => {
    const started = now();
    let url: URL;
    try {
      url = requestUrl(req);
    } catch {
      return fail(400, "malformed URL");
    }
    if (info?.rewrittenPath) {
      await discard(req);
      return fail(400, "path has '.' or '..' segments or a backslash: refused, not rewritten");
    }
    const peer = opts.peerHandler?.(req);
    if (peer !== undefined) {
      try {
        return await peer;
      } catch (e) {
        opts.onError?.(e);
        return text(500, `internal error: ${oneLine(e)}`);
      }
    }
    const found = route(url.pathname);
    let res: Response;
    let name = "other";
    if (found === undefined) {
      await discard(req);
      res = fail(404, `no such endpoint: ${url.pathname}`);
    } else {
      name = found.route.name;
      if (!found.route.allow.split(", ").includes(req.method)) {
        await discard(req);
        res = fail(405, `method ${req.method} not allowed on ${url.pathname}`, { allow: found.route.allow });
      } else {
        try {
          res = await found.route.handle(req, url, found.param, info?.remoteAddress);
        } catch (e) {
          opts.onError?.(e);
          res = fail(500, `internal error: ${oneLine(e)}`);
        }
      }
    }
    const ms = now() - started;
    metrics.request(name, res.status, ms / 1000);
    opts.onRequest?.(req.method, url.pathname, res.status, ms);
    return res;
  };
}

// ---------------------------------------------------------------------------
// Input validation
// ---------------------------------------------------------------------------

/**
 * Decode and validate a key from the path after `/db/`. Keys may contain `/`
 * (as `a/b`, at most {@link MAX_KEY_SEGMENTS} segments), but no empty, `.`
 * or `..` segments, no backslashes and no control characters, and at most
 * {@link MAX_KEY_BYTES} bytes.
 */
export function parseKey(raw: string): string | { error: string } {
  if (raw === "") return { error: "missing key: use /db/KEY" };
  const key = safeDecode(raw);
  if (key === undefined) return { error: "malformed key: bad percent-encoding" };
  if (key === "") return { error: "empty key" };
  if (encoder.encode(key).length > MAX_KEY_BYTES) return { error: `key longer than ${MAX_KEY_BYTES} bytes` };
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return { error: "key contains control characters" };
  if (key.includes("\\")) return { error: "key contains a backslash" };
  const segments = key.split("/");
  if (segments.length > MAX_KEY_SEGMENTS) {
    return { error: `key has more than ${MAX_KEY_SEGMENTS} '/'-separated segments` };
  }
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") {
      return { error: "key has an empty, '.' or '..' path segment" };
    }
  }
  return key;
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Query parameters, each at most once and only from `allowed`. */
function parseQuery(url: URL, allowed: readonly string[]): { params: Map<string, string> } | { error: string } {
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (!allowed.includes(name)) return { error: `unknown query parameter ${JSON.stringify(name)}` };
    if (params.has(name)) return { error: `query parameter ${JSON.stringify(name)} given twice` };
    params.set(name, value);
  }
  return { params };
}

function parseBool(s: string): boolean | undefined {
  if (s === "true" || s === "1" || s === "") return true;
  if (s === "false" || s === "0") return false;
  return undefined;
}

/**
 * Validate a `POST /join` body: `{"id": ID, "address": "HOST:PORT", "peer"?: "HOST:PORT", "replace"?: true}`
 * (`replace`: move an existing member to this address).
 */
export function parseJoin(
  body: Uint8Array,
): { id: string; address: string; peer?: string; replace?: boolean } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return { error: 'join body must be JSON: {"id": ID, "address": "HOST:PORT"}' };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { error: 'join body must be a JSON object {"id": ID, "address": "HOST:PORT"}' };
  }
  const { id, address, peer, replace, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return { error: `join: unknown field ${JSON.stringify(unknown[0])}` };
  if (typeof id !== "string" || !NODE_ID_PATTERN.test(id)) {
    return { error: "join: id must be 1-64 characters of [A-Za-z0-9._-]" };
  }
  if (typeof address !== "string" || !isHostPort(address)) return { error: "join: address must be HOST:PORT" };
  if (replace !== undefined && typeof replace !== "boolean") return { error: "join: replace must be true or false" };
  const flags = replace ? { replace } : {};
  if (peer === undefined) return { id, address, ...flags };
  if (typeof peer !== "string" || !isHostPort(peer)) return { error: "join: peer must be HOST:PORT" };
  return { id, address, peer, ...flags };
}

/** Read the body, refusing more than `limit` bytes without buffering them all. */
async function readLimited(req: Request, limit: number): Promise<Uint8Array | "too-large"> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await discard(req);
    return "too-large";
  }
  if (req.body === null) return new Uint8Array(0);
  // A declared length within the limit and no chunked coding (which would override it,
  // RFC 9112 §6.3): the server delivers exactly that many bytes, so the body is read whole
  // (the runtimes' native path, no stream reader per request).
  if (declared !== null && /^\d+$/.test(declared) && !req.headers.has("transfer-encoding")) {
    return new Uint8Array(await req.arrayBuffer());
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      return "too-large";
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function discard(req: Request): Promise<void> {
  if (req.body !== null && !req.bodyUsed) await req.body.cancel().catch(() => {});
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

function text(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(message + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function json(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
