// The playground in headless Chromium: the bundled page elects a leader, commits writes, and a new
// leader takes over when the leader is crashed. Skips, saying why, where Chromium or its driver is missing.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cannotRunChromium, launchChromium } from "./chromium.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);
const PAGE_DIR = join(ROOT, "examples", "playground");
const T = { timeout: 120_000 };

function bundle(): void {
  const deno = join(ROOT, "node_modules", ".bin", "deno");
  const r = spawnSync(deno, ["run", "-A", join(PAGE_DIR, "build.ts")], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
}

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript" };

describe("playground (headless Chromium)", () => {
  const reason = cannotRunChromium();
  test("elections, commits and a failover, in the page", { ...T, skip: reason }, async () => {
    bundle();
    const server = createServer((req, res) => {
      const path = join(PAGE_DIR, (req.url ?? "/") === "/" ? "index.html" : req.url!.split("?")[0]!);
      if (!path.startsWith(PAGE_DIR) || !existsSync(path)) {
        res.statusCode = 404;
        return void res.end();
      }
      res.setHeader("content-type", TYPES[extname(path)] ?? "application/octet-stream");
      res.end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}/`);
      // A seed and five nodes.
      await page.fill("#seed", "7");
      await page.selectOption("#nodes", "5");
      await page.click("#new");
      await page.waitForFunction(() => document.querySelectorAll('tr[data-role="leader"]').length === 1, null, {
        timeout: 30_000,
      });
      assert.equal(await page.locator("tr[data-node]").count(), 5);
      const leader = await page.getAttribute('tr[data-role="leader"]', "data-node");
      assert.ok(leader);
      for (let i = 0; i < 3; i++) await page.click("#write");
      await page.waitForFunction(() => /committed up to/.test(document.getElementById("events")!.textContent ?? ""));
      // Crash the leader: another takes over.
      await page.click(`tr[data-node="${leader}"] button.crash`);
      await page.waitForFunction(
        (old) => {
          const row = document.querySelector('tr[data-role="leader"]');
          return row !== null && row.getAttribute("data-node") !== old;
        },
        leader,
        { timeout: 30_000 },
      );
      assert.match(await page.textContent("#events") ?? "", new RegExp(`${leader} crashed`));
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  });
});
