/**
 * The vocabulary of plank's pure Raft core: identifiers, log entries, the
 * persistent hard state, membership, the wire messages, the inputs `step`
 * accepts and the effects it returns.
 *
 * Everything here is plain, immutable data. Nothing in `core/` performs I/O,
 * reads a clock or draws random numbers: those arrive as inputs.
 *
 * @module
 */

/** A node's identity within a cluster. Stable across restarts. */
export type NodeId = string;
/** A Raft term (paper §5.1). Starts at 0; increases monotonically. */
export type Term = number;
/** A log index. The first entry has index 1; 0 means "none". */
export type Index = number;
/** Identifies one Raft group so a transport can carry many (0 for now). */
export type GroupId = number;

/** What an entry carries: a user command, a membership change, or the leader's no-op. */
export type EntryKind = "command" | "config" | "noop";

/**
 * One log entry. `data` is the user's command for `command` entries and is
 * empty otherwise; `config` is set only on `config` entries and holds the
 * membership that takes effect when the entry is appended (thesis §4.1).
 */
export interface Entry {
  /** Term of the leader that created the entry. */
  readonly term: Term;
  /** Position in the log. */
  readonly index: Index;
  /** What the entry carries. */
  readonly kind: EntryKind;
  /** The command's bytes (empty for `noop` and `config`). Passed by reference, never copied. */
  readonly data: Uint8Array;
  /** The new membership, for `config` entries only. */
  readonly config: Membership | undefined;
}

/** What must survive a crash, written before any message that depends on it is sent (Figure 2, "Persistent state"). */
export interface HardState {
  /** Latest term this node has seen. */
  readonly term: Term;
  /** Candidate this node voted for in `term`, if any. */
  readonly vote: NodeId | undefined;
  /** Highest index known committed. Persisted as a hint only; safety does not depend on it. */
  readonly commit: Index;
}

/**
 * A cluster configuration. `voters` decide elections and commits; `learners`
 * receive the log but never vote. During joint consensus (thesis §4.3)
 * `outgoing` holds the old voter set and every decision needs a majority of
 * both sets.
 */
export interface Membership {
  /** Voting members (the incoming set during a joint change). */
  readonly voters: readonly NodeId[];
  /** Non-voting members that receive the log. */
  readonly learners: readonly NodeId[];
  /** The old voter set while in a joint configuration, otherwise undefined. */
  readonly outgoing: readonly NodeId[] | undefined;
  /**
   * Learners to promote to voters automatically once they have caught up
   * (thesis §4.2.1). Kept in the configuration so the mark survives a change
   * of leader. Absent or empty: none.
   */
  readonly promote?: readonly NodeId[];
}

/** Metadata describing a snapshot: the last index and term it covers and the membership at that point. */
export interface SnapshotMeta {
  /** Last log index included in the snapshot. */
  readonly index: Index;
  /** Term of that entry. */
  readonly term: Term;
  /** Membership as of `index`. */
  readonly membership: Membership;
}

/** A membership change request (thesis §4.1 single-server steps, §4.3 joint changes). */
export type ConfChange =
  /**
   * Add a voter. A node not yet a member joins as a learner marked for
   * promotion, and the leader promotes it once it has caught up (§4.2.1); a
   * learner is promoted at once.
   */
  | { readonly type: "addVoter"; readonly node: NodeId }
  | { readonly type: "addLearner"; readonly node: NodeId }
  | { readonly type: "promote"; readonly node: NodeId }
  | { readonly type: "remove"; readonly node: NodeId }
  | { readonly type: "joint"; readonly voters: readonly NodeId[]; readonly learners?: readonly NodeId[] };

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** Fields every message carries. */
export interface MessageHeader {
  /** Raft group this message belongs to. */
  readonly group: GroupId;
  /** Sender. */
  readonly from: NodeId;
  /** Recipient. */
  readonly to: NodeId;
  /** Sender's current term (for pre-vote requests: the term it would campaign in). */
  readonly term: Term;
}

/** RequestVote RPC (Figure 2) or a pre-vote probe (thesis §9.6) when `preVote` is true. */
export interface RequestVote extends MessageHeader {
  /** Discriminator. */
  readonly type: "RequestVote";
  /** True for a pre-vote: nobody changes term or records a vote. */
  readonly preVote: boolean;
  /** Index of the candidate's last entry. */
  readonly lastIndex: Index;
  /** Term of the candidate's last entry. */
  readonly lastTerm: Term;
  /**
   * Set when the campaign was started by TimeoutNow (§3.10). A voter skips the
   * leader-stickiness check for it only if its own leader announced this
   * candidate (see {@link TimeoutNow}); otherwise the flag is ignored.
   */
  readonly transfer: boolean;
}

/** Reply to {@link RequestVote}. */
export interface RequestVoteResponse extends MessageHeader {
  /** Discriminator. */
  readonly type: "RequestVoteResponse";
  /** Echoes the request's `preVote`. */
  readonly preVote: boolean;
  /** Whether the vote was granted. */
  readonly granted: boolean;
}

/** AppendEntries RPC (Figure 2). Empty `entries` is a heartbeat. */
export interface AppendEntries extends MessageHeader {
  /** Discriminator. */
  readonly type: "AppendEntries";
  /** Index of the entry immediately preceding `entries`. */
  readonly prevIndex: Index;
  /** Term of that entry. */
  readonly prevTerm: Term;
  /** Entries to append, in order, possibly empty. */
  readonly entries: readonly Entry[];
  /** Leader's commit index. */
  readonly commit: Index;
  /** Heartbeat round the leader was in; echoed back to confirm leadership for reads. */
  readonly seq: number;
  /**
   * Set on a heartbeat of an idle, fully replicated leader that is about to
   * quiesce (`RaftConfig.quiesce`, see `core/quiesce.ts`): a follower as far
   * as the leader may stop its election timer until something wakes it.
   * Absent (never false) otherwise, so a single group's bytes are unchanged.
   */
  readonly quiesce?: true;
}

/** Reply to {@link AppendEntries}. */
export interface AppendEntriesResponse extends MessageHeader {
  /** Discriminator. */
  readonly type: "AppendEntriesResponse";
  /** Whether the consistency check passed and the entries are durable. */
  readonly success: boolean;
  /** On success: last index now known to match the leader. On failure: the rejected `prevIndex`. */
  readonly index: Index;
  /**
   * On failure, a hint for fast back-off: the term of the follower's entry at
   * `prevIndex` (0 if it has none) and the first index it holds of that term
   * (or its last index + 1 when its log is too short).
   */
  readonly conflictTerm: Term;
  /** See `conflictTerm`. */
  readonly conflictIndex: Index;
  /** Echo of the request's `seq`. */
  readonly seq: number;
}

/** One chunk of a snapshot streamed to a follower (Figure 13, chunked). */
export interface InstallSnapshot extends MessageHeader {
  /** Discriminator. */
  readonly type: "InstallSnapshot";
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
  /** Byte offset of `data` within the snapshot. */
  readonly offset: number;
  /** This chunk. */
  readonly data: Uint8Array;
  /** True on the last chunk. */
  readonly done: boolean;
  /**
   * CRC-32C of the whole snapshot's data, as the leader stored it; sent with
   * the last chunk. The receiver restores nothing whose bytes do not match it.
   */
  readonly checksum?: number;
}

/** Reply to {@link InstallSnapshot}. */
export interface InstallSnapshotResponse extends MessageHeader {
  /** Discriminator. */
  readonly type: "InstallSnapshotResponse";
  /** Snapshot index the reply is about. */
  readonly index: Index;
  /** Offset the follower expects next (resumption point), or the full size when done. */
  readonly offset: number;
  /** True once the snapshot is installed and durable. */
  readonly done: boolean;
  /** False when the follower aborted the transfer (e.g. offset mismatch it cannot resume from). */
  readonly success: boolean;
}

/**
 * A leadership transfer's hand-over (thesis §3.10), from the leader to every
 * voter: the `candidate` campaigns at once, bypassing its election timeout;
 * the others learn that a transfer campaign by `candidate` is the leader's.
 */
export interface TimeoutNow extends MessageHeader {
  /** Discriminator. */
  readonly type: "TimeoutNow";
  /** The node the leader hands over to. */
  readonly candidate: NodeId;
}

/** Proposals a follower forwards to its leader. */
export interface ForwardPropose extends MessageHeader {
  /** Discriminator. */
  readonly type: "Propose";
  /** The forwarded proposals; request ids are the origin node's. */
  readonly proposals: readonly Proposal[];
}

/** The leader's answer to {@link ForwardPropose}: where each proposal landed, or why it did not. */
export interface ForwardProposeResponse extends MessageHeader {
  /** Discriminator. */
  readonly type: "ProposeResponse";
  /** Per request id: the index it was appended at (with `term`), or 0 if rejected. */
  readonly results: readonly { readonly requestId: number; readonly index: Index }[];
}

/** A follower asks the leader for a read index on behalf of its clients (§6.4). */
export interface ReadIndexRequest extends MessageHeader {
  /** Discriminator. */
  readonly type: "ReadIndex";
  /** Request id at the origin node. */
  readonly requestId: number;
}

/** The leader's answer to {@link ReadIndexRequest}. */
export interface ReadIndexResponse extends MessageHeader {
  /** Discriminator. */
  readonly type: "ReadIndexResponse";
  /** Request id at the origin node. */
  readonly requestId: number;
  /** The read index, or 0 when the leader could not serve it. */
  readonly index: Index;
}

/**
 * A host's liveness beacon to another host (many groups per process): one per
 * pair of processes per heartbeat interval, whatever the number of groups, so
 * quiescent groups can tell a live leader from a lost one. It carries no Raft
 * state (`group` and `term` are 0) and the core ignores it.
 */
export interface HostHeartbeat extends MessageHeader {
  /** Discriminator. */
  readonly type: "HostHeartbeat";
}

/**
 * What one group's heartbeat carries inside {@link Heartbeats}: every field
 * of an empty {@link AppendEntries} that is not the pair's `from`/`to`, so the
 * receiving host rebuilds exactly the message the group's leader sent.
 */
export interface HeartbeatItem {
  /** The group. */
  readonly group: GroupId;
  /** The leader's term in that group. */
  readonly term: Term;
  /** {@link AppendEntries.prevIndex}. */
  readonly prevIndex: Index;
  /** {@link AppendEntries.prevTerm}. */
  readonly prevTerm: Term;
  /** {@link AppendEntries.commit}. */
  readonly commit: Index;
  /** {@link AppendEntries.seq}: the heartbeat round that confirms reads and leases (§6.4). */
  readonly seq: number;
  /** {@link AppendEntries.quiesce}. */
  readonly quiesce?: true;
}

/**
 * Coalesced heartbeats (many groups per process, as CockroachDB's): every
 * empty AppendEntries one host's groups send to one peer process in one
 * iteration, as one message. Only hosts send and expand it (the core never
 * sees it: the receiving host steps each group with its own AppendEntries);
 * `group` and `term` of the header are 0.
 */
export interface Heartbeats extends MessageHeader {
  /** Discriminator. */
  readonly type: "Heartbeats";
  /** One per empty AppendEntries, in the order the groups sent them. */
  readonly items: readonly HeartbeatItem[];
}

/**
 * What one group's successful answer carries inside
 * {@link HeartbeatResponses} (`success` is true and the conflict hints are
 * 0 on every successful {@link AppendEntriesResponse}).
 */
export interface HeartbeatResponseItem {
  /** The group. */
  readonly group: GroupId;
  /** The follower's term in that group. */
  readonly term: Term;
  /** {@link AppendEntriesResponse.index}. */
  readonly index: Index;
  /** {@link AppendEntriesResponse.seq}: the echoed round. */
  readonly seq: number;
}

/**
 * Coalesced successful AppendEntries answers from one host's groups to one
 * peer process in one iteration (see {@link Heartbeats}); `group` and `term`
 * of the header are 0.
 */
export interface HeartbeatResponses extends MessageHeader {
  /** Discriminator. */
  readonly type: "HeartbeatResponses";
  /** One per successful AppendEntriesResponse, in the order the groups sent them. */
  readonly items: readonly HeartbeatResponseItem[];
}

/** Every message of the wire protocol. */
export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ForwardPropose
  | ForwardProposeResponse
  | ReadIndexRequest
  | ReadIndexResponse
  | HostHeartbeat
  | Heartbeats
  | HeartbeatResponses;

/** The `type` tag of every message. */
export type MessageType = Message["type"];

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/** A user command with the id the interpreter uses to answer its caller. */
export interface Proposal {
  /** Chosen by the interpreter; unique per node while pending. */
  readonly requestId: number;
  /** The command's bytes. */
  readonly data: Uint8Array;
}

/** The timers the core asks for. Setting one replaces the previous of the same kind. */
export type TimerKind = "election" | "heartbeat" | "quorum" | "transfer";

/** What `step` accepts. */
export type Input =
  | { readonly type: "Receive"; readonly message: Message }
  | { readonly type: "Propose"; readonly proposals: readonly Proposal[] }
  | { readonly type: "ProposeConfChange"; readonly requestId: number; readonly change: ConfChange }
  /** A linearizable read. `now` (the interpreter's monotonic clock, ms) enables lease reads. */
  | { readonly type: "ReadIndex"; readonly requestId: number; readonly now?: number }
  | { readonly type: "TransferLeadership"; readonly requestId: number; readonly to: NodeId }
  /** A timer fired. `now` (monotonic ms) lets the leader date its heartbeat rounds for leases. */
  | { readonly type: "Timeout"; readonly timer: TimerKind; readonly now?: number }
  /** Entries up to `index` (whose entry has `term`) are durable. */
  | { readonly type: "Persisted"; readonly index: Index; readonly term: Term }
  /** A snapshot covering up to `index` is durable; the core may compact behind it. */
  | { readonly type: "SnapshotTaken"; readonly meta: SnapshotMeta }
  /** A received snapshot was installed into the state machine and is durable. */
  | { readonly type: "SnapshotRestored"; readonly meta: SnapshotMeta }
  /** The interpreter could not deliver to `to` (unreachable / send queue full). */
  | { readonly type: "Unreachable"; readonly to: NodeId }
  /**
   * The host's failure detector lost `peer` (no beacon for an election
   * timeout). A quiescent group it concerns wakes (see `core/quiesce.ts`);
   * for any other group it is a no-op.
   */
  | { readonly type: "PeerDown"; readonly peer: NodeId }
  /**
   * The host's failure detector hears `peer` again after reporting it down.
   * A follower that `PeerDown` of its leader woke, and that heard nothing
   * from its group since, quiesces again (see `core/quiesce.ts`); for any
   * other group it is a no-op.
   */
  | { readonly type: "PeerUp"; readonly peer: NodeId };

/** The `type` tag of every input. */
export type InputType = Input["type"];

// ---------------------------------------------------------------------------
// Effects
// ---------------------------------------------------------------------------

/** A node's role (thesis §3.3, plus the pre-candidate of §9.6). */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** Why a request was refused. */
export type RejectReason =
  | "not-leader" // this node is not the leader and could not forward
  | "dropped" // the entry was overwritten by another leader, or the request was lost
  | "transferring" // a leadership transfer is in progress
  | "conf-change-pending" // another membership change is still in flight
  | "unsafe-conf-change" // the change would wedge the cluster (e.g. empty voter set)
  | "too-large" // the proposal exceeds the uncommitted-bytes limit
  | "timeout"; // a transfer or forwarded request did not complete in time

/** Transmit `message`, at once. */
export interface SendEffect {
  /** Discriminator. */
  readonly type: "Send";
  /** What to transmit. */
  readonly message: Message;
}

/** Stream the latest snapshot to `to` in chunks (the interpreter reads it from the snapshot store). */
export interface SendSnapshotEffect {
  /** Discriminator. */
  readonly type: "SendSnapshot";
  /** The follower. */
  readonly to: NodeId;
  /** The leader's term the stream belongs to. */
  readonly term: Term;
  /** What the snapshot covers. */
  readonly meta: SnapshotMeta;
}

/** What may only happen once a {@link PersistEffect} is durable. */
export type DeferredEffect = SendEffect | SendSnapshotEffect;

/**
 * Make durable: first drop entries from `truncateFrom` on, then append
 * `entries`, and record `hardState`; then — once this Persist and every
 * earlier one are durable — carry out `after`. Persists complete in the order
 * they were returned (one may carry nothing to write: it then only orders its
 * `after` behind the earlier writes). Entries written are reported back with
 * a `Persisted` input.
 *
 * This is ordering rule 1, decided here once for every interpreter (as etcd's
 * asynchronous-storage mode attaches responses to its storage writes): votes,
 * acknowledgements and anything else that reveals this node's state wait for
 * the disk; a leader's `AppendEntries` and `TimeoutNow` go at once (thesis
 * §10.2.1: it may send entries it is still writing, and counts itself only once
 * they are durable) — but only once the write of the term it leads in is
 * durable, or after a crash it could reuse that term with another log; request
 * forwarding carries no Raft state and goes at once too.
 */
export interface PersistEffect {
  /** Discriminator. */
  readonly type: "Persist";
  /** The hard state to record, if it changed. */
  readonly hardState: HardState | undefined;
  /** Entries to append. */
  readonly entries: readonly Entry[];
  /** Drop entries from this index on first. */
  readonly truncateFrom: Index | undefined;
  /** Sends (and snapshot streams) that may start only once this Persist is durable. */
  readonly after: readonly DeferredEffect[];
}

/**
 * What `step` returns for the interpreter to carry out, in order. Effects
 * named in the past tense are notes for listeners and metrics.
 */
export type RaftEffect =
  | PersistEffect
  | SendEffect
  /** Feed committed, durable entries to the state machine, in order. */
  | { readonly type: "Apply"; readonly entries: readonly Entry[] }
  /** (Re)arm `timer` to fire after `ms` milliseconds, replacing any pending one of that kind. */
  | { readonly type: "SetTimer"; readonly timer: TimerKind; readonly ms: number }
  /** A proposal was appended at `index` in `term`; it succeeds iff that entry is applied with that term. */
  | { readonly type: "Proposed"; readonly requestId: number; readonly index: Index; readonly term: Term }
  /** A request was refused. `leader` tells the caller where to retry. */
  | {
    readonly type: "Reject";
    readonly requestId: number;
    readonly reason: RejectReason;
    readonly leader: NodeId | undefined;
  }
  /** A read may be served once the state machine has applied `index` (§6.4). */
  | { readonly type: "ReadReady"; readonly requestId: number; readonly index: Index }
  /** A leadership transfer finished (`ok`) or was abandoned. */
  | { readonly type: "TransferDone"; readonly requestId: number; readonly ok: boolean }
  /** Ask the state machine for a snapshot covering up to `index` (compaction policy). */
  | { readonly type: "TakeSnapshot"; readonly index: Index }
  | SendSnapshotEffect
  /**
   * A follower answered about a snapshot transfer (after the core has taken
   * note): the snapshot stream to `from` continues, resumes or ends with it.
   */
  | {
    readonly type: "SnapshotAck";
    readonly from: NodeId;
    readonly term: Term;
    readonly index: Index;
    readonly offset: number;
    readonly done: boolean;
    readonly success: boolean;
  }
  /** Note: `from` acknowledged heartbeat round `seq` for the first time (round-trip measurements). */
  | { readonly type: "RoundAcked"; readonly from: NodeId; readonly seq: number }
  /** Store a received snapshot chunk; when `done`, restore the state machine from it and answer with `SnapshotRestored`. */
  | {
    readonly type: "ReceiveSnapshotChunk";
    readonly from: NodeId;
    readonly meta: SnapshotMeta;
    readonly offset: number;
    readonly data: Uint8Array;
    readonly done: boolean;
    /** The sender's CRC-32C of the whole snapshot (on the last chunk): see {@link InstallSnapshot.checksum}. */
    readonly checksum: number | undefined;
  }
  /** Drop log entries up to and including `index`, now covered by a snapshot. */
  | { readonly type: "Compact"; readonly index: Index }
  /** Note: the role changed. */
  | { readonly type: "RoleChanged"; readonly role: Role; readonly term: Term }
  /** Note: the known leader changed (undefined: none known). */
  | { readonly type: "LeaderChanged"; readonly leader: NodeId | undefined; readonly term: Term }
  /** Note: the commit index advanced. */
  | { readonly type: "Committed"; readonly index: Index }
  /** Note: membership changed (on append of a config entry). */
  | { readonly type: "MembershipChanged"; readonly membership: Membership; readonly index: Index };

/** The `type` tag of every effect. */
export type RaftEffectType = RaftEffect["type"];
