/**
 * `DATA_DIR/raftd.json`: who this node is (id, advertised address, cluster
 * id, whether it founded the cluster) and the last address book it saw.
 *
 * The address book's source of truth is the replicated state (see `kv.ts`);
 * the copy here only lets a restarted node talk to its peers before it has
 * replayed its log. Written atomically: temp file, fsync, rename, dir fsync.
 *
 * @module
 */

import type { DurableFs } from "../../adapters/deno/mod.ts";
import { isHostPort, NODE_ID_PATTERN } from "./cli.ts";

/** The file's content. */
export interface Identity {
  /** This node's Raft id. */
  readonly id: string;
  /** `host:port` peers and clients use to reach this node. */
  readonly address: string;
  /** Cluster id exchanged in peer handshakes. */
  readonly cluster: string;
  /** True for the node that created the cluster (it starts as its single voter). */
  readonly founder: boolean;
  /** Last known address book, member id → `host:port`. */
  readonly members: Readonly<Record<string, string>>;
  /** Last known peer (mTLS) addresses, when peers use mutual TLS. */
  readonly peers?: Readonly<Record<string, string>>;
}

/** The file name inside the data directory. */
export const IDENTITY_FILE = "raftd.json";

/** Parse and validate the file's text; throws an Error naming the problem. */
export function parseIdentity(text: string): Identity {
  const v = JSON.parse(text) as Record<string, unknown>;
  if (typeof v !== "object" || v === null) throw new Error(`${IDENTITY_FILE}: not a JSON object`);
  const { id, address, cluster, founder, members, peers } = v;
  if (typeof id !== "string" || !NODE_ID_PATTERN.test(id)) throw new Error(`${IDENTITY_FILE}: bad id`);
  if (typeof address !== "string" || !isHostPort(address)) throw new Error(`${IDENTITY_FILE}: bad address`);
  if (typeof cluster !== "string" || cluster === "") throw new Error(`${IDENTITY_FILE}: bad cluster`);
  return { id, address, cluster, founder: founder === true, members: addresses(members), peers: addresses(peers) };
}

/** The string-valued entries of `v`, if it is an object. */
function addresses(v: unknown): Record<string, string> {
  const book: Record<string, string> = {};
  if (typeof v === "object" && v !== null) {
    for (const [k, a] of Object.entries(v)) if (typeof a === "string") book[k] = a;
  }
  return book;
}

/** Read the identity file, or undefined when there is none yet. */
export async function loadIdentity(fs: DurableFs, dataDir: string): Promise<Identity | undefined> {
  const path = `${dataDir}/${IDENTITY_FILE}`;
  if (!(await fs.exists(path))) return undefined;
  return parseIdentity(new TextDecoder().decode(await fs.readFile(path)));
}

/** Write the identity file atomically and durably. */
export async function saveIdentity(fs: DurableFs, dataDir: string, identity: Identity): Promise<void> {
  const tmp = `${dataDir}/${IDENTITY_FILE}.tmp`;
  await fs.writeFileSynced(tmp, new TextEncoder().encode(JSON.stringify(identity, null, 2) + "\n"));
  await fs.rename(tmp, `${dataDir}/${IDENTITY_FILE}`);
  await fs.syncDir(dataDir);
}

/** A fresh random id: 8 hex digits (raftd used random ids too). */
export function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
