/**
 * The child program of the multi-group crash test: one plank host of several
 * Raft groups on a data directory — one multi-group log with one fsync per
 * iteration, per-group snapshots, one TCP transport — under whichever runtime
 * runs it.
 *
 *   host_writer.ts write  <id> <dataDir> <peersJson> <groups> <snapshotEvery> [prefix]
 *   host_writer.ts member <id> <dataDir> <peersJson> <groups> <snapshotEvery>
 *   host_writer.ts verify <id> <dataDir> <peersJson> <groups> <snapshotEvery>
 *
 * A writer keeps 64 proposals in flight, spread over the groups in turn, all
 * through its own host (forwarded to each group's leader), and prints
 * `ack <group> <value> <position>` per proposal that resolved: `position` is
 * the command's 1-based place in that group's state machine, and a proposal
 * resolves only once committed (fsynced on a majority) and applied here. A
 * verifier recovers every group, reads each linearizably, prints
 * `{"<group>": [commands…], …}` as one JSON line, then keeps running (the
 * other verifiers need its votes) until stdin closes.
 *
 * @module
 */

import process from "node:process";
import { join } from "node:path";
import { membershipOf } from "../../core/membership.ts";
import type { Entry, GroupId } from "../../core/types.ts";
import type { DurableFs } from "../../adapters/storage/fs.ts";
import { MultiGroupLog } from "../../adapters/storage/multi_log.ts";
import { FileGroupSnapshots } from "../../adapters/storage/snapshots.ts";
import type { StreamTransport, StreamTransportOptions } from "../../adapters/transport/stream.ts";
import { createHost } from "../../effects/host/api.ts";
import type { HostGroup, HostStateMachine } from "../../effects/host/host_loop.ts";
import type { SnapshotReader } from "../../effects/ports/state_machine.ts";
import { emit, outcomeUnknown, refusal, sleep, stdinClosed, whenServed } from "./child.ts";

const IN_FLIGHT = 64;
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One group's commands in apply order; a command's result is its 1-based position; snapshots are the list as JSON. */
class AppliedList implements HostStateMachine {
  applied: string[] = [];
  apply(entry: Entry): number {
    this.applied.push(decoder.decode(entry.data));
    return this.applied.length;
  }
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.applied));
  }
  async restore(snapshot: SnapshotReader): Promise<void> {
    this.applied = JSON.parse(decoder.decode(await snapshot.bytes())) as string[];
  }
}

const [mode, id, dataDir, peersJson, groupsArg, everyArg, prefix = "w"] = process.argv.slice(2);
if (!["write", "member", "verify"].includes(mode ?? "") || !id || !dataDir || !peersJson || !groupsArg || !everyArg) {
  console.error(
    "usage: host_writer.ts write|member|verify <id> <dataDir> <peersJson> <groups> <snapshotEvery> [prefix]",
  );
  process.exit(2);
}
const peers = new Map(Object.entries(JSON.parse(peersJson) as Record<string, string>));
const groups: GroupId[] = Array.from({ length: Number(groupsArg) }, (_, i) => i + 1);

// Each runtime loads (and type-checks) only its own adapters: computed specifiers.
const adapters = `../../adapters/${isDeno ? "deno" : "bun"}`;
const fs: DurableFs = isDeno
  ? new ((await import(`${adapters}/fs.ts`)) as { DenoFs: new () => DurableFs }).DenoFs()
  : new ((await import(`${adapters}/fs.ts`)) as { BunFs: new () => DurableFs }).BunFs();
type Tcp = new (options: StreamTransportOptions) => StreamTransport;
const tcp = (await import(`${adapters}/tcp.ts`)) as { DenoTcpTransport?: Tcp; BunTcpTransport?: Tcp };
const transport = new (tcp.DenoTcpTransport ?? tcp.BunTcpTransport)!({
  clusterId: "host-crash",
  self: id,
  listen: peers.get(id)!,
});
await transport.start();

const host = await createHost({
  id,
  peers,
  log: await MultiGroupLog.open(fs, join(dataDir, "groups")),
  snapshots: await FileGroupSnapshots.open(fs, join(dataDir, "snapshots")),
  transport,
  // Three processes sharing two cores get slack, so leaders hold while loaded.
  config: { electionTimeoutMs: 500, heartbeatMs: 50, snapshotEvery: Number(everyArg) },
});
const machines = new Map<GroupId, AppliedList>();
const handles = new Map<GroupId, HostGroup>();
for (const g of groups) {
  const machine = new AppliedList();
  machines.set(g, machine);
  handles.set(g, await host.addGroup(g, membershipOf([...peers.keys()]), machine));
}

if (mode === "member") {
  await stdinClosed();
  await host.stop();
  process.exit(0);
}

if (mode === "verify") {
  // A read index is served once each group's leader committed an entry of its term, which commits
  // (and applies here) the whole recovered log. Restarting processes may take a few elections to settle.
  const out: Record<string, string[]> = {};
  for (const g of groups) {
    await whenServed(() => handles.get(g)!.readIndex(), 30_000);
    out[g] = [...machines.get(g)!.applied];
  }
  emit(JSON.stringify(out));
  await stdinClosed();
  await host.stop();
  process.exit(0);
}

// Write mode: wait until every group knows a leader, then keep 64 proposals in flight.
const deadline = performance.now() + 15_000;
while (!groups.every((g) => handles.get(g)!.status().leader !== undefined)) {
  if (performance.now() > deadline) {
    console.error("not every group has a leader within 15 s");
    process.exit(1);
  }
  await sleep(10);
}
let next = 1;
const proposeOne = (): void => {
  const n = next++;
  const g = groups[n % groups.length]!;
  const value = `${prefix}-${n}`;
  handles.get(g)!.propose(encoder.encode(value)).then(
    (position) => {
      emit(`ack ${g} ${value} ${position}`);
      proposeOne();
    },
    (e) => {
      // A refusal or an unknown outcome is no acknowledgement (never counted): propose a fresh value.
      const reason = refusal(e) ?? (outcomeUnknown(e) ? "unknown" : undefined);
      if (reason !== undefined) {
        emit(`refused ${g} ${value} ${reason}`);
        setTimeout(proposeOne, 20);
        return;
      }
      console.error(`propose ${value} to group ${g} failed: ${String(e)}`);
      process.exit(1);
    },
  );
};
for (let i = 0; i < IN_FLIGHT; i++) proposeOne();
