import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { secretKey } from "../../adapters/transport/secret.ts";
import { AdminGate, answerChallenge, NONCE_TTL_MS, parseSecretAuth } from "./admin.ts";

const SECRET = new TextEncoder().encode("the cluster secret, 32 bytes ok.");
const body = new TextEncoder().encode(JSON.stringify({ id: "n4", address: "10.0.0.4:4001" }));
const req = (authorization?: string) =>
  new Request("http://x/join", { method: "POST", headers: authorization ? { authorization } : {} });

async function gate(o: { token?: string; secret?: Uint8Array; now?: () => number } = {}): Promise<AdminGate> {
  return await AdminGate.create({
    cluster: "c1",
    ...(o.token ? { token: o.token } : {}),
    ...(o.secret ? { secret: { bytes: o.secret, key: secretKey } } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
}

/** The challenge a gate issues, answered with `key` for `b`. */
async function proved(g: AdminGate, key: CryptoKey, b = body, cluster = "c1"): Promise<string> {
  const challenge = await g.check(req("PlankSecret"), "join", b, "10.0.0.9");
  assert.equal(challenge?.status, 401);
  const answer = await answerChallenge(key, cluster, challenge!.headers.get("www-authenticate"), b);
  assert.ok(answer !== undefined);
  return answer;
}

describe("raftd admin gate", () => {
  test("without a token: loopback clients only, on every admin route", async () => {
    const g = await gate();
    for (const route of ["join", "member", "transfer"] as const) {
      assert.equal(await g.check(req(), route, body, "127.0.0.1"), undefined);
      assert.equal(await g.check(req(), route, body, "::1"), undefined);
      assert.equal((await g.check(req(), route, body, "10.0.0.9"))?.status, 401);
      assert.equal((await g.check(req(), route, body, undefined))?.status, 401);
    }
  });

  test("with a token: the Bearer token from anywhere, nothing without it (loopback included)", async () => {
    const g = await gate({ token: "s3cret-token-0123456789" });
    assert.equal(await g.check(req("Bearer s3cret-token-0123456789"), "member", undefined, "10.0.0.9"), undefined);
    const none = await g.check(req(), "member", undefined, "127.0.0.1");
    assert.equal(none?.status, 401);
    assert.match(none!.headers.get("www-authenticate")!, /Bearer realm="raftd"/);
    assert.equal((await g.check(req("Bearer s3cret-token-012345678"), "member", undefined, "127.0.0.1"))?.status, 403);
    assert.equal(
      (await g.check(req("Bearer s3cret-token-0123456789x"), "member", undefined, "127.0.0.1"))?.status,
      403,
    );
  });

  test("a join proved with the secret is accepted once; a replay, another body or another secret is not", async () => {
    const g = await gate({ secret: SECRET });
    const key = await secretKey(SECRET, "raftd join");
    const answer = await proved(g, key);
    assert.equal(await g.check(req(answer), "join", body, "10.0.0.9"), undefined);
    assert.equal((await g.check(req(answer), "join", body, "10.0.0.9"))?.status, 403, "replayed");
    const other = new TextEncoder().encode(JSON.stringify({ id: "evil", address: "6.6.6.6:1" }));
    assert.equal((await g.check(req(await proved(g, key)), "join", other, "10.0.0.9"))?.status, 403, "body swapped");
    const wrongKey = await secretKey(new TextEncoder().encode("not the cluster secret, 32 bytes"), "raftd join");
    const refused = await g.check(req(await proved(g, wrongKey)), "join", body, "10.0.0.9");
    assert.equal(refused?.status, 403);
    assert.match(await refused!.text(), /secret mismatch/);
    assert.equal((await g.check(req(await proved(g, key, body, "c2")), "join", body, "10.0.0.9"))?.status, 403);
  });

  test("the proof is for joins only: it opens neither /members nor /transfer", async () => {
    const g = await gate({ secret: SECRET });
    const answer = await proved(g, await secretKey(SECRET, "raftd join"));
    assert.equal((await g.check(req(answer), "member", undefined, "10.0.0.9"))?.status, 403);
  });

  test("a nonce from another node of the cluster verifies (the leader re-checks what a follower forwarded)", async () => {
    const follower = await gate({ secret: SECRET });
    const leader = await gate({ secret: SECRET });
    const answer = await proved(follower, await secretKey(SECRET, "raftd join"));
    assert.equal(await follower.check(req(answer), "join", body, "10.0.0.9"), undefined);
    assert.equal(await leader.check(req(answer), "join", body, "127.0.0.1"), undefined);
    assert.equal((await leader.check(req(answer), "join", body, "127.0.0.1"))?.status, 403, "once per node");
  });

  test("a nonce older than its time to live is refused", async () => {
    let now = 1_000_000;
    const g = await gate({ secret: SECRET, now: () => now });
    const answer = await proved(g, await secretKey(SECRET, "raftd join"));
    now += NONCE_TTL_MS + 1;
    assert.equal((await g.check(req(answer), "join", body, "10.0.0.9"))?.status, 403);
  });

  test("a forged nonce (right shape, no MAC of the secret) is refused", async () => {
    const g = await gate({ secret: SECRET });
    const key = await secretKey(SECRET, "raftd join");
    const fake = "A".repeat(54);
    const answer = await answerChallenge(key, "c1", `PlankSecret nonce="${fake}"`, body);
    assert.equal((await g.check(req(answer), "join", body, "10.0.0.9"))?.status, 403);
  });

  test("PlankSecret header parsing", () => {
    assert.deepEqual([...parseSecretAuth('PlankSecret nonce="a", mac="b"')!], [["nonce", "a"], ["mac", "b"]]);
    assert.equal(parseSecretAuth("PlankSecret")?.size, 0);
    assert.equal(parseSecretAuth("Bearer x"), undefined);
    assert.equal(parseSecretAuth("PlankSecret nonce=a"), undefined);
  });
});
