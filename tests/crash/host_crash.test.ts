/**
 * Crash safety of the multi-group host through the real adapters: three
 * processes, each one host of eight groups on one multi-group log (one fsync
 * per iteration for every group) and one TCP transport, are all SIGKILLed
 * while 64 proposals spread over the groups are in flight — after 50, 500 and
 * 2,000 acknowledgements, and with per-group snapshots every 50 entries. Then
 * fresh processes recover the data directories and read every group back.
 *
 * Per group, every acknowledged command must sit at the position its
 * acknowledgement reported (nothing acknowledged lost, nothing before it
 * missing or moved), each command applied at most once and in no other group,
 * and every process must recover the same sequences. One more cycle restarts
 * the writer on the recovered directories, kills it again and checks both runs.
 *
 * The children run under the runtime running this file (`tests/crash/host_writer.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type Ack,
  assertAcknowledgedInPlace,
  assertEachOnce,
  PHASE_MS,
  recover as recoverAll,
  runtime,
  spawnChild,
  type SpawnNode,
  type Topology,
  topology,
  writeThenKill as writeThenKillAll,
} from "./harness.ts";

const WRITER = fileURLToPath(new URL("./host_writer.ts", import.meta.url).href);
const GROUPS = 8;

/** An acknowledgement of one group. */
interface GroupAck extends Ack {
  readonly group: string;
}

/** What a recovery read back: each group's commands in order. */
type Recovered = Record<string, string[]>;

const spawner = (t: Topology, snapshotEvery: number): SpawnNode => (mode, id, prefix) =>
  spawnChild(WRITER, [
    ...[mode, id, join(t.root, id), JSON.stringify(t.peers), String(GROUPS), String(snapshotEvery)],
    ...(prefix ? [prefix] : []),
  ]);

/** `ack <group> <value> <position>`. */
const parseAck = ([group, value, position]: readonly string[]): GroupAck => ({
  group: group!,
  value: value!,
  position: Number(position),
});

/** How many groups hold a snapshot file on some node of `t` (per-group stores under `<node>/snapshots/<group>/`). */
function groupsWithSnapshots(t: Topology): number {
  const groups = new Set<string>();
  for (const id of t.ids) {
    for (const entry of readdirSync(join(t.root, id, "snapshots"), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && /^snap-\d+-\d+\.snap$/.test(entry.name)) groups.add(`${id}/${entry.parentPath}`);
    }
  }
  return groups.size;
}

/** Checks every group's recovered sequence against the acknowledgements given in it. */
function assertGroups(recovered: Recovered, acked: readonly GroupAck[], prefixes: readonly string[]): void {
  assert.deepEqual(Object.keys(recovered).sort(), Array.from({ length: GROUPS }, (_, i) => String(i + 1)).sort());
  const everywhere = new Set<string>();
  for (const [group, applied] of Object.entries(recovered)) {
    assertAcknowledgedInPlace(applied, acked.filter((a) => a.group === group));
    assertEachOnce(applied, prefixes);
    for (const value of applied) {
      assert.ok(!everywhere.has(value), `${value} applied in two groups`);
      everywhere.add(value);
    }
  }
}

for (const snapshotEvery of [0, 50]) {
  const what = `three hosts of ${GROUPS} groups${snapshotEvery ? `, snapshots every ${snapshotEvery}` : ""}`;
  for (const acks of snapshotEvery ? [500] : [50, 500, 2000]) {
    test(
      `${runtime}, ${what}: SIGKILL after ${acks} acks keeps every group's acknowledged writes in place, each once`,
      {
        timeout: 2 * PHASE_MS,
      },
      async () => {
        const t = await topology(3);
        try {
          const spawn = spawner(t, snapshotEvery);
          const acked = await writeThenKillAll(t, spawn, "w", acks, parseAck);
          const recovered = await recoverAll<Recovered>(t, spawn);
          assertGroups(recovered, acked, ["w"]);
          const total = Object.values(recovered).reduce((n, applied) => n + applied.length, 0);
          assert.ok(total >= acks);
          // Recovery went through the groups' snapshots, not only their logs.
          if (snapshotEvery) assert.ok(groupsWithSnapshots(t) > 0, "no group took a snapshot");
        } finally {
          await rm(t.root, { recursive: true, force: true });
        }
      },
    );
  }

  test(`${runtime}, ${what}: a restarted writer killed again keeps both runs' acknowledged writes`, {
    timeout: 4 * PHASE_MS,
  }, async () => {
    const t = await topology(3);
    try {
      const spawn = spawner(t, snapshotEvery);
      const first = await writeThenKillAll(t, spawn, "w", 300, parseAck);
      const recovered = await recoverAll<Recovered>(t, spawn);
      assertGroups(recovered, first, ["w"]);

      const second = await writeThenKillAll(t, spawn, "r", 300, parseAck);
      const applied = await recoverAll<Recovered>(t, spawn);
      // Each group: the first run's recovered sequence, unchanged, then the second run's commands.
      for (const [group, before] of Object.entries(recovered)) {
        assert.deepEqual(applied[group]!.slice(0, before.length), before, `group ${group}`);
        for (const a of second.filter((a) => a.group === group)) assert.ok(a.position > before.length);
      }
      assertGroups(applied, [...first, ...second], ["w", "r"]);
    } finally {
      await rm(t.root, { recursive: true, force: true });
    }
  });
}
