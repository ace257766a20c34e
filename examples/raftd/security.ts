/**
 * raftd's security settings, loaded from the files the flags name: the
 * cluster secret, the admin token, HTTPS and peer certificates. Every
 * problem is an {@link SecurityError} naming the flag and the file, so
 * `main.ts` can print one line and exit.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import type { DurableFs } from "../../adapters/deno/mod.ts";
import type { RaftdConfig } from "./cli.ts";

/** A security file is missing, unreadable or unusable. */
export class SecurityError extends Error {
  /**
   * Describe the problem.
   *
   * @param message one line naming the flag and the file
   */
  constructor(message: string) {
    super(message);
    this.name = "SecurityError";
  }
}

/** What the files held. */
export interface Security {
  /** `-cluster-secret`'s bytes (a trailing newline dropped). */
  readonly secret: Uint8Array | undefined;
  /** `-admin-token`'s text (trimmed). */
  readonly token: string | undefined;
  /** `-cert`/`-key` PEM text. */
  readonly https: { readonly cert: string; readonly key: string } | undefined;
  /** `-ca` PEM text. */
  readonly ca: string | undefined;
  /** `-peer-cert`/`-peer-key`/`-peer-ca` PEM text, and the node ids the certificate names. */
  readonly peerTls:
    | { readonly cert: string; readonly key: string; readonly ca: string; readonly names: string[] }
    | undefined;
}

/** Shortest secret and token accepted (bytes). */
export const MIN_SECRET_BYTES = 16;

const utf8 = new TextDecoder("utf-8", { fatal: true });

async function read(fs: DurableFs, flag: string, path: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    throw new SecurityError(`cannot read ${flag} ${path}: ${e instanceof Error ? e.message : e}`);
  }
}

async function text(fs: DurableFs, flag: string, path: string): Promise<string> {
  try {
    return utf8.decode(await read(fs, flag, path));
  } catch (e) {
    if (e instanceof SecurityError) throw e;
    throw new SecurityError(`${flag} ${path} is not UTF-8 text`);
  }
}

/** Drop one trailing `\n` or `\r\n`, as `echo secret > file` leaves. */
function chomp(b: Uint8Array): Uint8Array {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

/** The DNS subject alternative names of a PEM certificate: the node ids it speaks for. */
export function certificateNames(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? "";
  return san.split(", ").filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4));
}

/** Load every file `config` names. Throws {@link SecurityError}. */
export async function loadSecurity(fs: DurableFs, config: RaftdConfig): Promise<Security> {
  let secret: Uint8Array | undefined;
  if (config.clusterSecret !== undefined) {
    secret = chomp(await read(fs, "-cluster-secret", config.clusterSecret));
    if (secret.length < MIN_SECRET_BYTES) {
      throw new SecurityError(`-cluster-secret ${config.clusterSecret}: at least ${MIN_SECRET_BYTES} bytes, please`);
    }
  }
  let token: string | undefined;
  if (config.adminToken !== undefined) {
    token = (await text(fs, "-admin-token", config.adminToken)).trim();
    if (token.length < MIN_SECRET_BYTES || /\s/.test(token)) {
      throw new SecurityError(
        `-admin-token ${config.adminToken}: one word of at least ${MIN_SECRET_BYTES} characters, please`,
      );
    }
  }
  const https = config.https && {
    cert: await text(fs, "-cert", config.https.cert),
    key: await text(fs, "-key", config.https.key),
  };
  const ca = config.ca === undefined ? undefined : await text(fs, "-ca", config.ca);
  let peerTls: Security["peerTls"];
  if (config.peerTls !== undefined) {
    const cert = await text(fs, "-peer-cert", config.peerTls.cert);
    let names: string[];
    try {
      names = certificateNames(cert);
    } catch (e) {
      throw new SecurityError(`-peer-cert ${config.peerTls.cert} is not a PEM certificate: ${(e as Error).message}`);
    }
    if (names.length === 0) {
      throw new SecurityError(
        `-peer-cert ${config.peerTls.cert} names no node id (it needs a DNS subject alternative name)`,
      );
    }
    peerTls = {
      cert,
      key: await text(fs, "-peer-key", config.peerTls.key),
      ca: await text(fs, "-peer-ca", config.peerTls.ca),
      names,
    };
  }
  return { secret, token, https, ca, peerTls };
}

/** One line saying how peers and admins are authenticated, for the startup log. */
export function describeSecurity(s: Security, config: RaftdConfig): string {
  const peers = s.peerTls
    ? `mutual TLS (${config.peerTransport === "http" ? "HTTP/2" : "TCP"}) on ${config.peerAddress}${
      s.secret ? " plus the cluster secret" : ""
    }`
    : s.secret
    ? "shared secret (challenge-response, MAC per record)"
    : config.insecure
    ? "UNAUTHENTICATED (-insecure)"
    : "unauthenticated (loopback only)";
  const admin = s.token ? "admin token" : "loopback clients only";
  return `peers: ${peers}; membership endpoints: ${admin}${s.secret ? " (joins also by secret proof)" : ""}`;
}
