/**
 * The typed errors of a running node. Plain classes with a `readonly _tag`
 * (not `Data.TaggedError` class expressions, which JSR's no-slow-types check
 * refuses), so they work with `Effect.catchTag` and `instanceof` alike.
 *
 * @module
 */

import { formatCrc32c } from "../core/crc32c.ts";
import type { Index, NodeId, RejectReason, SnapshotMeta, Term } from "../core/types.ts";

/** The core refused a request; `leader` says where to retry, when known. */
export class RaftRejected extends Error {
  /** Discriminator. */
  readonly _tag = "RaftRejected" as const;
  /** Why the request was refused. */
  readonly reason: RejectReason;
  /** The leader this node knows of, if any (retry there). */
  readonly leader: NodeId | undefined;

  /**
   * Creates the error.
   * @param reason why
   * @param leader where to retry
   */
  constructor(reason: RejectReason, leader: NodeId | undefined) {
    super(`request rejected: ${reason}` + (leader !== undefined ? ` (leader: ${leader})` : ""));
    this.name = "RaftRejected";
    this.reason = reason;
    this.leader = leader;
  }
}

/**
 * A proposal was appended at `index` in `term`, but the entry applied at that
 * index has another term: a newer leader overwrote it, so it never took
 * effect (paper §5.3). Safe to retry.
 */
export class ProposalDropped extends Error {
  /** Discriminator. */
  readonly _tag = "ProposalDropped" as const;
  /** Where the proposal had been appended. */
  readonly index: Index;
  /** The term it had been appended in. */
  readonly term: Term;

  /**
   * Creates the error.
   * @param index where it was appended
   * @param term in which term
   */
  constructor(index: Index, term: Term) {
    super(`proposal at index ${index} (term ${term}) was overwritten by another leader`);
    this.name = "ProposalDropped";
    this.index = index;
    this.term = term;
  }
}

/**
 * The outcome of a request cannot be known: no answer came within the
 * node's `requestTimeoutMs` (e.g. a forwarded proposal whose answer was lost
 * on the network), or a snapshot replaced the entries it was waiting for.
 * A proposal or membership change failing with it **may or may not have
 * been applied**: retry only if applying it twice is harmless (or make the
 * command idempotent). A read failing with it changed nothing.
 */
export class OutcomeUnknown extends Error {
  /** Discriminator. */
  readonly _tag = "OutcomeUnknown" as const;

  /**
   * Creates the error.
   * @param detail what happened, and what it means for the caller
   */
  constructor(detail: string) {
    super(`outcome unknown: ${detail}`);
    this.name = "OutcomeUnknown";
  }
}

/** The node was stopped (or failed) before the request completed. */
export class NodeStopped extends Error {
  /** Discriminator. */
  readonly _tag = "NodeStopped" as const;

  /**
   * Creates the error.
   * @param cause the fatal error that stopped the node, if it did not stop cleanly
   */
  constructor(cause?: unknown) {
    super(cause === undefined ? "node stopped" : `node stopped: ${describe(cause)}`, { cause });
    this.name = "NodeStopped";
  }
}

/** A log or snapshot store operation failed. Fatal: the node stops (a failed fsync leaves the disk state unknown). */
export class StorageFailure extends Error {
  /** Discriminator. */
  readonly _tag = "StorageFailure" as const;
  /** What was being done, e.g. `"sync"`. */
  readonly operation: string;

  /**
   * Creates the error.
   * @param operation what was being done
   * @param cause the underlying error
   */
  constructor(operation: string, cause: unknown) {
    super(`storage ${operation} failed: ${describe(cause)}`, { cause });
    this.name = "StorageFailure";
    this.operation = operation;
  }
}

/**
 * A received snapshot's bytes do not match the checksum its sender stored
 * with it (or none came): the snapshot store dropped it, nothing became
 * current, and the node asks for it again. Not fatal.
 */
export class SnapshotChecksumMismatch extends Error {
  /** Discriminator. */
  readonly _tag = "SnapshotChecksumMismatch" as const;
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** The sender's CRC-32C of the data, if it sent one. */
  readonly expected: number | undefined;
  /** The CRC-32C of the bytes received. */
  readonly actual: number;

  /**
   * Creates the error.
   * @param meta the snapshot
   * @param expected the sender's checksum, if any
   * @param actual the checksum of what was received
   */
  constructor(meta: SnapshotMeta, expected: number | undefined, actual: number) {
    super(
      `snapshot ${meta.index}@${meta.term} ` +
        (expected === undefined
          ? "came without a checksum"
          : `failed its checksum (crc32c ${formatCrc32c(actual)}, sent ${formatCrc32c(expected)})`),
    );
    this.name = "SnapshotChecksumMismatch";
    this.meta = meta;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The user's state machine failed to snapshot or restore. Fatal for restore (the replica would diverge). */
export class StateMachineFailure extends Error {
  /** Discriminator. */
  readonly _tag = "StateMachineFailure" as const;
  /** `"snapshot"` or `"restore"`. */
  readonly operation: string;

  /**
   * Creates the error.
   * @param operation what was being done
   * @param cause the underlying error
   */
  constructor(operation: string, cause: unknown) {
    super(`state machine ${operation} failed: ${describe(cause)}`, { cause });
    this.name = "StateMachineFailure";
    this.operation = operation;
  }
}

/**
 * A command could not be encoded (on the proposing node: it never reached the
 * log) or an entry's bytes could not be decoded back into a command (on
 * every node: only that entry's proposal fails). `cause` is the codec's own
 * error (e.g. effect's `SchemaError`).
 */
export class CommandCodecError extends Error {
  /** Discriminator. */
  readonly _tag = "CommandCodecError" as const;
  /** `"encode"` (nothing was proposed) or `"decode"` (the entry is in the log; the state machine never saw it). */
  readonly phase: "encode" | "decode";

  /**
   * Creates the error.
   * @param phase encoding or decoding
   * @param cause the codec's error
   */
  constructor(phase: "encode" | "decode", cause: unknown) {
    super(`command ${phase} failed: ${describe(cause)}`, { cause });
    this.name = "CommandCodecError";
    this.phase = phase;
  }
}

/**
 * The state machine's `apply` threw (or rejected) for this command. The entry
 * is committed and every replica applied it the same way (apply is
 * deterministic), so only this proposal failed; `cause` is what `apply`
 * threw. The Promise API rejects with `cause` itself; the Effect API wraps it
 * so that its error channel stays exactly typed.
 */
export class ApplyFailure extends Error {
  /** Discriminator. */
  readonly _tag = "ApplyFailure" as const;
  /** Where the command was applied. */
  readonly index: Index | undefined;

  /**
   * Creates the error.
   * @param cause what `apply` threw
   * @param index the entry's index, when known
   */
  constructor(cause: unknown, index?: Index) {
    super(`apply failed: ${describe(cause)}`, { cause });
    this.name = "ApplyFailure";
    this.index = index;
  }
}

/**
 * A proposal was cancelled before it was handed to the leader (its caller
 * was interrupted, or its `signal` aborted, while it still waited on this
 * node): it was never appended anywhere and will never be applied.
 */
export class ProposalCancelled extends Error {
  /** Discriminator. */
  readonly _tag = "ProposalCancelled" as const;

  /** Creates the error. */
  constructor() {
    super("proposal cancelled before it was handed to the leader: it will not be applied");
    this.name = "ProposalCancelled";
  }
}

/** Any error a node's requests can fail with. */
export type RaftError = RaftRejected | ProposalDropped | OutcomeUnknown | NodeStopped | StorageFailure;

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
