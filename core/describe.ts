/**
 * Short, stable text renderings of states, inputs, messages and effects, for
 * test failures, simulator traces and debug logs (like etcd's DescribeMessage).
 *
 * @module
 */

import { formatCrc32c } from "./crc32c.ts";
import { lastIndex } from "./log.ts";
import type { RaftState } from "./state.ts";
import type { Entry, Input, Membership, Message, RaftEffect } from "./types.ts";

function entries(es: readonly Entry[]): string {
  if (es.length === 0) return "[]";
  const first = es[0]!;
  const last = es[es.length - 1]!;
  const kinds = es.some((e) => e.kind !== "command") ? ` ${es.map((e) => e.kind[0]).join("")}` : "";
  return es.length === 1
    ? `[${first.index}@${first.term}${kinds}]`
    : `[${first.index}@${first.term}..${last.index}@${last.term} n=${es.length}${kinds}]`;
}

/** Renders one entry like `5@2` (a command), `5@2 config {a,b}` or `5@2 noop`. */
export function describeEntry(e: Entry): string {
  if (e.kind === "command") return `${e.index}@${e.term}`;
  return e.kind === "config"
    ? `${e.index}@${e.term} config ${describeMembership(e.config!)}`
    : `${e.index}@${e.term} noop`;
}

/** Renders a membership like `{a,b,c | learners d}` or `{a,b && a,c}` when joint. */
export function describeMembership(m: Membership): string {
  const voters = m.voters.join(",");
  const joint = m.outgoing ? ` && ${m.outgoing.join(",")}` : "";
  const learners = m.learners.length ? ` | learners ${m.learners.join(",")}` : "";
  const promote = m.promote?.length ? ` (promote ${m.promote.join(",")})` : "";
  return `{${voters}${joint}${learners}${promote}}`;
}

/** Renders a message on one line, e.g. `a->b AppendEntries t2 prev=4@1 [5@2] commit=4`. */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "RequestVote":
      return `${head}${m.preVote ? " pre" : ""}${m.transfer ? " transfer" : ""} last=${m.lastIndex}@${m.lastTerm}`;
    case "RequestVoteResponse":
      return `${head}${m.preVote ? " pre" : ""} ${m.granted ? "granted" : "rejected"}`;
    case "AppendEntries":
      return `${head} prev=${m.prevIndex}@${m.prevTerm} ${entries(m.entries)} commit=${m.commit} seq=${m.seq}${
        m.quiesce ? " quiesce" : ""
      }`;
    case "AppendEntriesResponse":
      return m.success
        ? `${head} ok index=${m.index} seq=${m.seq}`
        : `${head} reject index=${m.index} hint=${m.conflictIndex}@${m.conflictTerm}`;
    case "InstallSnapshot":
      return `${head} snap=${m.meta.index}@${m.meta.term} off=${m.offset} len=${m.data.byteLength}${
        m.done ? " done" : ""
      }${m.checksum === undefined ? "" : ` crc=${formatCrc32c(m.checksum)}`}`;
    case "InstallSnapshotResponse":
      return `${head} snap=${m.index} off=${m.offset}${m.done ? " done" : ""}${m.success ? "" : " aborted"}`;
    case "TimeoutNow":
      return `${head} candidate=${m.candidate}`;
    case "Propose":
      return `${head} n=${m.proposals.length}`;
    case "ProposeResponse":
      return `${head} ${m.results.map((r) => `${r.requestId}:${r.index}`).join(",")}`;
    case "ReadIndex":
      return `${head} req=${m.requestId}`;
    case "ReadIndexResponse":
      return `${head} req=${m.requestId} index=${m.index}`;
    case "HostHeartbeat":
      return head;
    case "Heartbeats":
      return `${head} n=${m.items.length} groups=${m.items.map((x) => x.group).join(",")}`;
    case "HeartbeatResponses":
      return `${head} n=${m.items.length} groups=${m.items.map((x) => x.group).join(",")}`;
  }
}

/** Renders an input on one line. */
export function describeInput(input: Input): string {
  switch (input.type) {
    case "Receive":
      return `recv ${describeMessage(input.message)}`;
    case "Propose":
      return `propose n=${input.proposals.length}`;
    case "ProposeConfChange":
      return `confchange ${JSON.stringify(input.change)} req=${input.requestId}`;
    case "ReadIndex":
      return `read req=${input.requestId}`;
    case "TransferLeadership":
      return `transfer to=${input.to} req=${input.requestId}`;
    case "Timeout":
      return `timeout ${input.timer}`;
    case "Persisted":
      return `persisted ${input.index}@${input.term}`;
    case "SnapshotTaken":
      return `snapshot-taken ${input.meta.index}@${input.meta.term}`;
    case "SnapshotRestored":
      return `snapshot-restored ${input.meta.index}@${input.meta.term}`;
    case "Unreachable":
      return `unreachable ${input.to}`;
    case "PeerDown":
      return `peer-down ${input.peer}`;
    case "PeerUp":
      return `peer-up ${input.peer}`;
  }
}

/** Renders an effect on one line. */
export function describeEffect(effect: RaftEffect): string {
  switch (effect.type) {
    case "Persist": {
      const hs = effect.hardState ? ` hs=t${effect.hardState.term}/v${effect.hardState.vote ?? "-"}` : "";
      const tr = effect.truncateFrom !== undefined ? ` truncate>=${effect.truncateFrom}` : "";
      const then = effect.after.length > 0 ? ` then ${effect.after.map(describeEffect).join("; ")}` : "";
      return `persist${hs}${tr} ${entries(effect.entries)}${then}`;
    }
    case "Send":
      return `send ${describeMessage(effect.message)}`;
    case "Apply":
      return `apply ${entries(effect.entries)}`;
    case "SetTimer":
      return `timer ${effect.timer} ${effect.ms}ms`;
    case "Proposed":
      return `proposed req=${effect.requestId} at ${effect.index}@${effect.term}`;
    case "Reject":
      return `reject req=${effect.requestId} ${effect.reason}${effect.leader ? ` leader=${effect.leader}` : ""}`;
    case "ReadReady":
      return `read-ready req=${effect.requestId} index=${effect.index}`;
    case "TransferDone":
      return `transfer-done req=${effect.requestId} ${effect.ok ? "ok" : "failed"}`;
    case "TakeSnapshot":
      return `take-snapshot ${effect.index}`;
    case "SendSnapshot":
      return `send-snapshot to=${effect.to} ${effect.meta.index}@${effect.meta.term}`;
    case "ReceiveSnapshotChunk":
      return `snapshot-chunk from=${effect.from} ${effect.meta.index} off=${effect.offset}${
        effect.done ? " done" : ""
      }`;
    case "SnapshotAck":
      return `snapshot-ack from=${effect.from} ${effect.index} off=${effect.offset}${effect.done ? " done" : ""}${
        effect.success ? "" : " aborted"
      }`;
    case "RoundAcked":
      return `round-acked from=${effect.from} seq=${effect.seq}`;
    case "Compact":
      return `compact ${effect.index}`;
    case "RoleChanged":
      return `role ${effect.role} t${effect.term}`;
    case "LeaderChanged":
      return `leader ${effect.leader ?? "none"} t${effect.term}`;
    case "Committed":
      return `committed ${effect.index}`;
    case "MembershipChanged":
      return `membership ${describeMembership(effect.membership)} at ${effect.index}`;
  }
}

/** Renders a node's state on one line, e.g. `a leader t3 vote=a last=10 stable=10 commit=9 applied=9`. */
export function describeState(s: RaftState): string {
  const role = s.role.kind === "follower" ? `follower(${s.role.leader ?? "-"})` : s.role.kind;
  const cfg = describeMembership(s.configs[s.configs.length - 1]!.membership);
  return `${s.config.id} ${role} t${s.term} vote=${s.vote ?? "-"} last=${lastIndex(s.log)} stable=${s.log.stable} ` +
    `commit=${s.commit} applied=${s.applied} ${cfg}`;
}
