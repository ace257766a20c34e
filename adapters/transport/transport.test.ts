import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { backoffDelay, formatHostPort, parseHostPort, resolveTransportOptions } from "./transport.ts";

describe("backoffDelay", () => {
  test("stays within [exp/2, exp] where exp doubles from min and caps at max", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r) => {
          const d = backoffDelay(n, 50, 2_000, r);
          const exp = Math.min(2_000, 50 * 2 ** (n - 1));
          assert.ok(d >= exp / 2 && d <= exp, `attempt ${n}: ${d}`);
        },
      ),
    );
    assert.equal(backoffDelay(1, 50, 2_000, 0), 25);
    assert.equal(backoffDelay(60, 50, 2_000, 0.999999) <= 2_000, true);
  });
});

describe("addresses", () => {
  test("parse and format host:port, IPv6 in brackets", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:4001"), { host: "127.0.0.1", port: 4001 });
    assert.deepEqual(parseHostPort("[::1]:0"), { host: "::1", port: 0 });
    assert.deepEqual(parseHostPort("node-a.local:80"), { host: "node-a.local", port: 80 });
    assert.equal(formatHostPort("::1", 7), "[::1]:7");
    assert.equal(formatHostPort("a", 7), "a:7");
    for (const bad of ["", "host", ":80", "h:99999", "::1:80", "h:-1"]) {
      assert.throws(() => parseHostPort(bad), TypeError, bad);
    }
  });
});

describe("resolveTransportOptions", () => {
  test("fills defaults and rejects nonsense", () => {
    const o = resolveTransportOptions({ clusterId: "c", self: "a" });
    assert.equal(o.maxQueueBytes, 64 * 1024 * 1024);
    assert.equal(o.maxFrameBytes, 64 * 1024 * 1024);
    assert.equal(o.reconnectMinMs, 50);
    assert.equal(o.reconnectMaxMs, 2_000);
    assert.throws(() => resolveTransportOptions({ clusterId: "c", self: "a", maxQueueBytes: 0 }), RangeError);
    assert.throws(
      () => resolveTransportOptions({ clusterId: "c", self: "a", reconnectMinMs: 10, reconnectMaxMs: 5 }),
      RangeError,
    );
  });
});
