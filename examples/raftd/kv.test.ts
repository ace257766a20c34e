import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeCommand, encodeCommand, type KvCommand, KvDecodeError, KvStore, utf8Bytes } from "./kv.ts";

const key = fc.string({ maxLength: 20 });
const bytes = fc.uint8Array({ maxLength: 40 });
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key, value: bytes }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("cas" as const), key, prev: bytes, value: bytes }),
  fc.record({ op: fc.constant("setMember" as const), id: key, address: key }),
  fc.record({ op: fc.constant("setMember" as const), id: key, address: key, peer: key }),
  fc.record({ op: fc.constant("removeMember" as const), id: key }),
);

describe("raftd kv", () => {
  test("commands round-trip through their encoding", () => {
    fc.assert(fc.property(command, (cmd) => {
      assert.deepEqual(decodeCommand(encodeCommand(cmd)), { ...cmd });
    }));
  });

  test("encoding is compact: a put costs 3 bytes plus key and value", () => {
    assert.equal(encodeCommand({ op: "put", key: "k", value: utf8Bytes("v") }).length, 5);
  });

  test("garbage never decodes silently and never crashes apply", () => {
    assert.throws(() => decodeCommand(new Uint8Array([9])), KvDecodeError);
    assert.throws(() => decodeCommand(new Uint8Array([1, 5, 65])), KvDecodeError);
    assert.throws(() => decodeCommand(new Uint8Array([])), KvDecodeError);
    const kv = new KvStore();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 30 }), (b) => {
      const r = kv.applyBytes(b);
      assert.ok(["ok", "deleted", "mismatch", "invalid"].includes(r.type));
    }));
  });

  test("put, get, delete and compare-and-set", () => {
    const kv = new KvStore();
    assert.deepEqual(kv.apply({ op: "put", key: "a", value: utf8Bytes("1") }), { type: "ok" });
    assert.deepEqual(kv.get("a"), utf8Bytes("1"));
    const miss = kv.apply({ op: "cas", key: "a", prev: utf8Bytes("2"), value: utf8Bytes("3") });
    assert.deepEqual(miss, { type: "mismatch", current: utf8Bytes("1") });
    assert.deepEqual(kv.get("a"), utf8Bytes("1"));
    assert.deepEqual(kv.apply({ op: "cas", key: "a", prev: utf8Bytes("1"), value: utf8Bytes("3") }), { type: "ok" });
    assert.deepEqual(kv.get("a"), utf8Bytes("3"));
    assert.deepEqual(kv.apply({ op: "cas", key: "zz", prev: utf8Bytes(""), value: utf8Bytes("x") }), {
      type: "mismatch",
      current: undefined,
    });
    assert.deepEqual(kv.apply({ op: "delete", key: "a" }), { type: "deleted", existed: true });
    assert.deepEqual(kv.apply({ op: "delete", key: "a" }), { type: "deleted", existed: false });
    assert.equal(kv.get("a"), undefined);
  });

  test("address book changes notify the listener", () => {
    const seen: string[][] = [];
    const kv = new KvStore((m) => seen.push([...m].map(([k, v]) => `${k}=${v}`)));
    kv.apply({ op: "setMember", id: "n1", address: "h:1" });
    kv.apply({ op: "setMember", id: "n2", address: "h:2" });
    kv.apply({ op: "removeMember", id: "n1" });
    assert.deepEqual(seen, [["n1=h:1"], ["n1=h:1", "n2=h:2"], ["n2=h:2"]]);
  });

  test("snapshot and restore reproduce the state; equal states give equal snapshots", () => {
    fc.assert(fc.property(fc.array(command, { maxLength: 30 }), (cmds) => {
      const a = new KvStore();
      for (const c of cmds) a.apply(c);
      const snap = a.snapshot();
      let notified = 0;
      const b = new KvStore(() => notified++);
      b.apply({ op: "put", key: "stale", value: utf8Bytes("gone") });
      b.restore(snap);
      assert.equal(notified, 1);
      assert.deepEqual(b.snapshot(), snap);
      assert.deepEqual([...b.members()].sort(), [...a.members()].sort());
      for (const c of cmds) if (c.op === "put") assert.deepEqual(b.get(c.key), a.get(c.key));
      if (!cmds.some((c) => (c.op === "put" || c.op === "cas") && c.key === "stale")) {
        assert.equal(b.get("stale"), undefined);
      }
    }));
  });

  test("a restore fed in chunks, split anywhere, gives the state restore() gives, and only at commit", () => {
    fc.assert(fc.property(
      fc.array(command, { maxLength: 30 }),
      fc.array(fc.integer({ min: 0, max: 1 << 16 }), { maxLength: 12 }),
      (cmds, cuts) => {
        const a = new KvStore();
        for (const c of cmds) a.apply(c);
        const snap = a.snapshot();
        const b = new KvStore();
        b.apply({ op: "put", key: "before", value: utf8Bytes("x") });
        b.apply({ op: "setMember", id: "stale", address: "h:9", peer: "h:19" });
        const before = b.snapshot();
        const restore = b.beginRestore();
        const points = [...new Set(cuts.map((c) => c % (snap.length + 1)))].sort((x, y) => x - y);
        let at = 0;
        for (const p of [...points, snap.length]) {
          restore.write(snap.slice(at, p)); // empty chunks too
          at = p;
          assert.deepEqual(b.snapshot(), before, "nothing changes before commit");
        }
        restore.commit();
        assert.deepEqual(b.snapshot(), snap);
      },
    ));
  });

  test("a chunked restore cut short, with bytes past its end, or discarded leaves the state alone", () => {
    const a = new KvStore();
    for (let i = 0; i < 50; i++) a.apply({ op: "put", key: `k${i}`, value: utf8Bytes("v".repeat(i)) });
    const snap = a.snapshot();
    const b = new KvStore();
    b.apply({ op: "put", key: "k", value: utf8Bytes("mine") });
    const cut = b.beginRestore();
    cut.write(snap.subarray(0, 100));
    cut.write(snap.subarray(100, snap.length - 3));
    assert.throws(() => cut.commit(), KvDecodeError);
    const long = b.beginRestore();
    long.write(snap);
    assert.throws(() => long.write(Uint8Array.of(0)), /trailing/);
    assert.throws(() => long.commit(), KvDecodeError);
    const dropped = b.beginRestore();
    dropped.write(snap);
    dropped.discard();
    assert.throws(() => dropped.commit(), KvDecodeError);
    assert.throws(() => b.beginRestore().write(Uint8Array.of(0x99)), /not a raftd snapshot/);
    assert.deepEqual(b.get("k"), utf8Bytes("mine"));
    assert.equal(b.size, 1);
    // Once committed, the decoded maps are the store's: a late discard or a second commit leaves them be.
    const done = b.beginRestore();
    done.write(snap);
    done.commit();
    done.discard();
    assert.throws(() => done.commit(), /over/);
    assert.deepEqual(b.snapshot(), snap);
  });

  test("a corrupt snapshot is refused and leaves the state alone", () => {
    const kv = new KvStore();
    kv.apply({ op: "put", key: "k", value: utf8Bytes("v") });
    const snap = kv.snapshot();
    assert.throws(() => kv.restore(snap.subarray(0, snap.length - 1)), KvDecodeError);
    assert.throws(() => kv.restore(new Uint8Array([0x52, 9])), KvDecodeError);
    assert.deepEqual(kv.get("k"), utf8Bytes("v"));
  });

  test("peer (mTLS) addresses are replicated with setMember, survive a snapshot, and go with removeMember", () => {
    const seen: [string[], string[]][] = [];
    const kv = new KvStore((m, p) => seen.push([[...m.keys()], [...p.entries()].map(([id, a]) => `${id}@${a}`)]));
    kv.apply({ op: "setMember", id: "a", address: "h:1", peer: "h:10001" });
    kv.apply({ op: "setMember", id: "b", address: "h:2" });
    assert.deepEqual([...kv.peers()], [["a", "h:10001"]]);
    const copy = new KvStore();
    copy.restore(kv.snapshot());
    assert.deepEqual([...copy.peers()], [["a", "h:10001"]]);
    assert.deepEqual([...copy.members()].sort(), [["a", "h:1"], ["b", "h:2"]]);
    kv.apply({ op: "setMember", id: "a", address: "h:1" }); // re-recorded without mTLS: the peer address goes
    assert.equal(kv.peers().size, 0);
    kv.apply({ op: "setMember", id: "b", address: "h:2", peer: "h:10002" });
    kv.apply({ op: "removeMember", id: "b" });
    assert.equal(kv.peers().size, 0);
    assert.deepEqual(seen.at(-1), [["a"], []]);
  });

  test("a version 1 snapshot (before peer addresses) still restores", () => {
    // magic 'R', version 1, one member (a → h:1), no keys
    const v1 = Uint8Array.of(0x52, 1, 1, 1, 0x61, 3, 0x68, 0x3a, 0x31, 0);
    const kv = new KvStore();
    kv.restore(v1);
    assert.deepEqual([...kv.members()], [["a", "h:1"]]);
    assert.equal(kv.peers().size, 0);
  });
});
