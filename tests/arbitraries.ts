/**
 * fast-check arbitraries for plank's core vocabulary (entries, hard state,
 * membership, snapshot metadata, every wire message), shared by the codec,
 * simulator and transport tests. They live outside `core/` because the core
 * must not import fast-check.
 *
 * Values are well-formed as types.ts describes them (config only on config
 * entries, empty data on noop/config entries, non-negative safe integers for
 * terms and indexes; in messages, terms and indexes within the wire bounds
 * and an AppendEntries' entries continuing its `prevIndex`/`prevTerm`, as
 * `decodeMessage` requires), but not necessarily meaningful to Raft.
 *
 * @module
 */

import fc from "fast-check";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Entry,
  ForwardPropose,
  ForwardProposeResponse,
  HardState,
  HeartbeatItem,
  HeartbeatResponseItem,
  HeartbeatResponses,
  Heartbeats,
  HostHeartbeat,
  InstallSnapshot,
  InstallSnapshotResponse,
  Membership,
  Message,
  MessageHeader,
  MessageType,
  NodeId,
  Proposal,
  ReadIndexRequest,
  ReadIndexResponse,
  RequestVote,
  RequestVoteResponse,
  SnapshotMeta,
  TimeoutNow,
} from "../core/types.ts";
import { MAX_WIRE_INDEX, MAX_WIRE_TERM } from "../core/codec/reader.ts";

/**
 * `fc.record` with ordinary prototypes: fast-check may otherwise build
 * null-prototype objects, which never deep-equal decoded values.
 */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

/**
 * A non-negative safe integer (term, index, offset): mostly small, sometimes
 * near 2^53, so every varint length gets exercised.
 */
export const natArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.nat(300) },
  { weight: 2, arbitrary: fc.nat() },
  { weight: 1, arbitrary: fc.maxSafeNat() },
);

/** An integer in [min, max], for ranges beyond 32 bits (fc.integer stops there). */
function safeRange(min: number, max: number): fc.Arbitrary<number> {
  return fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number);
}

/** A term or index a wire message may carry: mostly small, sometimes at the wire bound. */
export const wireNatArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.nat(300) },
  { weight: 2, arbitrary: fc.nat() },
  { weight: 1, arbitrary: safeRange(0, Math.min(MAX_WIRE_TERM, MAX_WIRE_INDEX)) },
  { weight: 1, arbitrary: fc.constant(Math.min(MAX_WIRE_TERM, MAX_WIRE_INDEX)) },
);

/** Any safe integer, negatives included (request ids, heartbeat sequence numbers). */
export const safeIntArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: -300, max: 300 }),
  fc.integer(),
  fc.maxSafeInteger(),
);

/**
 * A node id: usually a short ASCII name, sometimes any well-formed Unicode
 * (including the empty string and a leading BOM), to exercise the UTF-8 paths.
 */
export const nodeIdArb: fc.Arbitrary<NodeId> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom("n1", "n2", "n3", "node-4", "10.0.0.5:4001"),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.string({ unit: "binary", maxLength: 4 }).map((s) => "\uFEFF" + s),
  },
);

/** Payload bytes, up to `maxLength` (default 64). */
export const bytesArb = (maxLength = 64): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

const idsArb: fc.Arbitrary<NodeId[]> = fc.uniqueArray(nodeIdArb, {
  maxLength: 6,
});

/** A membership, joint (`outgoing` set, possibly empty) or not (`outgoing: undefined`). */
export const membershipArb: fc.Arbitrary<Membership> = record({
  voters: idsArb,
  learners: idsArb,
  outgoing: fc.option(idsArb, { nil: undefined }),
});

/** A log entry of any kind with the given term and index, config set exactly on config entries. */
function entryArbOf(term: fc.Arbitrary<number>, index: fc.Arbitrary<number>): fc.Arbitrary<Entry> {
  return fc.oneof(
    {
      weight: 4,
      arbitrary: record({
        term,
        index,
        kind: fc.constant("command" as const),
        data: bytesArb(),
        config: fc.constant(undefined),
      }),
    },
    {
      weight: 1,
      arbitrary: record({
        term,
        index,
        kind: fc.constant("config" as const),
        data: fc.constant(new Uint8Array(0)),
        config: membershipArb,
      }),
    },
    {
      weight: 1,
      arbitrary: record({
        term,
        index,
        kind: fc.constant("noop" as const),
        data: fc.constant(new Uint8Array(0)),
        config: fc.constant(undefined),
      }),
    },
  );
}

/** A log entry of any kind, with config set exactly on config entries. */
export const entryArb: fc.Arbitrary<Entry> = entryArbOf(natArb, natArb);

/** A run of up to `maxLength` (default 8) entries. */
export const entriesArb = (maxLength = 8): fc.Arbitrary<Entry[]> => fc.array(entryArb, { maxLength });

/** A hard state, with or without a vote. */
export const hardStateArb: fc.Arbitrary<HardState> = record({
  term: natArb,
  vote: fc.option(nodeIdArb, { nil: undefined }),
  commit: natArb,
});

/** Snapshot metadata. */
export const snapshotMetaArb: fc.Arbitrary<SnapshotMeta> = record({
  index: natArb,
  term: natArb,
  membership: membershipArb,
});

const wireSnapshotMetaArb: fc.Arbitrary<SnapshotMeta> = record({
  index: wireNatArb,
  term: wireNatArb,
  membership: membershipArb,
});

const headerArb: fc.Arbitrary<MessageHeader> = record({
  group: fc.oneof(fc.constant(0), natArb),
  from: nodeIdArb,
  to: nodeIdArb,
  term: wireNatArb,
});

/**
 * An AppendEntries as a leader builds it: entries at `prevIndex + 1, …` whose
 * terms never decrease from `prevTerm` and never exceed the message's term.
 */
const appendEntriesArb: fc.Arbitrary<AppendEntries> = fc.tuple(headerArb, wireNatArb, wireNatArb, natArb)
  .chain(([h, prevIndexDraw, prevTermDraw, extra]) => {
    const n = extra % 9;
    const prevIndex = Math.min(prevIndexDraw, MAX_WIRE_INDEX - n);
    const prevTerm = Math.min(prevTermDraw, h.term);
    return fc.record({
      entries: fc.array(entryArbOf(safeRange(prevTerm, h.term), fc.constant(0)), {
        minLength: n,
        maxLength: n,
      }).map((es) => {
        // Sorted terms keep the run non-decreasing; indices follow prevIndex.
        const terms = es.map((e) => e.term).sort((a, b) => a - b);
        return es.map((e, i) => ({ ...e, term: terms[i]!, index: prevIndex + 1 + i }));
      }),
      commit: wireNatArb,
      seq: safeIntArb,
      quiesce: fc.boolean(),
    }, { noNullPrototype: true }).map((b) => {
      const m: AppendEntries = {
        ...h,
        type: "AppendEntries" as const,
        prevIndex,
        prevTerm,
        entries: b.entries,
        commit: b.commit,
        seq: b.seq,
      };
      // Present only when set, as the core builds it.
      return b.quiesce ? { ...m, quiesce: true } : m;
    });
  });

/**
 * One group's item of a coalesced heartbeat: `prevTerm` at most `term` (as
 * its AppendEntries must), and often equal to it, and `commit` often equal to
 * `prevIndex`, so both the short and the long forms get exercised.
 */
export const heartbeatItemArb: fc.Arbitrary<HeartbeatItem> = fc.record({
  group: natArb,
  term: wireNatArb,
  prevIndex: wireNatArb,
  prevTermBelow: fc.option(wireNatArb, { nil: undefined }),
  commit: fc.option(wireNatArb, { nil: undefined }),
  seq: safeIntArb,
  quiesce: fc.boolean(),
}, { noNullPrototype: true }).map((x) => {
  const item: HeartbeatItem = {
    group: x.group,
    term: x.term,
    prevIndex: x.prevIndex,
    prevTerm: x.prevTermBelow === undefined ? x.term : Math.min(x.prevTermBelow, x.term),
    commit: x.commit ?? x.prevIndex,
    seq: x.seq,
  };
  return x.quiesce ? { ...item, quiesce: true } : item;
});

/** One group's item of coalesced heartbeat answers. */
export const heartbeatResponseItemArb: fc.Arbitrary<HeartbeatResponseItem> = record({
  group: natArb,
  term: wireNatArb,
  index: wireNatArb,
  seq: safeIntArb,
});

function withHeader<T extends { readonly type: MessageType }>(
  body: fc.Arbitrary<T>,
): fc.Arbitrary<MessageHeader & T> {
  return fc.tuple(headerArb, body).map(([h, b]) => ({ ...h, ...b }));
}

const proposalArb: fc.Arbitrary<Proposal> = record({
  requestId: safeIntArb,
  data: bytesArb(),
});

/** One arbitrary per message type, keyed by `type`. */
export const messageArbs: {
  readonly [K in MessageType]: fc.Arbitrary<Extract<Message, { type: K }>>;
} = {
  RequestVote: withHeader(record({
    type: fc.constant("RequestVote" as const),
    preVote: fc.boolean(),
    lastIndex: wireNatArb,
    lastTerm: wireNatArb,
    transfer: fc.boolean(),
  })) satisfies fc.Arbitrary<RequestVote>,
  RequestVoteResponse: withHeader(record({
    type: fc.constant("RequestVoteResponse" as const),
    preVote: fc.boolean(),
    granted: fc.boolean(),
  })) satisfies fc.Arbitrary<RequestVoteResponse>,
  AppendEntries: appendEntriesArb,
  AppendEntriesResponse: withHeader(record({
    type: fc.constant("AppendEntriesResponse" as const),
    success: fc.boolean(),
    index: wireNatArb,
    conflictTerm: wireNatArb,
    conflictIndex: wireNatArb,
    seq: safeIntArb,
  })) satisfies fc.Arbitrary<AppendEntriesResponse>,
  InstallSnapshot: withHeader(
    fc.tuple(
      record({
        type: fc.constant("InstallSnapshot" as const),
        meta: wireSnapshotMetaArb,
        offset: wireNatArb,
        data: bytesArb(256),
        done: fc.boolean(),
      }),
      fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
    ).map(([m, checksum]) => (checksum === undefined ? m : { ...m, checksum })),
  ) satisfies fc.Arbitrary<InstallSnapshot>,
  InstallSnapshotResponse: withHeader(record({
    type: fc.constant("InstallSnapshotResponse" as const),
    index: wireNatArb,
    offset: wireNatArb,
    done: fc.boolean(),
    success: fc.boolean(),
  })) satisfies fc.Arbitrary<InstallSnapshotResponse>,
  TimeoutNow: withHeader(
    record({ type: fc.constant("TimeoutNow" as const), candidate: nodeIdArb }),
  ) satisfies fc.Arbitrary<
    TimeoutNow
  >,
  Propose: withHeader(record({
    type: fc.constant("Propose" as const),
    proposals: fc.array(proposalArb, { maxLength: 6 }),
  })) satisfies fc.Arbitrary<ForwardPropose>,
  ProposeResponse: withHeader(record({
    type: fc.constant("ProposeResponse" as const),
    results: fc.array(record({ requestId: safeIntArb, index: wireNatArb }), {
      maxLength: 6,
    }),
  })) satisfies fc.Arbitrary<ForwardProposeResponse>,
  ReadIndex: withHeader(record({
    type: fc.constant("ReadIndex" as const),
    requestId: safeIntArb,
  })) satisfies fc.Arbitrary<ReadIndexRequest>,
  ReadIndexResponse: withHeader(record({
    type: fc.constant("ReadIndexResponse" as const),
    requestId: safeIntArb,
    index: wireNatArb,
  })) satisfies fc.Arbitrary<ReadIndexResponse>,
  HostHeartbeat: withHeader(record({ type: fc.constant("HostHeartbeat" as const) })) satisfies fc.Arbitrary<
    HostHeartbeat
  >,
  Heartbeats: withHeader(record({
    type: fc.constant("Heartbeats" as const),
    items: fc.array(heartbeatItemArb, { minLength: 1, maxLength: 8 }),
  })) satisfies fc.Arbitrary<Heartbeats>,
  HeartbeatResponses: withHeader(record({
    type: fc.constant("HeartbeatResponses" as const),
    items: fc.array(heartbeatResponseItemArb, { minLength: 1, maxLength: 8 }),
  })) satisfies fc.Arbitrary<HeartbeatResponses>,
};

/** Any wire message, every type equally likely. */
export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  ...(Object.values(messageArbs) as fc.Arbitrary<Message>[]),
);
