/**
 * Crash safety through the real adapters (WAL with fsync, TCP on 127.0.0.1):
 * a writer with 64 proposals in flight is SIGKILLed mid-write after 50, 500
 * and 2,000 acknowledgements, then its data directory is recovered by a fresh
 * process that only reads its state back. Two topologies:
 *
 * - one node in one process;
 * - three nodes in three processes (the writer's own node forwards to the
 *   leader when it is a follower), all SIGKILLed at once.
 *
 * After recovery every acknowledged command must sit at the very position in
 * the state machine that its acknowledgement reported — so nothing
 * acknowledged was lost and nothing before it went missing or moved (the
 * recovered sequence has no holes) — each command is applied at most once,
 * and in a cluster every node recovers the same sequence. One more cycle per
 * topology restarts the writer on a recovered directory, kills it again and
 * checks both runs.
 *
 * The children run under the runtime running this file (`tests/crash/writer.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
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

const WRITER = fileURLToPath(new URL("./writer.ts", import.meta.url).href);

/** Starts `writer.ts <mode>` for a node of `t` under this runtime. */
const spawner = (t: Topology): SpawnNode => (mode, id, prefix) =>
  spawnChild(WRITER, [mode, id, join(t.root, id), JSON.stringify(t.peers), ...(prefix ? [prefix] : [])]);

/** `ack <value> <position>`. */
const parseAck = ([value, position]: readonly string[]): Ack => ({ value: value!, position: Number(position) });

const writeThenKill = (t: Topology, prefix: string, acks: number): Promise<Ack[]> =>
  writeThenKillAll(t, spawner(t), prefix, acks, parseAck);

const recover = (t: Topology): Promise<string[]> => recoverAll<string[]>(t, spawner(t));

for (const size of [1, 3]) {
  const what = size === 1 ? "one node" : "three node processes";
  for (const acks of [50, 500, 2000]) {
    test(`${runtime}, ${what}: SIGKILL after ${acks} acks keeps every acknowledged write in place, each once`, {
      timeout: 2 * PHASE_MS,
    }, async () => {
      const t = await topology(size);
      try {
        const acked = await writeThenKill(t, "w", acks);
        const applied = await recover(t);
        assertAcknowledgedInPlace(applied, acked);
        assertEachOnce(applied, ["w"]);
        assert.ok(applied.length >= acks);
      } finally {
        await rm(t.root, { recursive: true, force: true });
      }
    });
  }

  test(`${runtime}, ${what}: a restarted writer killed again keeps both runs' acknowledged writes`, {
    timeout: 4 * PHASE_MS,
  }, async () => {
    const t = await topology(size);
    try {
      const first = await writeThenKill(t, "w", 300);
      const recovered = await recover(t);
      assertAcknowledgedInPlace(recovered, first);

      const second = await writeThenKill(t, "r", 300);
      const applied = await recover(t);
      // The first run's recovered sequence, unchanged, then the second run's commands.
      assert.deepEqual(applied.slice(0, recovered.length), recovered);
      assert.ok(second.every((a) => a.position > recovered.length), "second run's commands follow the first's");
      assertAcknowledgedInPlace(applied, [...first, ...second]);
      assertEachOnce(applied, ["w", "r"]);
    } finally {
      await rm(t.root, { recursive: true, force: true });
    }
  });
}
