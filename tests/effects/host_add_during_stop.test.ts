/**
 * addGroup called while the host is stopping (its loop has ended, the writer
 * is finishing its last fsync) is refused with NodeStopped; it once ran from
 * the queue the stopped host clears and added a live group to a stopped host.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { membershipOf } from "../../core/membership.ts";
import { MemoryHub } from "../../adapters/memory/hub.ts";
import { HostLoop, type MultiGroupLogPort } from "../../effects/host/host_loop.ts";

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("addGroup during a stop is refused, not added to the stopped host", async () => {
  let hold: Promise<void> | undefined;
  let held = false;
  const log: MultiGroupLogPort = {
    load: () => new Map(),
    write: () => Promise.resolve(),
    sync: async () => {
      if (hold) held = true;
      await hold;
    },
    pinning: () => [],
    close: () => Promise.resolve(),
  };
  const host = await HostLoop.start(log, new MemoryHub().transport("a"), {
    id: "a",
    peers: new Map([["a", "a"]]),
    config: { electionTimeoutMs: 150, heartbeatMs: 15 },
  });
  let open = () => {};
  try {
    const g1 = await host.addGroup(1, membershipOf(["a"]), { apply: () => 0 });
    await until("a leads", () => g1.status().role === "leader");
    hold = new Promise<void>((r) => (open = r));
    void g1.propose(new Uint8Array([1])).catch(() => {});
    await until("the write's sync is held", () => held);
    const stopping = host.stop();
    await new Promise((r) => setTimeout(r, 50)); // the loop has taken the stop and waits for the writer
    const added = host.addGroup(2, membershipOf(["a"]), { apply: () => 0 }).then(
      (g) => ({ ok: true as const, g }),
      (e) => ({ ok: false as const, e }),
    );
    await new Promise((r) => setTimeout(r, 20));
    hold = undefined;
    open();
    await stopping;
    const r = await added;
    assert.equal(
      r.ok,
      false,
      `addGroup resolved on a stopped host; group 2 status: ${
        r.ok ? JSON.stringify({ role: r.g.status().role, stopped: r.g.status().stopped }) : ""
      }; host.groups() = ${JSON.stringify(host.groups())}`,
    );
  } finally {
    open();
    await host.stop();
  }
});
