/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by
 * playwright-core, with a fresh profile per launch and the flags that keep it
 * quiet and offline. Tests skip, saying why, where either is missing
 * (`.ci/run` installs Chromium with apt-get).
 *
 * @module
 */

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { BrowserContext } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url).href);

/** The Chromium binary (`CHROMIUM` overrides). */
export const CHROMIUM: string = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Why a browser test cannot run here, or undefined. */
export function cannotRunChromium(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;
  if (!existsSync(join(ROOT, "node_modules", "playwright-core"))) {
    return "playwright-core is not installed (npm install)";
  }
  return undefined;
}

/** A headless Chromium with a fresh profile; `close()` also removes the profile. */
export async function launchChromium(viewport?: { width: number; height: number }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), "plank-chromium-"));
  const { chromium } = await import("playwright-core");
  // A fresh profile per run (Playwright takes it as the persistent context's directory).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ...(viewport ? { viewport } : {}),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async (options) => {
    await close(options);
    rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}
