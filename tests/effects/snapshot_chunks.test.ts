import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Message } from "../../core/types.ts";
import { catchUpBySnapshot } from "./testkit.ts";

describe("chunked InstallSnapshot through the interpreter", () => {
  test("chunks are acknowledged, and a lost chunk is resent from the follower's offset, not from the start", async () => {
    let dropped: number | undefined;
    const r = await catchUpBySnapshot({
      // Lose the third chunk of the first transfer, once.
      drop: (m) => {
        if (m.type !== "InstallSnapshot" || dropped !== undefined || m.offset !== 128) return false;
        dropped = m.offset;
        return true;
      },
    });
    assert.deepEqual(r.laggingData, r.leaderData);
    const chunks = r.messages;
    const sent = chunks.filter((m): m is Extract<Message, { type: "InstallSnapshot" }> =>
      m.type === "InstallSnapshot" && m.to === r.lagging
    );
    assert.equal(dropped, 128, "a chunk was lost");
    assert.ok(sent.filter((m) => m.offset === 128).length >= 2, "the lost chunk was sent again");
    assert.equal(sent.filter((m) => m.offset === 0).length, 1, "the transfer resumed instead of restarting");
    assert.ok(sent.length > 5 && sent.every((m) => m.data.length <= 64), "several chunks within the size limit");
    const acks = chunks.filter((m) => m.type === "InstallSnapshotResponse" && !m.done && m.success);
    assert.ok(acks.length > 0, "chunks are acknowledged one by one");
    const gap = chunks.find((m) => m.type === "InstallSnapshotResponse" && !m.done && !m.success);
    assert.ok(gap?.type === "InstallSnapshotResponse" && gap.offset === 128, "the follower named the gap");
  });
});
