import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { rawPathOf, rewrittenFromRawUrl, rewrittenUnrouted, segmentsDiffer } from "./raw_path.ts";

describe("raftd raw paths", () => {
  test("the raw path of a URL as sent, without query or fragment", () => {
    assert.equal(rawPathOf("http://h:1/db/q/../r?x=1"), "/db/q/../r");
    assert.equal(rawPathOf("http://h:1/db/a%2Fb#f"), "/db/a%2Fb");
    assert.equal(rawPathOf("http://h:1"), "/");
  });

  test("dot segments in any spelling, and backslashes, count as rewritten; encoded slashes and UTF-8 do not", () => {
    for (const path of ["/db/q/../r", "/db/q/%2E%2E/s", "/db/q/%2e/r", "/db/./r", "/x/../db/r", "/db/a\\b"]) {
      assert.equal(rewrittenFromRawUrl(`http://h:1${path}`), true, path);
    }
    for (const path of ["/db/a%2Fb", "/db/users/%C3%A9t%C3%A9", "/db/a.b/..c", "/status", "/db//x"]) {
      assert.equal(rewrittenFromRawUrl(`http://h:1${path}`), false, path);
    }
  });

  test("Bun: route parameters (the raw segments, decoded) against the normalized path", () => {
    assert.equal(segmentsDiffer(["db", "q", "..", "s"], "http://h/db/s"), true);
    assert.equal(segmentsDiffer(["db", "a/b"], "http://h/db/a%2Fb"), false);
    assert.equal(segmentsDiffer(["db", "été"], "http://h/db/%C3%A9t%C3%A9"), false);
    // No route matched: only an empty segment or a very deep path explains it, unless the path was rewritten.
    assert.equal(rewrittenUnrouted("http://h/db/r"), true);
    assert.equal(rewrittenUnrouted("http://h/db//r"), false);
    assert.equal(rewrittenUnrouted("http://h/"), false);
    assert.equal(rewrittenUnrouted("http://h/" + Array(41).fill("a").join("/")), false);
    assert.equal(segmentsDiffer(["a"], "http://[bad/a"), false, "an unparsable URL is the handler's 400");
  });
});
