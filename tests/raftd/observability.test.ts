// raftd's observability, black box (issue 13): a real 3-node raftd cluster
// of this runtime, then its leveled logs, its /metrics checked by
// `promtool check metrics`, and its /ui loaded in headless Chromium (Debian's
// `chromium`, driven by playwright-core) showing the leader /status reports.
// Without promtool or Chromium (no network to install them) those tests skip
// with the reason; `.ci/run` installs both.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { METRIC_FAMILIES } from "../../effect.ts";
import { cannotRunChromium, launchChromium } from "../browser/chromium.ts";
import { Cluster, FAST_FLAGS, type RaftdProcess, waitFor, waitForVoters } from "./harness.ts";

const T = { timeout: 90_000 };
/** Where the browser test leaves its screenshot of /ui. */
export const SCREENSHOT: string = fileURLToPath(new URL("../../tmp/raftd-ui.png", import.meta.url).href);

const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" });
const noPromtool = promtool.status === 0
  ? false
  : "promtool is not installed (Debian's prometheus package; .ci/run installs it with apt-get)";
const noChromium = cannotRunChromium() ?? false;

/** The metrics a leader that took writes reports (the rest appear once their event happens). */
const LEADER = METRIC_FAMILIES.filter((f) =>
  !/cancelled|abandoned|failed|refused|slow_fsyncs|unreachable_total|snapshot|read_index|reads_total/.test(f)
);

describe("raftd observability (black box)", () => {
  const cluster = new Cluster();
  let n1: RaftdProcess, n2: RaftdProcess, n3: RaftdProcess;

  before(async () => {
    n1 = await cluster.add("n1");
    n2 = await cluster.add("n2");
    n3 = await cluster.add("n3");
    n1.start(FAST_FLAGS);
    await waitFor("n1 to lead", async () => (await n1.status())?.role === "leader" || undefined);
    n2.start([...FAST_FLAGS, "-debug", "-join", n1.address]);
    n3.start([...FAST_FLAGS, "-join", n1.address]);
    try {
      await waitForVoters([n1, n2, n3], 3);
      for (let i = 0; i < 30; i++) assert.equal((await n1.request("PUT", `/db/k${i}`, `v${i}`)).status, 200);
      assert.equal((await n2.request("GET", "/db/k1")).text, "v1");
    } catch (e) {
      throw new Error(`${e}\n${cluster.logs()}`);
    }
  });

  after(async () => {
    await cluster.cleanup();
  });

  test("the node's log lines are leveled and structured; -debug adds the debug ones", T, () => {
    assert.match(n1.output, /\] INFO {2}won the election of term \d+ in \d+ ms {2}term=\d+ role=leader/);
    assert.match(n2.output, /\] INFO {2}leader is \S+ \(term \d+\) {2}term=\d+ role=\w+ leader=\S+/);
    assert.match(n1.output, /\] INFO {2}configuration at index \d+: voters \[/);
    assert.match(n2.output, /\] DEBUG /, "-debug");
    assert.doesNotMatch(n3.output, /\] DEBUG /, "no -debug");
  });

  test("/metrics: plank's metrics and raftd's, valid exposition (promtool check metrics)", {
    ...T,
    skip: noPromtool,
  }, async () => {
    for (const node of [n1, n2]) {
      const r = await node.request("GET", "/metrics");
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const families = node === n1 ? LEADER : LEADER.filter((f) => !/elections|round_trip|proposal_dur/.test(f));
      for (const family of [...families, "raftd_http_requests_total", "raftd_keys"]) {
        assert.match(r.text, new RegExp(`^# TYPE ${family} `, "m"), `${family} on ${node.name}`);
      }
      assert.match(r.text, /^plank_has_leader\{node="[^"]+",group="0"\} 1$/m);
      const check = spawnSync("promtool", ["check", "metrics"], { input: r.text, encoding: "utf8" });
      assert.equal(check.status, 0, `promtool on ${node.name}: ${check.stdout}${check.stderr}`);
      assert.equal((check.stdout + check.stderr).trim(), "", "no lint findings");
    }
  });

  test("/ui in headless Chromium shows the members and the leader /status reports", {
    ...T,
    skip: noChromium,
  }, async () => {
    const browser = await launchChromium({ width: 1100, height: 720 });
    let stop = false;
    // Writes while the page watches, so that its chart has something to show.
    const writes = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) await n3.request("PUT", `/db/ui${i}`, "x").catch(() => {});
    })();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => void errors.push(e.message));
      await page.goto(`http://${n3.address}/ui`);
      const shows = (id: string) =>
        page.waitForFunction((id) => document.getElementById("leader")?.textContent === id, id, { timeout: 20_000 });
      const first = await cluster.leader();
      await shows((await first.status())!.id);
      // Leadership moves: the page follows, and marks the change on its chart.
      const to = (await n2.status())!.id;
      const moved = await first.request("POST", `/transfer?to=${to}`);
      assert.equal(moved.status, 200, moved.text);
      const leader = await cluster.leader();
      const leaderId = (await leader.status())!.id;
      assert.equal(leaderId, to);
      await shows(leaderId);
      await page.waitForFunction(
        (id) => [...document.querySelectorAll("#chart text")].some((t) => t.textContent === id),
        leaderId,
      );
      // Every member is shown with the role its own /status reports.
      for (const node of [n1, n2, n3]) {
        const s = (await node.status())!;
        const role = await page.getAttribute(`.card[data-id="${s.id}"]`, "data-role");
        assert.equal(role, s.role, `${node.name}'s card`);
      }
      const leaderCards = await page.locator('.card[data-role="leader"]').count();
      assert.equal(leaderCards, 1);
      assert.equal(await page.getAttribute('.card[data-role="leader"]', "data-id"), leaderId);
      // The chart moves: a line of writes/s once a few samples are in.
      await page.waitForSelector("#chart polyline", { timeout: 10_000 });
      await page.waitForTimeout(3000);
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.ok(statSync(SCREENSHOT).size > 10_000, "a screenshot");
      assert.deepEqual(errors, [], "no script errors");
    } finally {
      stop = true;
      await writes;
      await browser.close();
    }
  });
});
