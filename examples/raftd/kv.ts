/**
 * raftd's state machine: a key-value map plus the cluster's address book
 * (member id → `host:port` of its HTTP server, and of its mutual-TLS peer
 * listener when peers use mTLS), both replicated through the log so that
 * every node, after any restart, knows where every member lives.
 *
 * Commands are encoded compactly (one op byte, then length-prefixed fields);
 * applying one returns a {@link KvResult} the proposer hands to its client.
 * Snapshots hold both maps.
 *
 * @module
 */

import { concatBytes } from "../../adapters/transport/framing.ts";

/** A command for the state machine. Values are raw bytes (the HTTP body, unchanged). */
export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "cas"; readonly key: string; readonly prev: Uint8Array; readonly value: Uint8Array }
  | { readonly op: "setMember"; readonly id: string; readonly address: string; readonly peer?: string }
  | { readonly op: "removeMember"; readonly id: string };

/** What applying a command did. */
export type KvResult =
  | { readonly type: "ok" }
  | { readonly type: "deleted"; readonly existed: boolean }
  | { readonly type: "mismatch"; readonly current: Uint8Array | undefined }
  | { readonly type: "invalid"; readonly reason: string };

const OP_PUT = 1;
const OP_DELETE = 2;
const OP_CAS = 3;
const OP_SET_MEMBER = 4;
const OP_REMOVE_MEMBER = 5;
/** setMember with a peer (mTLS) address; plain OP_SET_MEMBER stays for members without one. */
const OP_SET_MEMBER_PEER = 6;

const SNAPSHOT_MAGIC = 0x52; // 'R'
/** Version 2 adds each member's peer address (empty: none); version 1 snapshots still restore. */
const SNAPSHOT_VERSION = 2;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Thrown when bytes are not a command or snapshot this module wrote. */
export class KvDecodeError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "KvDecodeError";
  }
}

// ---------------------------------------------------------------------------
// Byte encoding: unsigned LEB128 varints and length-prefixed byte strings.
// ---------------------------------------------------------------------------

class Writer {
  #buf: Uint8Array;
  #len = 0;

  /** @param capacity the initial buffer size (it grows as needed) */
  constructor(capacity = 64) {
    this.#buf = new Uint8Array(capacity);
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#room(1);
    this.#buf[this.#len++] = b;
  }

  varint(n: number): void {
    this.#room(8);
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#len++] = n;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  string(s: string): void {
    this.bytes(utf8.encode(s));
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** A record runs past the bytes received so far: parsing resumes once `needed` bytes (from the buffer's start) are there. */
class NeedMore {
  constructor(readonly needed: number) {}
}

class Reader {
  #pos = 0;
  /** @param partial the input may continue: its end throws {@link NeedMore}, not a decode error */
  constructor(readonly buf: Uint8Array, readonly partial = false) {}

  /** Bytes consumed. */
  get pos(): number {
    return this.#pos;
  }

  #short(needed: number): never {
    if (this.partial) throw new NeedMore(needed);
    throw new KvDecodeError(needed > this.#pos + 1 ? "length beyond end of input" : "unexpected end of input");
  }

  byte(): number {
    if (this.#pos >= this.buf.length) this.#short(this.#pos + 1);
    return this.buf[this.#pos++];
  }

  varint(): number {
    let n = 0;
    let mult = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      n += (b & 0x7f) * mult;
      if (b < 0x80) return n;
      mult *= 0x80;
    }
    throw new KvDecodeError("varint too long");
  }

  /** A length-prefixed byte string: a copy, or with `view` a view into the input (which must then stay unchanged). */
  bytes(view = false): Uint8Array {
    const n = this.varint();
    if (n > this.buf.length - this.#pos) this.#short(this.#pos + n);
    const at = this.#pos;
    this.#pos += n;
    return view ? this.buf.subarray(at, at + n) : this.buf.slice(at, at + n);
  }

  string(): string {
    try {
      return utf8Decoder.decode(this.bytes(true));
    } catch (e) {
      if (e instanceof KvDecodeError || e instanceof NeedMore) throw e;
      throw new KvDecodeError("invalid UTF-8");
    }
  }

  end(): void {
    if (this.#pos !== this.buf.length) throw new KvDecodeError(`${this.buf.length - this.#pos} trailing bytes`);
  }
}

/** Encode a command as log-entry bytes. */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  // Sized up front: a put is on every write's path, and growing the
  // writer's buffer (64 bytes, doubled) cost two copies per 128-byte value.
  const w = new Writer(cmd.op === "put" ? 1 + 2 * 8 + cmd.key.length * 3 + cmd.value.length : 64);
  switch (cmd.op) {
    case "put":
      w.byte(OP_PUT);
      w.string(cmd.key);
      w.bytes(cmd.value);
      break;
    case "delete":
      w.byte(OP_DELETE);
      w.string(cmd.key);
      break;
    case "cas":
      w.byte(OP_CAS);
      w.string(cmd.key);
      w.bytes(cmd.prev);
      w.bytes(cmd.value);
      break;
    case "setMember":
      w.byte(cmd.peer === undefined ? OP_SET_MEMBER : OP_SET_MEMBER_PEER);
      w.string(cmd.id);
      w.string(cmd.address);
      if (cmd.peer !== undefined) w.string(cmd.peer);
      break;
    case "removeMember":
      w.byte(OP_REMOVE_MEMBER);
      w.string(cmd.id);
      break;
  }
  return w.finish();
}

/** Decode log-entry bytes written by {@link encodeCommand}. Throws {@link KvDecodeError}. */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  const r = new Reader(bytes);
  const op = r.byte();
  let cmd: KvCommand;
  switch (op) {
    case OP_PUT:
      cmd = { op: "put", key: r.string(), value: r.bytes() };
      break;
    case OP_DELETE:
      cmd = { op: "delete", key: r.string() };
      break;
    case OP_CAS:
      cmd = { op: "cas", key: r.string(), prev: r.bytes(), value: r.bytes() };
      break;
    case OP_SET_MEMBER:
      cmd = { op: "setMember", id: r.string(), address: r.string() };
      break;
    case OP_SET_MEMBER_PEER:
      cmd = { op: "setMember", id: r.string(), address: r.string(), peer: r.string() };
      break;
    case OP_REMOVE_MEMBER:
      cmd = { op: "removeMember", id: r.string() };
      break;
    default:
      throw new KvDecodeError(`unknown op ${op}`);
  }
  r.end();
  return cmd;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Told the address book after each change: HTTP addresses, and peer (mTLS) addresses. */
export type MembersListener = (members: ReadonlyMap<string, string>, peers: ReadonlyMap<string, string>) => void;

/**
 * The replicated key-value store. Deterministic: the same commands in the
 * same order give the same state on every node (Raft's state-machine safety
 * is only as good as that).
 */
export class KvStore {
  #data = new Map<string, Uint8Array>();
  readonly #members = new Map<string, string>();
  readonly #peers = new Map<string, string>();
  readonly #onMembers: MembersListener | undefined;

  /** @param onMembers called after the address book changes (by a command or a restore) */
  constructor(onMembers?: MembersListener) {
    this.#onMembers = onMembers;
  }

  /** The value of `key`, if set. */
  get(key: string): Uint8Array | undefined {
    return this.#data.get(key);
  }

  /** Number of keys. */
  get size(): number {
    return this.#data.size;
  }

  /** The address book: member id → `host:port`. */
  members(): ReadonlyMap<string, string> {
    return this.#members;
  }

  /** Peer (mTLS) addresses of the members that have one. */
  peers(): ReadonlyMap<string, string> {
    return this.#peers;
  }

  /** Apply one committed command's bytes. Undecodable bytes are a no-op with an `invalid` result, never a crash. */
  applyBytes(bytes: Uint8Array): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeCommand(bytes);
    } catch (e) {
      return { type: "invalid", reason: e instanceof Error ? e.message : String(e) };
    }
    return this.apply(cmd);
  }

  /** Apply one command. */
  apply(cmd: KvCommand): KvResult {
    switch (cmd.op) {
      case "put":
        this.#data.set(cmd.key, cmd.value);
        return { type: "ok" };
      case "delete":
        return { type: "deleted", existed: this.#data.delete(cmd.key) };
      case "cas": {
        const current = this.#data.get(cmd.key);
        if (current === undefined || !sameBytes(current, cmd.prev)) return { type: "mismatch", current };
        this.#data.set(cmd.key, cmd.value);
        return { type: "ok" };
      }
      case "setMember":
        this.#members.set(cmd.id, cmd.address);
        if (cmd.peer === undefined) this.#peers.delete(cmd.id);
        else this.#peers.set(cmd.id, cmd.peer);
        this.#onMembers?.(this.#members, this.#peers);
        return { type: "ok" };
      case "removeMember":
        this.#members.delete(cmd.id);
        this.#peers.delete(cmd.id);
        this.#onMembers?.(this.#members, this.#peers);
        return { type: "ok" };
    }
  }

  /** Serialize both maps (keys sorted, so equal states give equal bytes). */
  snapshot(): Uint8Array {
    const w = new Writer();
    w.byte(SNAPSHOT_MAGIC);
    w.byte(SNAPSHOT_VERSION);
    const members = [...this.#members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    w.varint(members.length);
    for (const [id, address] of members) {
      w.string(id);
      w.string(address);
      w.string(this.#peers.get(id) ?? "");
    }
    const keys = [...this.#data.keys()].sort();
    w.varint(keys.length);
    for (const key of keys) {
      w.string(key);
      w.bytes(this.#data.get(key)!);
    }
    return w.finish();
  }

  /** Replace the whole state with a snapshot from {@link KvStore.snapshot}. Throws {@link KvDecodeError}, leaving the state unchanged. */
  restore(bytes: Uint8Array): void {
    // Values are copied out: views would keep the caller's whole buffer alive for as long as any value is.
    const restore = this.#restore(false);
    restore.write(bytes);
    restore.commit();
  }

  /**
   * A restore fed a snapshot chunk by chunk as it arrives (plank's
   * `StateMachine.beginRestore`): each chunk is decoded into new maps, and
   * the state is replaced only at {@link KvRestore.commit}. Until then, or
   * after {@link KvRestore.discard}, the store is as it was. It takes the
   * chunks it is given (plank hands it copies): values are kept as views into
   * them rather than copied one by one — a chunk's memory goes once all of
   * its values are overwritten or deleted.
   */
  beginRestore(): KvRestore {
    return this.#restore(true);
  }

  #restore(views: boolean): KvRestore {
    return new KvRestore(views, (data, members, peers) => {
      this.#data = data;
      this.#members.clear();
      for (const [k, v] of members) this.#members.set(k, v);
      this.#peers.clear();
      for (const [k, v] of peers) this.#peers.set(k, v);
      this.#onMembers?.(this.#members, this.#peers);
    });
  }
}

/**
 * A snapshot being decoded chunk by chunk into new maps; see
 * {@link KvStore.beginRestore}. A record split across chunks waits for the
 * bytes it needs (gathered, then joined once).
 */
export class KvRestore {
  readonly #views: boolean;
  readonly #install: (
    data: Map<string, Uint8Array>,
    members: Map<string, string>,
    peers: Map<string, string>,
  ) => void;
  readonly #data = new Map<string, Uint8Array>();
  readonly #members = new Map<string, string>();
  readonly #peers = new Map<string, string>();
  #phase: "header" | "memberCount" | "members" | "keyCount" | "keys" | "end" | "over" | "committed" = "header";
  #version = 0;
  /** Records left in the current phase. */
  #left = 0;
  /** Bytes received but not yet decoded (a record's beginning), and how many the next record needs. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #need = 0;

  /**
   * Built by {@link KvStore.beginRestore}.
   *
   * @param views keep values as views into the chunks written (which must then stay unchanged), not copies
   * @param install replaces the store's state with the decoded maps
   */
  constructor(
    views: boolean,
    install: (data: Map<string, Uint8Array>, members: Map<string, string>, peers: Map<string, string>) => void,
  ) {
    this.#views = views;
    this.#install = install;
  }

  /** Decodes the next chunk. Throws {@link KvDecodeError} on bytes that are no raftd snapshot. */
  write(chunk: Uint8Array): void {
    if (this.#phase === "over" || this.#phase === "committed") throw new KvDecodeError("the restore is over");
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes < this.#need) return;
    const buf = this.#pending.length === 1 ? this.#pending[0]! : concatBytes(this.#pending, this.#pendingBytes);
    const r = new Reader(buf, true);
    let mark = 0;
    this.#need = 0;
    try {
      while (this.#phase !== "end") {
        this.#record(r);
        mark = r.pos;
      }
      mark = r.pos;
    } catch (e) {
      if (!(e instanceof NeedMore)) {
        this.discard();
        throw e;
      }
      this.#need = e.needed - mark;
    }
    if (this.#phase === "end" && mark < buf.length) {
      this.discard();
      throw new KvDecodeError(`${buf.length - mark} trailing bytes`);
    }
    // The undecoded rest is kept as it is (a view: the chunk is this restore's).
    const rest = buf.subarray(mark);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
  }

  /** Decodes one record (or a count) of the current phase, advancing the phase. */
  #record(r: Reader): void {
    switch (this.#phase) {
      case "header": {
        if (r.byte() !== SNAPSHOT_MAGIC) throw new KvDecodeError("not a raftd snapshot");
        const version = r.byte();
        if (version !== 1 && version !== SNAPSHOT_VERSION) {
          throw new KvDecodeError(`unsupported snapshot version ${version}`);
        }
        this.#version = version;
        this.#phase = "memberCount";
        return;
      }
      case "memberCount":
        this.#left = r.varint();
        this.#phase = "members";
        return;
      case "members": {
        if (this.#left === 0) return void (this.#phase = "keyCount");
        const id = r.string();
        const address = r.string();
        const peer = this.#version === 1 ? "" : r.string();
        this.#members.set(id, address);
        if (peer !== "") this.#peers.set(id, peer);
        this.#left--;
        return;
      }
      case "keyCount":
        this.#left = r.varint();
        this.#phase = "keys";
        return;
      case "keys":
        if (this.#left === 0) return void (this.#phase = "end");
        this.#data.set(r.string(), r.bytes(this.#views));
        this.#left--;
        return;
    }
  }

  /** The whole snapshot was written (and verified by plank): replaces the store's state. Throws if it was cut short. */
  commit(): void {
    if (this.#phase === "over" || this.#phase === "committed") throw new KvDecodeError("the restore is over");
    if (this.#phase !== "end" || this.#pendingBytes > 0) {
      this.discard();
      throw new KvDecodeError("unexpected end of input");
    }
    this.#phase = "committed";
    this.#install(this.#data, this.#members, this.#peers);
  }

  /** Drops what was decoded; the store stays as it was. After {@link commit} it does nothing (the maps are the store's). */
  discard(): void {
    if (this.#phase === "committed") return;
    this.#phase = "over";
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#data.clear();
  }
}

/** UTF-8 bytes of `s` (for CAS `prev` values given as text). */
export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s);
}
