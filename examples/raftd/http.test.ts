import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createHandler,
  FORWARDED_HEADER,
  HttpError,
  type JoinAnswer,
  NotLeaderError,
  OUTCOME_HEADER,
  parseJoin,
  parseKey,
  type RaftdService,
  type StatusView,
} from "./http.ts";
import { type KvResult, KvStore } from "./kv.ts";
import { Metrics } from "./metrics.ts";

/** A single-node "cluster" over a plain KvStore; `leader` switches NotLeaderError on. */
class FakeService implements RaftdService {
  readonly kv = new KvStore();
  leaderAddress: string | undefined = "self";
  unavailable = false;
  joined: [string, string][] = [];
  readonly stale: boolean[] = [];

  #check(): void {
    if (this.unavailable) throw new HttpError(503, "no leader");
    if (this.leaderAddress !== "self") throw new NotLeaderError(this.leaderAddress);
  }
  put(key: string, value: Uint8Array): Promise<void> {
    this.#check();
    this.kv.apply({ op: "put", key, value });
    return Promise.resolve();
  }
  cas(key: string, prev: Uint8Array, value: Uint8Array): Promise<KvResult> {
    this.#check();
    return Promise.resolve(this.kv.apply({ op: "cas", key, prev, value }));
  }
  delete(key: string): Promise<boolean> {
    this.#check();
    const r = this.kv.apply({ op: "delete", key });
    return Promise.resolve(r.type === "deleted" && r.existed);
  }
  get(key: string, stale: boolean): Promise<Uint8Array | undefined> {
    this.stale.push(stale);
    if (!stale) this.#check();
    return Promise.resolve(this.kv.get(key));
  }
  status(): StatusView {
    return {
      id: "n1",
      address: "localhost:1",
      cluster: "c",
      role: "leader",
      term: 3,
      leader: "n1",
      leaderAddress: "localhost:1",
      commit: 7,
      applied: 7,
      lastIndex: 7,
      members: [{ id: "n1", address: "localhost:1", suffrage: "voter" }],
    };
  }
  join(id: string, address: string): Promise<JoinAnswer> {
    this.#check();
    this.joined.push([id, address]);
    return Promise.resolve({ cluster: "c", leader: "n1", members: [] });
  }
  removeMember(_id: string): Promise<void> {
    this.#check();
    return Promise.resolve();
  }
  transfer(_to: string): Promise<void> {
    this.#check();
    return Promise.resolve();
  }
  gauges() {
    return { role: "leader", term: 3, commit: 7, applied: 7, members: 1, keys: this.kv.size };
  }
}

function setup(fetch?: (url: string, init: RequestInit) => Promise<Response>) {
  const service = new FakeService();
  const handler = createHandler({ service, metrics: new Metrics(), maxValueBytes: 16, fetch });
  const call = (method: string, path: string, body?: string | Uint8Array, headers?: Record<string, string>) =>
    handler(new Request(`http://localhost:1${path}`, { method, body: body as BodyInit | undefined, headers }));
  return { service, handler, call };
}

describe("raftd http", () => {
  test("set, get, overwrite, delete", async () => {
    const { call } = setup();
    assert.equal((await call("POST", "/db/foo", "bar")).status, 200);
    let r = await call("GET", "/db/foo");
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "bar");
    assert.equal((await call("PUT", "/db/foo", "baz")).status, 200);
    assert.equal(await (await call("GET", "/db/foo")).text(), "baz");
    assert.equal((await call("DELETE", "/db/foo")).status, 200);
    r = await call("GET", "/db/foo");
    assert.equal(r.status, 404);
    assert.match(await r.text(), /^key not found.*\n$/);
  });

  test("keys are percent-decoded and may hold slashes and UTF-8", async () => {
    const { call, service } = setup();
    assert.equal((await call("PUT", "/db/users/%C3%A9t%C3%A9%20x", "1")).status, 200);
    assert.deepEqual(service.kv.get("users/été x"), new TextEncoder().encode("1"));
  });

  test("compare-and-set: 200 when prev matches, 412 otherwise", async () => {
    const { call } = setup();
    await call("POST", "/db/k", "one");
    assert.equal((await call("POST", "/db/k?prev=two", "three")).status, 412);
    assert.equal(await (await call("GET", "/db/k")).text(), "one");
    assert.equal((await call("POST", "/db/k?prev=one", "three")).status, 200);
    assert.equal(await (await call("GET", "/db/k")).text(), "three");
    assert.equal((await call("PUT", "/db/absent?prev=x", "y")).status, 412);
  });

  test("reads are linearizable unless ?stale=true", async () => {
    const { call, service } = setup();
    await call("GET", "/db/a");
    await call("GET", "/db/a?stale=true");
    await call("GET", "/db/a?stale=false");
    assert.deepEqual(service.stale, [false, true, false]);
    assert.equal((await call("GET", "/db/a?stale=maybe")).status, 400);
  });

  test("bad keys are 400 with a one-line reason", async () => {
    const { call } = setup();
    const long = "x".repeat(1025);
    for (
      const path of [
        "/db/",
        "/db",
        `/db/${long}`,
        "/db/a%00b",
        "/db/a%0Ab",
        "/db/%2E%2E%2Fetc",
        "/db/a//b",
        "/db/%E0%A4%A",
        "/db/a%5Cb",
      ]
    ) {
      const r = await call("PUT", path, "v");
      assert.equal(r.status, 400, path);
      const body = await r.text();
      assert.equal(body.split("\n").length, 2, `one line for ${path}: ${body}`);
    }
    assert.equal((await call("PUT", `/db/${"x".repeat(1024)}`, "v")).status, 200);
    assert.deepEqual(parseKey("a%2Fb"), "a/b");
    assert.deepEqual(parseKey(".."), { error: "key has an empty, '.' or '..' path segment" });
  });

  test("oversized values are 413, with or without a content-length", async () => {
    const { call } = setup();
    assert.equal((await call("PUT", "/db/k", "x".repeat(17))).status, 413);
    assert.equal((await call("PUT", "/db/k", "x".repeat(16))).status, 200);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(8));
        c.close();
      },
    });
    const r = await setup().handler(
      new Request("http://localhost:1/db/k", { method: "PUT", body: stream, duplex: "half" } as RequestInit),
    );
    assert.equal(r.status, 413);
  });

  test("unknown query parameters and duplicates are 400", async () => {
    const { call } = setup();
    assert.equal((await call("GET", "/db/k?foo=1")).status, 400);
    assert.equal((await call("GET", "/db/k?prev=1")).status, 400);
    assert.equal((await call("PUT", "/db/k?stale=true", "v")).status, 400);
    assert.equal((await call("PUT", "/db/k?prev=a&prev=b", "v")).status, 400);
    assert.equal((await call("GET", "/status?x")).status, 400);
    assert.equal((await call("POST", "/transfer?to=n2&x=1")).status, 400);
  });

  test("unsupported methods are 405 with Allow; unknown paths 404", async () => {
    const { call } = setup();
    let r = await call("PATCH", "/db/k", "v");
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "GET, PUT, POST, DELETE");
    r = await call("POST", "/status");
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "GET");
    r = await call("GET", "/join");
    assert.equal(r.headers.get("allow"), "POST");
    assert.equal((await call("GET", "/members/n1")).status, 405);
    assert.equal((await call("GET", "/nope")).status, 404);
  });

  test("join validates its JSON body", async () => {
    const { call, service } = setup();
    for (const body of ["{", "[]", "null", '{"id":"a b","address":"h:1"}', '{"id":"a","address":"h"}', "\xff"]) {
      assert.equal((await call("POST", "/join", body)).status, 400, body);
    }
    const r = await call("POST", "/join", JSON.stringify({ id: "n2", address: "localhost:4002" }));
    assert.equal(r.status, 200);
    assert.equal((await r.json()).cluster, "c");
    assert.deepEqual(service.joined, [["n2", "localhost:4002"]]);
  });

  test("status, members and metrics", async () => {
    const { call } = setup();
    const s = await (await call("GET", "/status")).json();
    for (const f of ["id", "role", "term", "leader", "commit", "applied", "members"]) assert.ok(f in s, f);
    const m = await (await call("GET", "/members")).json();
    assert.deepEqual(m, [{ id: "n1", address: "localhost:1", suffrage: "voter" }]);
    await call("PUT", "/db/a", "1");
    await call("GET", "/db/a");
    await call("GET", "/db/%00");
    const text = await (await call("GET", "/metrics")).text();
    assert.match(text, /^raftd_members 1$/m);
    assert.match(text, /^# HELP raftd_keys Keys in the local key-value store\.$/m);
    assert.match(text, /^raftd_proposals_total\{op="put"\} 1$/m);
    assert.match(text, /^raftd_reads_total\{mode="linearizable"\} 1$/m);
    assert.match(text, /^raftd_errors_total\{status="400"\} 1$/m);
    assert.match(text, /^raftd_http_request_duration_seconds_count\{route="db"\} 3$/m);
    assert.match(text, /^# TYPE raftd_http_request_duration_seconds histogram$/m);
  });

  test("no leader: 503 with Retry-After", async () => {
    const { call, service } = setup();
    service.unavailable = true;
    const r = await call("PUT", "/db/k", "v");
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "1");
    service.unavailable = false;
    service.leaderAddress = undefined;
    const r2 = await call("GET", "/db/k");
    assert.equal(r2.status, 503);
    assert.equal(r2.headers.get("retry-after"), "1");
    assert.equal((await call("GET", "/db/k?stale=true")).status, 404);
  });

  test("a follower proxies to the leader once, body and query included", async () => {
    const seen: { url: string; method: string; body: string; forwarded: string | null }[] = [];
    const { call, service } = setup((url, init) => {
      seen.push({
        url,
        method: String(init.method),
        body: init.body ? new TextDecoder().decode(init.body as Uint8Array) : "",
        forwarded: new Headers(init.headers).get(FORWARDED_HEADER),
      });
      return Promise.resolve(new Response(null, { status: 412 }));
    });
    service.leaderAddress = "leader:9";
    const r = await call("POST", "/db/k?prev=a", "b");
    assert.equal(r.status, 412);
    assert.deepEqual(seen, [{ url: "http://leader:9/db/k?prev=a", method: "POST", body: "b", forwarded: "1" }]);
    // Already forwarded by someone else: no second hop.
    const r2 = await call("POST", "/db/k", "b", { [FORWARDED_HEADER]: "1" });
    assert.equal(r2.status, 503);
    assert.equal(seen.length, 1);
  });

  test("a write to an unreachable leader is a 504 'outcome unknown' (its answer may be what was lost), not a crash", async () => {
    const { call, service } = setup(() => Promise.reject(new Error("connection refused")));
    service.leaderAddress = "leader:9";
    const r = await call("DELETE", "/db/k");
    assert.equal(r.status, 504);
    assert.equal(r.headers.get(OUTCOME_HEADER), "unknown");
    assert.match(await r.text(), /read before retrying/);
    assert.equal(r.headers.has("retry-after"), false, "no invitation to retry blindly");
  });

  test("a request refused for want of a leader says nothing was applied, and when to retry", async () => {
    const { call, service } = setup();
    service.leaderAddress = undefined;
    const r = await call("POST", "/db/k", "b");
    assert.equal(r.status, 503);
    assert.equal(r.headers.get(OUTCOME_HEADER), "not-applied");
    assert.ok(r.headers.has("retry-after"));
  });

  test("a path the server rewrote (dot segments, backslash) is refused, never served as another key", async () => {
    const { handler, service } = setup();
    const r = await handler(new Request("http://x/db/s", { method: "PUT", body: "v" }), { rewrittenPath: true });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /'\.' or '\.\.'/);
    assert.equal(service.kv.get("s"), undefined);
  });

  test("join bodies: replace is a boolean, unknown fields are refused", () => {
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    assert.deepEqual(parseJoin(enc({ id: "a", address: "h:1", replace: true })), {
      id: "a",
      address: "h:1",
      replace: true,
    });
    assert.deepEqual(parseJoin(enc({ id: "a", address: "h:1", replace: false })), { id: "a", address: "h:1" });
    assert.ok("error" in parseJoin(enc({ id: "a", address: "h:1", replace: "yes" })));
    assert.ok("error" in parseJoin(enc({ id: "a", address: "h:1", force: true })));
  });

  test("the peer handler gets its paths first", async () => {
    const service = new FakeService();
    const handler = createHandler({
      service,
      metrics: new Metrics(),
      maxValueBytes: 16,
      peerHandler: (req) =>
        new URL(req.url).pathname.startsWith("/raft/")
          ? Promise.resolve(new Response(null, { status: 204 }))
          : undefined,
    });
    assert.equal((await handler(new Request("http://x/raft/messages", { method: "POST" }))).status, 204);
    assert.equal((await handler(new Request("http://x/status"))).status, 200);
  });
});
