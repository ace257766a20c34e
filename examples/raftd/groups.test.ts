import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { groupOfKey, preferredLeader } from "./groups.ts";
import { formatIdentity, IdentityError, parseIdentity } from "./identity.ts";
import { crc32c, formatCrc32c } from "../../core/mod.ts";

describe("raftd groups: key routing and preferred leaders", () => {
  test("groupOfKey is 1 + FNV-1a-32 of the UTF-8 bytes mod N (pinned: every node must agree, forever)", () => {
    // FNV-1a-32: "" → 0x811c9dc5, "a" → 0xe40c292c, "foobar" → 0xbf9cf968 (the published test vectors).
    assert.equal(groupOfKey("", 1000), 1 + (0x811c9dc5 % 1000));
    assert.equal(groupOfKey("a", 1000), 1 + (0xe40c292c % 1000));
    assert.equal(groupOfKey("foobar", 1000), 1 + (0xbf9cf968 % 1000));
    // Non-ASCII keys hash their UTF-8 bytes, not UTF-16 code units.
    assert.equal(groupOfKey("é", 7), groupOfKey("\u00e9", 7));
    assert.notEqual(groupOfKey("é", 1 << 30), groupOfKey("e\u0301", 1 << 30));
  });

  test("groupOfKey stays in 1..N and spreads many keys over every group", () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const g = groupOfKey(`key-${i}`, 16);
      assert.ok(g >= 1 && g <= 16, String(g));
      counts[g - 1]!++;
    }
    for (const c of counts) assert.ok(c > 800 && c < 1200, JSON.stringify(counts));
    assert.equal(groupOfKey("anything", 1), 1);
  });

  test("preferredLeader: group g prefers the voter at g mod n, so n voters lead N/n groups each", () => {
    const voters = ["a", "b", "c"];
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((g) => preferredLeader(g, voters)), ["b", "c", "a", "b", "c", "a"]);
    assert.equal(preferredLeader(1, []), undefined);
  });
});

describe("raftd identity: the group count is part of the data", () => {
  const base = { id: "n1", address: "127.0.0.1:4001", cluster: "c1", founder: true, members: { n1: "127.0.0.1:4001" } };

  test("-groups N > 1 is saved and read back; one group writes the file as before", () => {
    assert.equal(parseIdentity(formatIdentity({ ...base, groups: 16 })).groups, 16);
    const plain = formatIdentity(base);
    assert.doesNotMatch(plain, /groups/);
    assert.equal(formatIdentity({ ...base, groups: 1 }), plain);
    assert.equal(parseIdentity(plain).groups, undefined);
  });

  test("a bad group count is refused even under a valid checksum (a file written wrong, not just damaged)", () => {
    for (const groups of [0, 1, -4, 2.5, "16"]) {
      const fields = { ...base, groups };
      const checksum = `crc32c:${formatCrc32c(crc32c(new TextEncoder().encode(JSON.stringify(fields))))}`;
      assert.throws(
        () => parseIdentity(JSON.stringify({ ...fields, checksum })),
        (e: unknown) => e instanceof IdentityError && /bad groups/.test(e.message),
        String(groups),
      );
    }
    const fields = { ...base, groups: 8 };
    const checksum = `crc32c:${formatCrc32c(crc32c(new TextEncoder().encode(JSON.stringify(fields))))}`;
    assert.equal(parseIdentity(JSON.stringify({ ...fields, checksum })).groups, 8);
  });
});
