/**
 * How a raftd joins a cluster: find it (`discover`: the cluster id and
 * every member's address, from the `-join` target's `/status`), then ask to
 * be added (`joinLoop`: `POST /join`, followed to the leader), and how the
 * leader checks that a joiner is where it says it is (`probeStatus`).
 *
 * Neither loop waits forever: a first start whose `-join` target never
 * answers gives up after `-join-timeout`, a `-join` naming this node's own
 * port is refused at once, and a join the cluster refuses for good (a 4xx:
 * an id taken at another address, bad credentials) ends the process with
 * the reason, instead of asking again.
 *
 * @module
 */

import { answerChallenge } from "./admin.ts";
import { isLoopbackHost } from "./cli.ts";
import type { KvNode } from "./service.ts";
import { membersOf } from "./service.ts";

/** How this node calls the others over HTTP(S): scheme and fetch (trusting `-ca` under HTTPS). */
export interface Dialer {
  /** `http`, or `https` under `-cert`. */
  readonly scheme: "http" | "https";
  /** The runtime's fetch (with the `-ca` trust under HTTPS). */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
}

/** Where log lines go. */
export interface JoinLog {
  /** One line at `level`. */
  log(level: "info" | "verbose" | "debug", message: string): void;
}

/** Joining cannot go on: the reason is for the operator (printed, then raftd exits). */
export class JoinError extends Error {
  /** Discriminator. */
  readonly _tag = "JoinError" as const;
  /** @param message what went wrong and what to do */
  constructor(message: string) {
    super(message);
    this.name = "JoinError";
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Whether `target` (`host:port`) is this node's own HTTP server: its port,
 * on loopback or on one of the names this node goes by.
 */
export function targetsSelf(target: string, port: number, names: readonly string[]): boolean {
  const colon = target.lastIndexOf(":");
  const host = target.slice(0, colon).replace(/^\[|\]$/g, "").toLowerCase();
  if (Number(target.slice(colon + 1)) !== port) return false;
  return isLoopbackHost(host) || host === "0.0.0.0" || names.some((n) => n.toLowerCase() === host);
}

/** What a raftd's `/status` says, as far as other nodes rely on it. */
export interface StatusAnswer {
  /** Its node id. */
  readonly id: string;
  /** Its cluster id. */
  readonly cluster: string;
  /** Its role (`leader`, `follower`, …). */
  readonly role: string;
  /** Its term. */
  readonly term: number;
  /** The members it knows, with addresses. */
  readonly members: readonly { readonly id: string; readonly address?: unknown; readonly peer?: unknown }[];
  /** Its groups of keys, under `-groups N` (absent: one group). */
  readonly groups?: readonly unknown[];
}

/** `GET address/status`, checked to be raftd's; throws when nothing (or something else) answers. */
export async function fetchStatus(dialer: Dialer, address: string, timeoutMs = 3000): Promise<StatusAnswer> {
  const res = await dialer.fetch(`${dialer.scheme}://${address}/status`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`/status answered ${res.status}`);
  }
  const s = await res.json() as Partial<Record<keyof StatusAnswer, unknown>>;
  if (
    typeof s.id !== "string" || typeof s.cluster !== "string" || typeof s.role !== "string" ||
    typeof s.term !== "number" || !Array.isArray(s.members) ||
    !s.members.every((m) => typeof m === "object" && m !== null && typeof m.id === "string")
  ) {
    throw new Error("its /status is not raftd's");
  }
  return s as StatusAnswer;
}

/** What `discover` learns from a member. */
export interface Discovered {
  /** The cluster id. */
  readonly cluster: string;
  /** Every member's HTTP address. */
  readonly members: Record<string, string>;
  /** Every member's mTLS peer address (under mutual TLS). */
  readonly peers: Record<string, string>;
  /** How many groups of keys the cluster runs (`-groups`; 1 without). */
  readonly groups: number;
}

/**
 * Ask `target` for the cluster id and member addresses, retrying until it
 * answers; throws a {@link JoinError} once nothing has answered for `timeoutMs`.
 */
export async function discover(
  target: string,
  dialer: Dialer,
  logger: JoinLog,
  stopped: () => boolean,
  timeoutMs: number,
): Promise<Discovered> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  for (let attempt = 1; !stopped(); attempt++) {
    try {
      const s = await fetchStatus(dialer, target);
      const members: Record<string, string> = {};
      const peers: Record<string, string> = {};
      for (const m of s.members) {
        if (typeof m.address === "string") members[m.id] = m.address;
        if (typeof m.peer === "string") peers[m.id] = m.peer;
      }
      const groups = Array.isArray(s.groups) ? s.groups.length : 1;
      return { cluster: s.cluster, members, peers, groups };
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
      if (attempt === 1 || attempt % 10 === 0) logger.log("info", `join: cannot reach ${target} (${last}); retrying`);
    }
    if (Date.now() >= deadline) {
      throw new JoinError(
        `-join ${target}: no cluster member answered for ${Math.round(timeoutMs / 1000)} s (${last}); ` +
          "is a raftd of the cluster listening there? (-join-timeout sets how long to try)",
      );
    }
    await sleep(Math.min(2000, 200 * attempt, Math.max(0, deadline - Date.now())));
  }
  throw new JoinError("stopped");
}

/** What a joiner sends, and the credentials it has. */
export interface JoinRequest {
  /** This node's id. */
  readonly self: string;
  /** Its HTTP address. */
  readonly address: string;
  /** Its mTLS peer address, when peers use mutual TLS. */
  readonly peer: string | undefined;
  /** The cluster id (bound into a secret proof). */
  readonly cluster: string;
  /** `-admin-token`, presented as a Bearer token. */
  readonly token: string | undefined;
}

/** Statuses that a retry cannot change: the request itself is refused. */
function permanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * Keep asking `target` (followed to the leader) to add this node until it
 * is a voter. With the cluster secret, a `PlankSecret` challenge is answered
 * with a proof and the request repeated at once. Resolves when joined (or
 * stopped); rejects with a {@link JoinError} when the cluster refuses for good.
 */
export async function joinLoop(
  target: string,
  join: JoinRequest,
  dialer: Dialer,
  joinKey: CryptoKey | undefined,
  node: KvNode,
  logger: JoinLog,
  stopped: () => boolean,
): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify({
    id: join.self,
    address: join.address,
    ...(join.peer === undefined ? {} : { peer: join.peer }),
  }));
  const post = (authorization: string | undefined) =>
    dialer.fetch(`${dialer.scheme}://${target}/join`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body: body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(90_000),
    });
  for (let attempt = 1; !stopped(); attempt++) {
    const me = membersOf(node.status().membership).find((m) => m.id === join.self);
    if (me?.suffrage === "voter") {
      logger.log("info", "joined the cluster as a voter");
      return;
    }
    try {
      // Holding the secret, ask for a challenge first: the leader then checks our secret even on loopback.
      let res = await post(joinKey ? "PlankSecret" : join.token && `Bearer ${join.token}`);
      if (res.status === 401 && joinKey !== undefined) {
        const proof = await answerChallenge(joinKey, join.cluster, res.headers.get("www-authenticate"), body);
        if (proof !== undefined) {
          await res.body?.cancel();
          res = await post(proof);
        }
      }
      const text = (await res.text()).trim();
      if (res.ok) {
        logger.log("info", `joined via ${target}`);
        return;
      }
      if (permanent(res.status)) throw new JoinError(`join refused by ${target}: ${res.status} ${text}`);
      logger.log("info", `join via ${target}: ${res.status} ${text}; retrying`);
    } catch (e) {
      if (e instanceof JoinError) throw e;
      logger.log("info", `join via ${target} failed (${e}); retrying`);
    }
    await sleep(Math.min(2000, 250 * attempt));
  }
}
