/**
 * A snapshot chunk's answer waits for the node's writes, the term the chunk
 * made it adopt included (ordering rule 1, docs/DESIGN.md: a node persists
 * its term before it answers, paper §5.1). The answers once left as soon as
 * the chunk was stored, while the write of the new term was still in flight:
 * a node that crashed then had answered in a term its disk did not hold.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryLogStore, MemorySnapshotStore } from "../../adapters/memory/mod.ts";
import type { InstallSnapshot } from "../../core/types.ts";
import { handFollower, handTransport, waitFor } from "./testkit.ts";

test("a snapshot chunk in a new term is answered only once the term is durable", async () => {
  const { transport, sent, deliver } = handTransport();
  let held: Promise<void> | undefined;
  let syncs = 0;
  const log = new MemoryLogStore({
    beforeSync: () => {
      syncs++;
      return held ?? Promise.resolve();
    },
  });
  const node = await handFollower(log, new MemorySnapshotStore(), transport);
  let open = () => {};
  try {
    // From now on every sync waits for the test.
    held = new Promise<void>((r) => (open = r));
    const before = syncs;
    const chunk: InstallSnapshot = {
      group: 0,
      from: "l",
      to: "f",
      term: 3,
      type: "InstallSnapshot",
      meta: { index: 10, term: 3, membership: { voters: ["f", "l", "x"], learners: [], outgoing: undefined } },
      offset: 0,
      data: new Uint8Array(64),
      done: false,
    };
    deliver(chunk);
    await waitFor(() => syncs > before || undefined, 5_000, "the write of term 3 to reach its sync");
    assert.equal(node.status().term, 3, "the chunk's term adopted");
    // The chunk is stored meanwhile (nothing waits on the snapshot store); its answer must not leave.
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      sent.filter((m) => m.type === "InstallSnapshotResponse"),
      [],
      "no answer while term 3 is not durable",
    );
    held = undefined;
    open();
    const answer = await waitFor(
      () => sent.find((m) => m.type === "InstallSnapshotResponse"),
      5_000,
      "the chunk's answer once term 3 is durable",
    );
    assert.equal(answer.term, 3);
  } finally {
    open();
    await node.stop().catch(() => {});
  }
});
