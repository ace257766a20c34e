/**
 * `DATA_DIR/raftd.json`: who this node is (id, advertised address, cluster
 * id, whether it founded the cluster) and the last address book it saw.
 *
 * The address book's source of truth is the replicated state (see `kv.ts`);
 * the copy here only lets a restarted node talk to its peers before it has
 * replayed its log. Written atomically: temp file, fsync, rename, dir fsync.
 *
 * The file is JSON with a `checksum` field: the CRC-32C of the JSON text of
 * the other fields, as written. A flipped byte that still parses (a changed
 * cluster id, say) fails the checksum, and the node refuses to start rather
 * than join the wrong cluster. The identity and the log go together: a data
 * directory holding a log but no identity is refused (starting would found a
 * new cluster over the old log), and so is an identity without its log.
 *
 * @module
 */

import { crc32c, formatCrc32c } from "../../core/mod.ts";
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
  /** Last known peer (mTLS) addresses, when peers use mutual TLS; absent otherwise. */
  readonly peers?: Readonly<Record<string, string>>;
  /**
   * Set once the node learnt it was removed from the cluster (why, and
   * when): its data must not serve as a member again, so raftd refuses to start on it.
   */
  readonly removed?: string;
  /** `-groups N` (N > 1): the count is part of the data (keys are hashed over it), so it can never change. */
  readonly groups?: number;
}

/** The file name inside the data directory. */
export const IDENTITY_FILE = "raftd.json";

/** The data directory's identity is damaged, missing beside a log, or present without one. */
export class IdentityError extends Error {
  /** Discriminator. */
  readonly _tag = "IdentityError" as const;
  /** The file concerned. */
  readonly file: string;

  /**
   * @param file the identity file
   * @param reason what is wrong
   */
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = "IdentityError";
    this.file = file;
  }
}

function checksumOf(fields: unknown): string {
  return `crc32c:${formatCrc32c(crc32c(new TextEncoder().encode(JSON.stringify(fields))))}`;
}

/** The file's text for `identity`, checksum included. */
export function formatIdentity(identity: Identity): string {
  const { id, address, cluster, founder, members, peers, removed, groups } = identity;
  // `peers`, `removed` and `groups` only when set, so older files read as before.
  const fields = {
    id,
    address,
    cluster,
    founder,
    members,
    ...(peers && Object.keys(peers).length ? { peers } : {}),
    ...(removed === undefined ? {} : { removed }),
    ...(groups === undefined || groups === 1 ? {} : { groups }),
  };
  return JSON.stringify({ ...fields, checksum: checksumOf(fields) }, null, 2) + "\n";
}

/** Parse and validate the text of the identity file at `file`; throws an {@link IdentityError} naming the problem. */
export function parseIdentity(text: string, file: string = IDENTITY_FILE): Identity {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new IdentityError(file, `not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new IdentityError(file, "not a JSON object");
  const { checksum, ...fields } = v as Record<string, unknown>;
  if (typeof checksum !== "string") {
    throw new IdentityError(file, "no checksum (damaged, or written by an older raftd)");
  }
  if (checksum !== checksumOf(fields)) {
    throw new IdentityError(
      file,
      `checksum mismatch (the file says ${checksum}, its content has ${checksumOf(fields)})`,
    );
  }
  const { id, address, cluster, founder, members, peers, removed, groups } = fields;
  if (typeof id !== "string" || !NODE_ID_PATTERN.test(id)) throw new IdentityError(file, "bad id");
  if (typeof address !== "string" || !isHostPort(address)) throw new IdentityError(file, "bad address");
  if (typeof cluster !== "string" || cluster === "") throw new IdentityError(file, "bad cluster");
  if (typeof founder !== "boolean") throw new IdentityError(file, "bad founder");
  const book = addressBook(file, "members", members);
  if (removed !== undefined && typeof removed !== "string") throw new IdentityError(file, "bad removed");
  if (groups !== undefined && !(Number.isSafeInteger(groups) && (groups as number) > 1)) {
    throw new IdentityError(file, "bad groups");
  }
  return {
    id,
    address,
    cluster,
    founder,
    members: book,
    ...(peers === undefined ? {} : { peers: addressBook(file, "peers", peers) }),
    ...(removed === undefined ? {} : { removed }),
    ...(groups === undefined ? {} : { groups: groups as number }),
  };
}

/** `v` as member id → address, or an {@link IdentityError} naming `what`. */
function addressBook(file: string, what: string, v: unknown): Record<string, string> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new IdentityError(file, `bad ${what}`);
  const book: Record<string, string> = {};
  for (const [k, a] of Object.entries(v)) {
    if (typeof a !== "string") throw new IdentityError(file, `bad address for ${what} ${JSON.stringify(k)}`);
    book[k] = a;
  }
  return book;
}

/** Whether the data directory holds a log (or snapshots), i.e. the state of some node. */
async function holdsNodeState(fs: DurableFs, dataDir: string): Promise<boolean> {
  return (await fs.exists(`${dataDir}/wal`)) || (await fs.exists(`${dataDir}/snapshots`));
}

/**
 * Read the identity file, or undefined when the data directory is new.
 *
 * @throws IdentityError if the file is damaged, if the directory holds a log
 *   but no identity, or an identity but no log
 */
export async function loadIdentity(fs: DurableFs, dataDir: string): Promise<Identity | undefined> {
  const path = `${dataDir}/${IDENTITY_FILE}`;
  let identity: Identity | undefined;
  if (await fs.exists(path)) {
    identity = parseIdentity(new TextDecoder().decode(await fs.readFile(path)), path);
  } else if (await fs.exists(`${path}.tmp`)) {
    // A crash between the first save's fsync and its rename: the temporary file is the identity, if whole.
    identity = parseIdentity(new TextDecoder().decode(await fs.readFile(`${path}.tmp`)), `${path}.tmp`);
  }
  const state = await holdsNodeState(fs, dataDir);
  if (identity === undefined && state) {
    throw new IdentityError(
      path,
      "missing, but the data directory holds a log: refusing to start a new cluster over it " +
        "(restore the file, or remove the directory to start afresh)",
    );
  }
  if (identity !== undefined && !(await fs.exists(`${dataDir}/wal`))) {
    throw new IdentityError(
      path,
      `node ${identity.id} of cluster ${identity.cluster}, but its log (${dataDir}/wal) is missing: ` +
        "refusing to start without the term, vote and entries it had",
    );
  }
  return identity;
}

/** Write the identity file atomically and durably. */
export async function saveIdentity(fs: DurableFs, dataDir: string, identity: Identity): Promise<void> {
  const tmp = `${dataDir}/${IDENTITY_FILE}.tmp`;
  await fs.writeFileSynced(tmp, new TextEncoder().encode(formatIdentity(identity)));
  await fs.rename(tmp, `${dataDir}/${IDENTITY_FILE}`);
  await fs.syncDir(dataDir);
}

/** A fresh random id: 8 hex digits (raftd used random ids too). */
export function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
