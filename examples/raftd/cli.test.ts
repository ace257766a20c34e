import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isHostPort, parseArgs, parseDuration, parseSize, type RaftdConfig, USAGE } from "./cli.ts";

function run(args: string[]): RaftdConfig {
  const r = parseArgs(args);
  if (r.kind !== "run") throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function err(args: string[]): string {
  const r = parseArgs(args);
  if (r.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.message;
}

describe("raftd cli", () => {
  test("defaults: port 4001 on localhost, no join, info logging, 1 MiB values", () => {
    const c = run(["data"]);
    assert.equal(c.dataDir, "data");
    assert.equal(c.port, 4001);
    assert.equal(c.host, "localhost");
    assert.equal(c.join, undefined);
    assert.equal(c.logLevel, "info");
    assert.equal(c.maxValueBytes, 1024 * 1024);
    assert.ok(c.heartbeatMs < c.electionTimeoutMs);
  });

  test("-groups: 1 by default, a count from 1 to 4096, anything else refused", () => {
    assert.equal(run(["data"]).groups, 1);
    assert.equal(run(["-groups", "16", "data"]).groups, 16);
    assert.equal(run(["--groups=4096", "data"]).groups, 4096);
    for (const bad of ["0", "4097", "-3", "x", "1.5", ""]) {
      assert.match(err([`-groups=${bad}`, "data"]), /invalid -groups/, bad);
    }
  });

  test("raftd's short flags with separate values", () => {
    const c = run(["-p", "4002", "-h", "127.0.0.1", "-join", "127.0.0.1:4001", "-v", "/tmp/x"]);
    assert.equal(c.port, 4002);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.join, "127.0.0.1:4001");
    assert.equal(c.logLevel, "verbose");
    assert.equal(c.dataDir, "/tmp/x");
  });

  test("long forms with = and two dashes, flags after DATA_DIR", () => {
    const c = run(["dir", "--port=5000", "--host", "0.0.0.0", "--p=5001", "-debug"]);
    assert.equal(c.port, 5001);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.logLevel, "debug");
    assert.equal(run(["-trace", "-v", "d"]).logLevel, "trace");
  });

  test("durations and sizes", () => {
    const c = run(["-election-timeout", "300ms", "-max-value", "64KiB", "d"]);
    assert.equal(c.electionTimeoutMs, 300);
    assert.equal(c.heartbeatMs, 30);
    assert.equal(c.maxValueBytes, 65536);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration("250"), 250);
    assert.equal(parseDuration("fast"), undefined);
    assert.equal(parseSize("1MiB"), 1048576);
    assert.equal(parseSize("10"), 10);
    assert.equal(parseSize("1GiB"), undefined);
  });

  test("--help and -help ask for help; -h is the host", () => {
    assert.deepEqual(parseArgs(["--help"]), { kind: "help" });
    assert.deepEqual(parseArgs(["-help"]), { kind: "help" });
    assert.equal(run(["-h", "example.org", "d"]).host, "example.org");
  });

  test("usage documents every flag", () => {
    for (
      const flag of [
        "-p",
        "-h",
        "-join",
        "-id",
        "-advertise",
        "-election-timeout",
        "-heartbeat",
        "-max-value",
        "-snapshot-entries",
        "-request-timeout",
        "-v",
        "-debug",
        "-trace",
        "--help",
      ]
    ) {
      assert.ok(USAGE.includes(flag), `usage mentions ${flag}`);
    }
  });

  test("errors are one line and name the problem", () => {
    assert.match(err([]), /missing DATA_DIR/);
    assert.match(err(["a", "b"]), /one DATA_DIR/);
    assert.match(err(["-bogus", "d"]), /unknown flag "-bogus"/);
    assert.match(err(["-p", "70000", "d"]), /invalid port/);
    assert.match(err(["-p", "abc", "d"]), /invalid port/);
    assert.match(err(["-p"]), /needs a value/);
    assert.match(err(["-join", "nohost", "d"]), /invalid -join/);
    assert.match(err(["-election-timeout", "soon", "d"]), /election-timeout/);
    assert.match(err(["-max-value", "-1", "d"]), /max-value/);
    assert.match(err(["-id", "a/b", "d"]), /invalid -id/);
    assert.match(err(["-v=maybe", "d"]), /takes no value/);
    assert.match(err(["-election-timeout", "100ms", "-heartbeat", "200ms", "d"]), /heartbeat/);
    for (const args of [[], ["-bogus"], ["-p", "0", "d"]]) assert.ok(!err(args).includes("\n"));
  });

  test("host:port validation", () => {
    assert.ok(isHostPort("localhost:4001"));
    assert.ok(isHostPort("[::1]:4001"));
    assert.ok(!isHostPort("localhost"));
    assert.ok(!isHostPort("localhost:0"));
    assert.ok(!isHostPort("http://localhost:4001"));
  });

  test("security defaults: listens on 127.0.0.1, no auth, not insecure", () => {
    const c = run(["d"]);
    assert.equal(c.listenHost, "127.0.0.1");
    assert.equal(c.host, "localhost");
    assert.equal(c.peerTls, undefined);
    assert.equal(c.clusterSecret, undefined);
    assert.equal(c.adminToken, undefined);
    assert.equal(c.insecure, false);
    assert.equal(run(["-h", "10.0.0.5", "d"]).listenHost, "127.0.0.1", "-h only advertises");
  });

  test("beyond loopback needs peer authentication or -insecure", () => {
    for (const addr of ["0.0.0.0", "10.0.0.5", "::", "example.org"]) {
      assert.match(err(["-addr", addr, "d"]), /refusing to listen on .* without peer authentication/);
    }
    for (const addr of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) {
      assert.equal(run(["-addr", addr, "d"]).listenHost, addr);
    }
    assert.equal(run(["-addr", "0.0.0.0", "-cluster-secret", "s", "d"]).clusterSecret, "s");
    assert.equal(run(["-addr", "0.0.0.0", "-insecure", "d"]).insecure, true);
    const tls = ["-peer-cert", "c", "-peer-key", "k", "-peer-ca", "a"];
    assert.deepEqual(run(["-addr", "0.0.0.0", ...tls, "d"]).peerTls, { cert: "c", key: "k", ca: "a" });
  });

  test("peer TLS flags go together; -peer-addr defaults to the advertised host at port + 10000", () => {
    assert.match(err(["-peer-cert", "c", "d"]), /go together/);
    assert.match(err(["-cert", "c", "d"]), /-cert and -key go together/);
    assert.match(err(["-peer-addr", "h:1", "d"]), /-peer-addr is for mutual TLS/);
    const tls = ["-peer-cert", "c", "-peer-key", "k", "-peer-ca", "a"];
    assert.equal(run(["-p", "4001", ...tls, "d"]).peerAddress, "localhost:14001");
    assert.equal(run(["-p", "4001", "-advertise", "10.0.0.5:80", ...tls, "d"]).peerAddress, "10.0.0.5:14001");
    assert.equal(run([...tls, "-peer-addr", "10.0.0.5:7000", "d"]).peerAddress, "10.0.0.5:7000");
    assert.match(err(["-p", "60000", ...tls, "d"]), /give -peer-addr/);
    assert.deepEqual(run(["-cert", "c", "-key", "k", "-ca", "a", "d"]).https, { cert: "c", key: "k" });
  });

  test("-peer-transport picks the mTLS listener's wire: tcp by default, http (HTTP/2); needs -peer-*", () => {
    const tls = ["-peer-cert", "c", "-peer-key", "k", "-peer-ca", "a"];
    assert.equal(run([...tls, "d"]).peerTransport, "tcp");
    assert.equal(run([...tls, "-peer-transport", "http", "d"]).peerTransport, "http");
    assert.equal(run([...tls, "--peer-transport=tcp", "d"]).peerTransport, "tcp");
    assert.match(err([...tls, "-peer-transport", "ws", "d"]), /invalid -peer-transport "ws": expected tcp or http/);
    assert.match(err(["-peer-transport", "http", "d"]), /-peer-transport is for mutual TLS/);
  });
});
