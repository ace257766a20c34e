import assert from "node:assert/strict";
import { test } from "node:test";
import { requestUrl } from "./request_url.ts";

test("requestUrl parses a request's URL once and hands back the same object", () => {
  const req = new Request("http://127.0.0.1:1/db/a/../b?stale=true");
  const url = requestUrl(req);
  assert.equal(url.pathname, "/db/b");
  assert.equal(url.searchParams.get("stale"), "true");
  assert.equal(requestUrl(req), url, "the same object for the same request");
  assert.notEqual(requestUrl(new Request(req.url)), url, "another request gets its own");
});

test("requestUrl throws as new URL does when the URL does not parse", () => {
  // A Request whose url cannot be parsed (as a malformed Host makes it) is simulated.
  const fake = { url: "http://[bad/db/x" } as Request;
  assert.throws(() => requestUrl(fake), TypeError);
  assert.throws(() => requestUrl(fake), TypeError, "a failure is not remembered as a URL");
});
