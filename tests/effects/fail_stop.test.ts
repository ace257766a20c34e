import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Effect, Layer } from "effect";
import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import { layer, portsLayer, Raft } from "../../effect.ts";
import { createNode, type RaftEvent, StorageFailure } from "../../mod.ts";
import { rejects } from "../contract/wal.ts";
import { KvMachine, testConfig, waitFor } from "./testkit.ts";

/** A memory log whose fsync fails with EIO once `failing` is set, counting the syncs attempted. */
function failingLog() {
  const control = { failing: false, syncsAfterFailure: 0 };
  const log = new MemoryLogStore({
    beforeSync: () => {
      if (!control.failing) return Promise.resolve();
      control.syncsAfterFailure++;
      return Promise.reject(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
    },
  });
  return { log, control };
}

describe("a failed fsync is fail-stop", () => {
  test("a stop during an fsync that then fails: done rejects with the StorageFailure, not a clean stop", async () => {
    let release = () => {};
    let hold: Promise<void> | undefined;
    const log = new MemoryLogStore({
      beforeSync: async () => {
        if (!hold) return;
        await hold;
        throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
    });
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: new KvMachine(),
      logStore: log,
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("a"),
      config: testConfig,
    });
    try {
      await waitFor(() => node.status().role === "leader", 4000, "a leader");
      hold = new Promise<void>((r) => (release = r));
      const pending = rejects(node.propose({ key: "k", value: "1" }));
      await new Promise((r) => setTimeout(r, 20)); // its fsync is held
      const stopped = node.stop();
      release();
      console.error("STOP", await stopped.then(() => "ok", (e) => String(e)), node.status().error);
      const fatal = await rejects(node.done);
      assert.ok(fatal instanceof StorageFailure, `expected StorageFailure, got ${fatal}`);
      assert.ok((await pending) !== undefined, "the proposal is not acknowledged");
    } finally {
      release();
      await node.stop().catch(() => {});
    }
  });

  test("Promise API: done, pending and later requests reject with the StorageFailure; stopped carries it; no retry", async () => {
    const { log, control } = failingLog();
    const machine = new KvMachine();
    const node = await createNode({
      id: "a",
      peers: { a: "a" },
      stateMachine: machine,
      logStore: log,
      snapshotStore: new MemorySnapshotStore(),
      transport: new MemoryHub().transport("a"),
      config: testConfig,
    });
    const events: RaftEvent[] = [];
    node.subscribe((e) => void events.push(e));
    try {
      await waitFor(() => node.status().role === "leader", 4000, "a leader");
      assert.equal(await node.propose({ key: "k", value: "1" }), undefined);
      control.failing = true;
      const pending = rejects(node.propose({ key: "k", value: "2" }));
      const fatal = await rejects(node.done);
      assert.ok(fatal instanceof StorageFailure, `expected StorageFailure, got ${fatal}`);
      assert.equal(fatal.operation, "sync");
      assert.match(fatal.message, /EIO/);
      assert.equal(await pending, fatal, "the pending proposal fails with it");
      assert.equal(await rejects(node.propose({ key: "k", value: "3" })), fatal, "so does a later one");
      assert.equal(await rejects(node.readIndex()), fatal, "and a later read");
      const stopped = events.filter((e) => e.type === "stopped");
      assert.deepEqual(stopped, [{ type: "stopped", error: fatal }]);
      assert.equal(node.status().stopped, true);
      assert.equal(node.status().error, fatal);
      // Nothing acknowledged after the failure, and the fsync was never tried again.
      assert.equal(machine.data.get("k"), "1");
      await new Promise((r) => setTimeout(r, 4 * testConfig.heartbeatMs!));
      assert.equal(control.syncsAfterFailure, 1, "the failed fsync is not retried");
    } finally {
      await node.stop().catch(() => {});
    }
  });

  test("Effect API: requests fail with the StorageFailure, and done fails with it", async () => {
    const { log, control } = failingLog();
    const program = Effect.gen(function* () {
      const raft = yield* Raft;
      yield* raft.propose({ key: "k", value: "1" });
      control.failing = true;
      const failed = yield* Effect.flip(raft.propose({ key: "k", value: "2" }));
      const done = yield* Effect.flip(raft.done);
      const later = yield* Effect.flip(raft.readIndex);
      return { failed, done, later };
    });
    const node = layer({ id: "a", peers: { a: "a" }, stateMachine: new KvMachine(), config: testConfig }).pipe(
      Layer.provide(portsLayer({
        logStore: log,
        snapshotStore: new MemorySnapshotStore(),
        transport: new MemoryHub().transport("a"),
      })),
    );
    const { failed, done, later } = await Effect.runPromise(Effect.scoped(Effect.provide(program, node)));
    assert.ok(failed instanceof StorageFailure, `expected StorageFailure, got ${failed}`);
    assert.equal(done, failed);
    assert.equal(later, failed);
  });
});
