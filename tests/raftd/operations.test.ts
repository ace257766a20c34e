// Black-box tests of what an operator meets: joins that conflict or fail, -join mistakes, a removed
// node, keys the URL parser would rewrite, the pid, and what a failed write's answer says.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { Cluster, FAST_FLAGS, formThree, freePort, raftdCommand, type RaftdProcess, waitFor } from "./harness.ts";

const T = { timeout: 90_000 };

/** One request sent byte for byte (fetch would normalize the path): status line and body. */
function rawRequest(port: number, method: string, path: string, body = ""): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${body.length}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    });
    let data = "";
    socket.on("data", (b) => (data += b.toString()));
    socket.on("error", reject);
    socket.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
      resolve({ status, text: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

function raftd(args: string[], timeout = 30_000): { status: number | null; stderr: string; ms: number } {
  const [cmd, ...rest] = raftdCommand();
  const started = Date.now();
  const r = spawnSync(cmd, [...rest, ...args], { encoding: "utf8", timeout });
  return { status: r.status, stderr: r.stderr, ms: Date.now() - started };
}

describe("raftd operations (black box)", () => {
  const cluster = new Cluster();
  let n1: RaftdProcess, n2: RaftdProcess, n3: RaftdProcess;
  const members = async (n: RaftdProcess) => (await n.status())!.members.map((m) => `${m.id}@${m.address}`).sort();

  before(async () => {
    [n1, n2, n3] = await formThree(cluster, ["-join-timeout", "3s"]);
  });

  after(async () => {
    await cluster.cleanup();
  });

  test("keys with '.' or '..' segments in any spelling get 400 and nothing is written", T, async () => {
    for (const path of ["/db/q/%2E%2E/s", "/db/q/../r", "/db/q/%2e/t", "/x/../db/u", "/db/./v"]) {
      const r = await rawRequest(n1.port, "PUT", path, "x");
      assert.equal(r.status, 400, `${path}: ${r.status} ${r.text}`);
    }
    for (const key of ["s", "r", "q/t", "u", "v", "q"]) {
      assert.equal((await n1.request("GET", `/db/${key}`)).status, 404, `${key} was not written`);
    }
    // An encoded slash is part of a key, not a segment: still fine.
    assert.equal((await rawRequest(n1.port, "PUT", "/db/a%2Fb", "ok")).status, 200);
    assert.equal((await n1.request("GET", "/db/a%2Fb")).text, "ok");
  });

  test("/status shows the pid and the last index; the start line logs the pid", T, async () => {
    const s = (await n2.status()) as unknown as { pid: number; lastIndex: number; commit: number };
    assert.equal(s.pid, n2.pid);
    assert.ok(s.lastIndex >= s.commit);
    assert.match(n2.output, new RegExp(`pid ${n2.pid}\\b`));
  });

  test("POST /join with a member's id at another address is refused (409) and changes nothing", T, async () => {
    const before = await members(n1);
    const other = `127.0.0.1:${await freePort()}`;
    const r = await n1.request("POST", "/join", JSON.stringify({ id: "n2", address: other }));
    assert.equal(r.status, 409, r.text);
    assert.match(r.text, /already a voter at .*replace/);
    assert.deepEqual(await members(n1), before);
    // Another id at a member's address: refused too.
    const dup = await n2.request("POST", "/join", JSON.stringify({ id: "n9", address: n3.address }));
    assert.equal(dup.status, 409, dup.text);
    // With replace, the conflict is allowed; nothing answers there as n2, so it is refused (502), unchanged.
    const moved = await n1.request("POST", "/join", JSON.stringify({ id: "n2", address: other, replace: true }));
    assert.equal(moved.status, 502, moved.text);
    assert.deepEqual(await members(n1), before);
    // The same id at its own address is the idempotent join: 200.
    const again = await n3.request("POST", "/join", JSON.stringify({ id: "n2", address: n2.address }));
    assert.equal(again.status, 200, again.text);
  });

  test(
    "a join to an address where nothing listens is refused (502) and leaves the membership as it was",
    T,
    async () => {
      const before = await members(n1);
      const r = await n1.request(
        "POST",
        "/join",
        JSON.stringify({ id: "ghost", address: `127.0.0.1:${await freePort()}` }),
      );
      assert.equal(r.status, 502, r.text);
      assert.deepEqual(await members(n1), before);
    },
  );

  test("a join whose learner never catches up is undone: learner and address removed", T, async () => {
    // Something that answers /status as "mute" but speaks no Raft: the learner cannot catch up.
    const port = await freePort();
    const fake = createHttpServer((req, res) => {
      if (req.url === "/status") {
        res.end(JSON.stringify({ id: "mute", cluster: "x", role: "follower", term: 0, members: [] }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => fake.listen(port, "127.0.0.1", r));
    try {
      const before = await members(n1);
      const r = await n1.request("POST", "/join", JSON.stringify({ id: "mute", address: `127.0.0.1:${port}` }));
      assert.equal(r.status, 503, r.text);
      assert.match(r.text, /did not catch up/);
      await waitFor(
        "the learner to be removed",
        async () => JSON.stringify(await members(n1)) === JSON.stringify(before) || undefined,
      );
      assert.match(n1.output, /join of mute failed: removed the learner/);
    } finally {
      fake.close();
    }
  });

  test(
    "-join naming this node itself is refused at once; a dead -join target gives up after -join-timeout",
    T,
    async () => {
      const port = await freePort();
      const dir = join(cluster.root, "selfjoin");
      const self = raftd(["-h", "127.0.0.1", "-p", String(port), "-join", `localhost:${port}`, dir]);
      assert.equal(self.status, 2, self.stderr);
      assert.match(self.stderr, /is this node itself/);
      const dead = raftd([
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-join",
        `127.0.0.1:${await freePort()}`,
        "-join-timeout",
        "1s",
        dir,
      ]);
      assert.equal(dead.status, 1, dead.stderr);
      assert.match(dead.stderr, /no cluster member answered/);
      assert.ok(dead.ms < 20_000, `gave up after ${dead.ms} ms`);
      assert.equal(existsSync(join(dir, "raftd.json")), false, "nothing written");
    },
  );

  test("a removed node says so in its log, stops, and refuses to serve as a member again", T, async () => {
    const leader = await cluster.leader();
    const victim = leader === n3 ? n2 : n3;
    const r = await leader.request("DELETE", `/members/${victim.name}`);
    assert.equal(r.status, 200, r.text);
    const code = await Promise.race([victim.exited, new Promise((r) => setTimeout(() => r("running"), 30_000))]);
    assert.equal(code, 0, `the removed node exits cleanly\n${victim.output}`);
    assert.match(victim.output, /removed from cluster/);
    // Its data directory is marked: a restart refuses to run as a member.
    victim.start(FAST_FLAGS);
    assert.equal(await victim.exited, 1);
    assert.match(victim.output, /was removed from cluster/);
    assert.equal((await leader.status())!.members.some((m) => m.id === victim.name), false);
  });
});
