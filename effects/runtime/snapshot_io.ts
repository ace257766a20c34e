/**
 * The I/O of snapshot transfer in the production loop: reading the byte
 * ranges the driver's snapshot senders ask for from the snapshot store and
 * sending them, off the loop and in order per follower. Which ranges, when,
 * and what an answer means is the driver's (`effects/driver/`); this module
 * only moves bytes.
 *
 * @module
 */

import { Effect, type Fiber, Result } from "effect";
import type { NodeId, SnapshotMeta } from "../../core/types.ts";
import type { ChunkSend, SnapshotInfo, StoreOp } from "../driver/driver.ts";
import { chunkMessage } from "../driver/snapshot_sender.ts";
import { crc32c } from "../../core/crc32c.ts";
import { SnapshotChecksumMismatch, StateMachineFailure, StorageFailure } from "../errors.ts";
import type {
  RestoreInProgress,
  SnapshotData,
  SnapshotReader,
  SnapshotSink,
  StateMachine,
  StoredSnapshot,
} from "../ports/mod.ts";

import type { SnapshotStore, Transport } from "../ports/mod.ts";

/** Every byte of `chunks` in one buffer. */
async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    parts.push(chunk);
    size += chunk.length;
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A stored snapshot as the state machine's `restore` reads it: streamed
 * from the store (whose read verifies the checksum before the last chunk).
 * A failure to read it is the store's (`StorageFailure`).
 */
export function snapshotReader(snap: StoredSnapshot): SnapshotReader {
  const chunks = async function* () {
    try {
      yield* snap.read();
    } catch (e) {
      throw e instanceof StorageFailure ? e : new StorageFailure("snapshot read", e);
    }
  };
  return { meta: snap.meta, size: snap.size, [Symbol.asyncIterator]: () => chunks(), bytes: () => collect(chunks()) };
}

/**
 * Most bytes of a received snapshot kept in memory for its restore; a larger
 * snapshot is restored by reading the stored file back, so that memory stays
 * bounded by this (plus the state machine's own copy).
 */
export const RETAIN_RECEIVED_BYTES = 64 * 1024 * 1024;

/**
 * The chunks of a snapshot being received, as the store accepted them, so
 * that the state machine restores from the bytes the store verified instead
 * of a second read of the whole file. Each chunk is copied as it is kept
 * (a memcpy, far cheaper than reading and checksumming the file again), so
 * that no later reuse of a transport's buffer can change bytes the store has
 * already checked.
 */
export class ReceivedChunks {
  readonly #chunks: Uint8Array[] = [];
  #bytes = 0;
  #overflowed = false;

  /** Keeps `chunk` (the next accepted one), unless the total would pass {@link RETAIN_RECEIVED_BYTES}. */
  add(chunk: Uint8Array): void {
    if (this.#overflowed) return;
    if (this.#bytes + chunk.length > RETAIN_RECEIVED_BYTES) {
      this.#overflowed = true;
      this.#chunks.length = 0;
      return;
    }
    this.#chunks.push(chunk.slice());
    this.#bytes += chunk.length;
  }

  /**
   * `stored` read from memory: undefined (read the file) if chunks were
   * dropped for the cap or do not add up to what the store holds.
   */
  asStored(stored: StoredSnapshot): StoredSnapshot | undefined {
    if (this.#overflowed || this.#bytes !== stored.size) return undefined;
    const chunks = this.#chunks;
    return {
      meta: stored.meta,
      size: stored.size,
      checksum: stored.checksum,
      read(offset = 0): AsyncIterable<Uint8Array> {
        if (!(offset >= 0 && offset <= stored.size)) {
          throw new RangeError(`offset ${offset} outside snapshot of ${stored.size} bytes`);
        }
        return (async function* () {
          let at = 0;
          for (const c of chunks) {
            if (at + c.length > offset) yield offset > at ? c.subarray(offset - at) : c;
            at += c.length;
          }
        })();
      },
    };
  }
}

/** Restores the state machine from a stored snapshot; a failure of the store stays a `StorageFailure`. */
export function restoreFrom(
  sm: Pick<StateMachine, "restore">,
  snap: StoredSnapshot,
): Effect.Effect<void, StorageFailure | StateMachineFailure> {
  return Effect.tryPromise({
    try: async () => await sm.restore(snapshotReader(snap)),
    catch: (e) => e instanceof StorageFailure ? e : new StateMachineFailure("restore", e),
  });
}

/**
 * The chunks of what a state machine's `snapshot()` returned, in order; a
 * failure while producing them is the state machine's (`StateMachineFailure`),
 * so that the store does not take it for its own.
 */
export async function* snapshotChunks(data: SnapshotData): AsyncGenerator<Uint8Array> {
  let source: Iterable<unknown> | AsyncIterable<unknown>;
  try {
    source = data instanceof Uint8Array ? [data] : isPromiseLike(data) ? [await data] : data;
  } catch (e) {
    throw new StateMachineFailure("snapshot", e);
  }
  const it = Symbol.asyncIterator in source
    ? (source as AsyncIterable<unknown>)[Symbol.asyncIterator]()
    : (source as Iterable<unknown>)[Symbol.iterator]();
  let finished = false;
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await it.next();
        if (!next.done && !(next.value instanceof Uint8Array)) {
          throw new TypeError("a snapshot chunk is not a Uint8Array");
        }
      } catch (e) {
        finished = true;
        throw new StateMachineFailure("snapshot", e);
      }
      if (next.done) return void (finished = true);
      // Errors of whoever consumes the chunk (the store) are not caught here: they stay the store's.
      yield next.value as Uint8Array;
    }
  } finally {
    // The store stopped early (it failed): let the state machine release what it holds.
    if (!finished) await it.return?.();
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<Uint8Array> {
  return typeof (v as { then?: unknown }).then === "function";
}

/** What the streams tell the loop. */
export interface StreamReports {
  /** A chunk could not be handed to the transport, or the snapshot was replaced mid-stream. */
  unreachable(peer: NodeId): void;
  /** This node cannot read its own snapshot: it stops (fail-stop). */
  fatal(error: StorageFailure): void;
  /** The snapshot the driver is streaming to `peer` now, if any (`NodeDriver.streaming`). */
  streaming(peer: NodeId): SnapshotMeta | undefined;
}

interface Stream {
  readonly queue: ChunkSend[];
  /** The fiber draining the queue, while one is (a token: only the fiber that took it gives it back). */
  runner: object | undefined;
  reader: AsyncIterator<Uint8Array> | undefined;
  readerAt: number;
  snap: StoredSnapshot | undefined;
  /** Lets go of `snap` ({@link StoredSnapshot.retain}), while it is held. */
  release: (() => Promise<void>) | undefined;
  sending: SnapshotMeta | undefined;
  /** CRC-32C of `snap`'s bytes [0, crcAt) as sent so far (a stream's bursts each open a new reader). */
  crc: number;
  crcAt: number;
}

const sameSnapshot = (a: SnapshotMeta | undefined, b: SnapshotMeta): boolean =>
  a !== undefined && a.index === b.index && a.term === b.term;

/**
 * Per follower, the chunks waiting to be read and sent, and the reader
 * positioned in the snapshot. A stream holds the snapshot it sends until the
 * driver ends the stream ({@link ChunkStreams.sweep}): a newer snapshot
 * stored meanwhile does not remove it, so the transfer finishes instead of
 * starting over (and, with snapshots taken faster than one transfer takes,
 * starting over for ever). The snapshot the driver knows as its latest is
 * held too ({@link ChunkStreams.offer}), from the moment the store returns it:
 * a stream that begins on it finds it even if a newer one was stored before
 * the driver heard of that (the core asks for the snapshot the driver knows).
 */
export class ChunkStreams {
  readonly #snapshots: SnapshotStore;
  readonly #transport: Transport;
  readonly #chunkBytes: number;
  readonly #reports: StreamReports;
  readonly #streams = new Map<NodeId, Stream>();
  #stopped = false;
  /** The snapshot the driver knows as its latest, and the hold on it. */
  #current: { readonly snap: StoredSnapshot; readonly held: Promise<(() => Promise<void>) | undefined> } | undefined;

  /** Streams reading from `snapshots` in chunks of `chunkBytes` and sending over `transport`. */
  constructor(snapshots: SnapshotStore, transport: Transport, chunkBytes: number, reports: StreamReports) {
    this.#snapshots = snapshots;
    this.#transport = transport;
    this.#chunkBytes = Math.max(1, chunkBytes);
    this.#reports = reports;
  }

  /** Queues `chunks` (in order per follower) and starts a sender fiber for each follower that has none. */
  send(chunks: readonly ChunkSend[]): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      for (const c of chunks) {
        const to = c.header.to;
        let s = this.#streams.get(to);
        if (!s) {
          this.#streams.set(
            to,
            s = {
              queue: [],
              runner: undefined,
              reader: undefined,
              readerAt: -1,
              snap: undefined,
              release: undefined,
              sending: undefined,
              crc: 0,
              crcAt: 0,
            },
          );
        }
        s.queue.push(c);
        if (s.runner === undefined) {
          const runner = {};
          s.runner = runner;
          this.#running++;
          yield* Effect.forkChild(this.#run(to, s, runner));
        }
      }
    });
  }

  /**
   * `snap` is the snapshot the driver now knows as its latest (stored from a
   * capture, installed from a leader, or found at start), held until the
   * next one is offered; the one before is let go. `held` is a hold taken
   * on it already ({@link holdFor}: as the store returned it, before the
   * driver heard of it), else one is taken now.
   */
  offer(snap: StoredSnapshot | undefined, held?: Promise<(() => Promise<void>) | undefined>): void {
    const old = this.#current;
    // The same one again, or an older one (a capture stored after a newer snapshot was installed): the driver's
    // latest stays the newer one, so that is the one to keep held.
    if (
      snap !== undefined && old !== undefined &&
      (sameSnapshot(old.snap.meta, snap.meta) || snap.meta.index < old.snap.meta.index)
    ) {
      if (held) letGoOf(held);
      return;
    }
    this.#current = snap === undefined || this.#stopped ? undefined : { snap, held: held ?? holdFor(snap) };
    if (snap !== undefined && this.#stopped && held) letGoOf(held);
    if (old) letGoOf(old.held);
  }

  /** Stops sending (the node stops); readers are closed as their fibers end, snapshots held are let go. */
  stop(): void {
    this.offer(undefined);
    this.#stopped = true;
    for (const s of this.#streams.values()) {
      s.queue.length = 0;
      if (s.runner === undefined) void this.#letGo(s);
    }
  }

  /** Whether a stream is reading or holds a snapshot (so {@link sweep} may have something to do). */
  get active(): boolean {
    return this.#holding > 0 || this.#running > 0;
  }

  /**
   * Lets go of the snapshots of streams the driver has ended (finished,
   * given up, paused, or replaced by one of another snapshot). The loop
   * calls it after each round it stepped the driver in; a stream still
   * reading is looked at again when it ends.
   */
  sweep(): void {
    for (const [to, s] of this.#streams) {
      if (
        s.release !== undefined && s.runner === undefined && !sameSnapshot(this.#reports.streaming(to), s.snap!.meta)
      ) {
        void this.#letGo(s);
      }
    }
  }

  #holding = 0;
  #running = 0;

  #letGo(s: Stream): Promise<void> {
    if (s.release !== undefined) this.#holding--;
    return letGo(s);
  }

  /** `runner` gives the stream back (no fiber drains it any more). */
  #release(s: Stream, runner: object): void {
    if (s.runner !== runner) return;
    s.runner = undefined;
    this.#running--;
  }

  #run(to: NodeId, s: Stream, runner: object): Effect.Effect<void> {
    return Effect.promise(async () => {
      // A chunk queued while a round was finishing (its awaits) saw the stream taken and started no
      // fiber: it is this one's to send. The stream is given back only with nothing queued, with no
      // await between that check and the give-back.
      while (!this.#stopped) {
        try {
          await this.#drain(to, s);
        } catch (e) {
          const outcome = await this.#failed(to, s, e).catch((f) => {
            s.queue.length = 0;
            if (!this.#stopped) this.#reports.fatal(new StorageFailure("snapshot read", f));
            return "fatal" as const;
          });
          if (outcome === "fatal") break;
        }
        if (s.queue.length === 0) break;
      }
      // Stopped while this round ran (stop() lets go only of idle streams): its snapshot is let go here.
      if (this.#stopped) await this.#letGo(s);
      this.#release(s, runner);
    }).pipe(Effect.ensuring(Effect.sync(() => this.#release(s, runner))));
  }

  /**
   * A round failed reading the snapshot: if a newer snapshot replaced it
   * mid-stream (a store that does not retain), the core asks for the new one
   * ("unreachable"); otherwise this node cannot read, or vouch for, its own
   * snapshot ("fatal", fail-stop).
   */
  async #failed(to: NodeId, s: Stream, e: unknown): Promise<"unreachable" | "fatal"> {
    const error = e instanceof StorageFailure ? e : new StorageFailure("snapshot read", e);
    // The snapshot being sent: the one opened, or (if opening it failed) the one the chunk names.
    const meta = s.snap?.meta ?? s.sending;
    s.queue.length = 0;
    await closeReader(s).catch(() => {});
    await this.#letGo(s);
    const latest = await Effect.runPromise(Effect.result(this.#snapshots.latest));
    const now = Result.isSuccess(latest) ? latest.success : undefined;
    if (meta && now && !sameSnapshot(now.meta, meta)) {
      this.#reports.unreachable(to);
      return "unreachable";
    }
    s.queue.length = 0;
    if (!this.#stopped) this.#reports.fatal(error);
    return "fatal";
  }

  async #drain(to: NodeId, s: Stream): Promise<void> {
    try {
      while (s.queue.length > 0 && !this.#stopped) {
        const c = s.queue.shift()!;
        s.sending = c.meta;
        let snap = s.snap;
        if (snap === undefined || !sameSnapshot(snap.meta, c.meta)) {
          await closeReader(s);
          await this.#letGo(s);
          // The driver's latest (held since the store returned it), else whatever the store has now.
          const current = this.#current?.snap;
          snap = s.snap = current !== undefined && sameSnapshot(current.meta, c.meta)
            ? current
            : await Effect.runPromise(this.#snapshots.latest);
          if (snap === undefined || !sameSnapshot(snap.meta, c.meta)) {
            this.#reports.unreachable(to);
            s.queue.length = 0;
            return;
          }
          // Held for the stream: a newer snapshot stored from now on leaves this one be.
          if (snap.retain !== undefined) {
            const release = await snap.retain();
            if (release === undefined) {
              // Replaced before the hold: the core asks for the newer one.
              s.snap = undefined;
              this.#reports.unreachable(to);
              s.queue.length = 0;
              return;
            }
            s.release = release;
            this.#holding++;
          }
          s.crc = 0;
          s.crcAt = 0;
        }
        let data: Uint8Array = new Uint8Array(0);
        if (c.chunk.length > 0) {
          if (s.reader === undefined || s.readerAt !== c.chunk.offset) {
            await closeReader(s);
            // Unchecked by the store: the stream checksums what it sends itself (vouchFor), once.
            s.reader = snap.read(c.chunk.offset, Math.max(this.#chunkBytes, c.chunk.length), false)[
              Symbol.asyncIterator
            ]();
            s.readerAt = c.chunk.offset;
          }
          const next = await s.reader.next();
          if (next.done) throw new Error(`snapshot ended at ${s.readerAt} of ${snap.size} bytes`);
          data = next.value.subarray(0, c.chunk.length);
          s.readerAt += next.value.length;
          if (next.value.length !== c.chunk.length) await closeReader(s);
          // A pass from the start (a follower that refused what it got asks for it all again) is checked afresh.
          if (c.chunk.offset === 0) s.crc = s.crcAt = 0;
          if (c.chunk.offset === s.crcAt) {
            s.crc = crc32c(data, s.crc);
            s.crcAt += data.length;
          }
        }
        if (c.chunk.done) await vouchFor(s, snap, c.checksum);
        if (!this.#transport.send(chunkMessage(c.header, c.meta, c.chunk, data, c.checksum))) {
          this.#reports.unreachable(to);
          s.queue.length = 0;
          return;
        }
      }
    } finally {
      // Between bursts (the window is full, answers are awaited) the file is not held open: a stream
      // the driver ends never says so here, and an open handle left to the collector is an error on Bun.
      await closeReader(s);
      // The driver may have ended the stream while this burst was read (its sweep skipped it).
      if (s.release !== undefined && (this.#stopped || !sameSnapshot(this.#reports.streaming(to), s.snap!.meta))) {
        await this.#letGo(s);
      }
    }
  }
}

/**
 * A hold on `snap` ({@link StoredSnapshot.retain}), taken at the call: a
 * snapshot stored or installed is held from the moment the store returns it
 * until the streams let go of it, so the driver's latest is always readable.
 */
export function holdFor(snap: StoredSnapshot): Promise<(() => Promise<void>) | undefined> {
  return snap.retain?.().catch(() => undefined) ?? Promise.resolve(undefined);
}

/**
 * Lets go of a hold taken with {@link holdFor}, in the background. A removal
 * that fails then (the snapshot was replaced) leaves the file behind, which
 * the next snapshot stored removes: nothing reads it any more, so it is no
 * reason to stop, and it must not escape as an unhandled rejection.
 */
export function letGoOf(held: Promise<(() => Promise<void>) | undefined>): void {
  void held.then((release) => release?.()).catch(() => {});
}

/**
 * Before the last chunk leaves: the bytes sent match the checksum sent with
 * it, or the leader fail-stops (it cannot vouch for its own snapshot). The
 * store can check only a read from offset 0 to the end, but a stream reads in
 * bursts, each from where the last one ended: the stream reads unchecked and
 * carries the checksum across its bursts (so each byte is checksummed once),
 * and a stream that did not send from 0 (a resume) reads the whole snapshot
 * once.
 */
async function vouchFor(s: Stream, snap: StoredSnapshot, checksum: number): Promise<void> {
  let crc = s.crc;
  if (s.crcAt !== snap.size) {
    crc = 0;
    for await (const chunk of snap.read(0, undefined, false)) crc = crc32c(chunk, crc);
    // Once is enough for this pass: a re-sent last chunk (an idle rewind, a resume) does not read it all again.
    s.crc = crc;
    s.crcAt = snap.size;
  }
  if (crc !== checksum) {
    // Damage: let the store check a whole read too, whose error names the file and offset it knows.
    for await (const _ of snap.read(0)) { /* fails before the end if the store checks */ }
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    throw new Error(
      `snapshot ${snap.meta.index}-${snap.meta.term}: checksum mismatch (crc32c ${hex(crc)}, stored ${hex(checksum)})`,
    );
  }
}

/** Releases the snapshot `s` holds; it is looked up afresh for the next chunk. */
async function letGo(s: Stream): Promise<void> {
  const release = s.release;
  s.release = undefined;
  s.snap = undefined;
  // A removal that fails here leaves a replaced snapshot behind, which the next one stored removes.
  await release?.().catch(() => {});
}

async function closeReader(s: Stream): Promise<void> {
  const r = s.reader;
  s.reader = undefined;
  s.readerAt = -1;
  await r?.return?.();
}

/** What a snapshot being received tells its shell, which hands it to the driver. */
export interface IntakeReports {
  /** The store refused what was received (checksum mismatch): `NodeDriver.receiveRefused`. */
  refused(from: NodeId, meta: SnapshotMeta, reason: string): void;
  /** The snapshot is durable and the state machine restored from it: `NodeDriver.snapshotInstalled` (and `ChunkStreams.offer`). */
  installed(info: SnapshotInfo, stored: StoredSnapshot): void;
  /** The state machine's streamed restore failed; the snapshot is restored whole instead: `NodeDriver.restoreFellBack`. */
  fellBack?(meta: SnapshotMeta, reason: string): void;
}

/**
 * A follower's side of receiving snapshots into one store: the driver's
 * {@link StoreOp}s carried out in order. The last op makes the snapshot
 * current only if its bytes match the leader's checksum (end to end), then
 * restores the state machine from the chunks the store accepted. A state
 * machine with `beginRestore` is fed each accepted chunk as it comes instead,
 * and its restore is committed only once the store has made the snapshot
 * durable and current — discarded on anything else. One per node (or per
 * hosted group).
 */
export class SnapshotIntake {
  readonly #store: SnapshotStore;
  readonly #sm: Pick<StateMachine, "restore" | "beginRestore">;
  #sink: SnapshotSink | undefined = undefined;
  /** The chunks the sink accepted, kept so the restore need not read the file back (none past the cap). */
  #received: ReceivedChunks | undefined = undefined;
  /** The state machine's restore fed as chunks arrive, while it has taken every chunk. */
  #restoring: RestoreInProgress | undefined = undefined;

  /** Receives into `store`, restoring `sm`. */
  constructor(store: SnapshotStore, sm: Pick<StateMachine, "restore" | "beginRestore">) {
    this.#store = store;
    this.#sm = sm;
  }

  /** Drops the streamed restore, if any (the state machine keeps its state). */
  #discard(): void {
    const restoring = this.#restoring;
    this.#restoring = undefined;
    try {
      restoring?.discard();
    } catch {
      // Nothing of it was installed; the state machine's trouble dropping it is not the node's.
    }
  }

  /**
   * Abandons a snapshot being received, if any (its temporary file closed
   * and removed): the node or group is going away. Best effort.
   */
  close(): Effect.Effect<void> {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#received = undefined;
    this.#discard();
    return sink ? Effect.ignore(sink.abort) : Effect.void;
  }

  /**
   * Hands the streamed restore its next chunk (a copy, the restore's to
   * keep). Should it refuse it, the streamed restore is dropped and the
   * snapshot is restored whole, from the store, once verified: the chunk may
   * have been damaged in transit, which only the checksum at the end tells.
   */
  #feed(chunk: Uint8Array, meta: SnapshotMeta, reports: IntakeReports): Effect.Effect<void> {
    const restoring = this.#restoring!;
    return Effect.promise(async () => {
      try {
        await restoring.write(chunk.slice());
      } catch (e) {
        if (this.#restoring !== restoring) return;
        this.#discard();
        reports.fellBack?.(meta, `its write refused a chunk: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  /** Carries out `op` (in the driver's order); a failed store is fail-stop, a refused checksum is reported. */
  run(op: StoreOp, reports: IntakeReports): Effect.Effect<void, StorageFailure | StateMachineFailure> {
    return Effect.gen({ self: this }, function* () {
      switch (op.op) {
        case "abort":
          if (this.#sink) yield* this.#sink.abort;
          this.#sink = undefined;
          this.#received = undefined;
          this.#discard();
          return;
        case "begin": {
          this.#discard();
          this.#sink = yield* this.#store.receive(op.meta);
          const begin = this.#sm.beginRestore;
          if (begin !== undefined) {
            try {
              this.#restoring = begin.call(this.#sm, op.meta);
            } catch (e) {
              this.#restoring = undefined; // Restored whole at the end instead.
              reports.fellBack?.(op.meta, `beginRestore threw: ${e instanceof Error ? e.message : String(e)}`);
            }
          }
          // Kept for a restore from memory at the end, unless the state machine takes the chunks as they come.
          this.#received = this.#restoring === undefined ? new ReceivedChunks() : undefined;
          return;
        }
        case "write":
          if (this.#sink) {
            const written = yield* this.#sink.writeChunk(op.offset, op.data);
            if (written.accepted) {
              this.#received?.add(op.data);
              if (this.#restoring !== undefined) yield* this.#feed(op.data, this.#sink.meta, reports);
            }
          }
          return;
        case "finish": {
          const sink = this.#sink;
          const received = this.#received;
          const restoring = this.#restoring;
          this.#sink = undefined;
          this.#received = undefined;
          if (!sink) return this.#discard();
          // End to end: the store makes the bytes current only if they are the leader's (its checksum).
          const finished = yield* Effect.result(sink.finish(op.checksum));
          if (Result.isFailure(finished)) {
            this.#discard();
            if (!(finished.failure instanceof SnapshotChecksumMismatch)) return yield* Effect.fail(finished.failure);
            return reports.refused(op.from, op.meta, finished.failure.message);
          }
          const stored = finished.success;
          this.#restoring = undefined;
          if (restoring !== undefined) {
            // Every chunk was taken, and the snapshot is now verified and durable: the streamed restore is the one.
            yield* Effect.tryPromise({
              try: async () => await restoring.commit(),
              catch: (e) => new StateMachineFailure("restore", e),
            });
          } else {
            // The bytes the store just verified against the leader's checksum, from memory: reading the file back
            // would be a second pass over the whole snapshot that durability does not need.
            yield* restoreFrom(this.#sm, received?.asStored(stored) ?? stored);
          }
          reports.installed({ meta: stored.meta, size: stored.size, checksum: stored.checksum }, stored);
          return;
        }
      }
    });
  }
}

/** What storing a captured snapshot tells its shell (each on the loop, via the shell's queue). */
export interface CaptureReports {
  /** Durable: `NodeDriver.snapshotStored`. */
  stored(info: SnapshotInfo, stored: StoredSnapshot): void;
  /** The state machine could not snapshot (not fatal): `NodeDriver.captureFailed`. */
  failed(reason: string): void;
  /** The store failed: the node (host) stops. */
  fatal(error: StorageFailure): void;
}

/**
 * Captures `sm` now, at `meta` (what `NodeDriver.captureMeta` returned:
 * exactly the applied index), and stores it in a child fiber, streamed
 * chunk by chunk, off the loop. Only once the snapshot is durable does the
 * driver hear `stored`, and only then does its core compact behind it
 * (`SnapshotTaken` → `Compact`, §7 / thesis §5.1): a crash in between
 * leaves the snapshot and the whole log.
 */
export function captureSnapshot(
  meta: SnapshotMeta,
  sm: Pick<StateMachine, "snapshot">,
  store: SnapshotStore,
  reports: CaptureReports,
): Effect.Effect<Fiber.Fiber<void> | undefined> {
  let captured: SnapshotData;
  try {
    captured = sm.snapshot();
  } catch (e) {
    reports.failed(`the state machine's snapshot() threw: ${String(e)}`);
    return Effect.succeed(undefined);
  }
  const work = Effect.gen(function* () {
    const stored = yield* store.write(meta, snapshotChunks(captured));
    reports.stored({ meta, size: stored.size, checksum: stored.checksum }, stored);
  }).pipe(
    Effect.catch((e) => Effect.sync(() => e instanceof StorageFailure ? reports.fatal(e) : reports.failed(e.message))),
  );
  return Effect.forkChild(work);
}
