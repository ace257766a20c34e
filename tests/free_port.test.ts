import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort } from "./free_port.ts";

test("freePort hands out distinct, bindable ports below the ephemeral range, each locked for this process", async () => {
  const ports = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const port = await freePort(i % 2 + 1);
    assert.ok(port >= 20_000 && port < 32_000, String(port));
    for (let p = port; p <= port + i % 2; p++) {
      assert.ok(!ports.has(p), `port ${p} handed out twice`);
      ports.add(p);
      const lock = join(tmpdir(), "plank-test-ports", String(p));
      assert.ok(existsSync(lock));
      assert.equal(readFileSync(lock, "utf8"), String(process.pid));
    }
  }
  // Each one can be listened on.
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
});
