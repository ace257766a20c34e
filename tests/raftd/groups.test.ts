// Black-box tests of raftd -groups N: three real processes hosting 4 groups of
// keys each; only the command line and the HTTP API are used.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AckedWrites,
  Cluster,
  FAST_FLAGS,
  formThree,
  freePort,
  type RaftdProcess,
  type Status,
  waitFor,
} from "./harness.ts";

const T = { timeout: 90_000 };
const GROUPS = 4;

/** Every node lists `GROUPS` groups, each with the three nodes as voters and a leader. */
async function groupsFormed(nodes: RaftdProcess[]): Promise<Status[] | undefined> {
  const all = await Promise.all(nodes.map((n) => n.status()));
  for (const s of all) {
    if (s?.groups?.length !== GROUPS) return undefined;
    for (const g of s.groups) {
      if (g.leader === null || g.members.filter((m) => m.suffrage === "voter").length !== nodes.length) {
        return undefined;
      }
    }
  }
  return all as Status[];
}

/** Every group on every one of `nodes` has exactly `voters` as its voters. */
async function groupVoters(nodes: RaftdProcess[], voters: string[]): Promise<true | undefined> {
  for (const n of nodes) {
    const s = await n.status();
    if (s?.groups?.length !== GROUPS) return undefined;
    for (const g of s.groups) {
      const have = g.members.filter((m) => m.suffrage === "voter").map((m) => m.id).sort();
      if (JSON.stringify(have) !== JSON.stringify(voters)) return undefined;
    }
  }
  return true;
}

/** Group id → leader, as `node` sees it. */
function leadersOf(s: Status): Map<number, string | null> {
  return new Map(s.groups!.map((g) => [g.group, g.leader]));
}

describe("raftd -groups (black box)", () => {
  const cluster = new Cluster();
  let nodes: RaftdProcess[];
  const writes = new AckedWrites(cluster);
  const write = (node: RaftdProcess, key: string, value: string) => writes.write(node, key, value);
  const assertAllAcked = (node: RaftdProcess) => writes.assertAll(node);

  before(async () => {
    nodes = await formThree(cluster, [], ["-groups", String(GROUPS)]);
  });

  after(async () => {
    await cluster.cleanup();
  });

  test("/status lists every group, each with the three nodes as voters", T, async () => {
    const all = await waitFor("4 groups of 3 voters on every node", () => groupsFormed(nodes), 40_000)
      .catch((e) => {
        throw new Error(`${e}\n${cluster.logs()}`);
      });
    for (const s of all) {
      assert.deepEqual(s.groups!.map((g) => g.group), [1, 2, 3, 4]);
      for (const g of s.groups!) {
        for (const f of ["role", "term", "leader", "commit", "applied", "quiescent", "members"]) assert.ok(f in g, f);
      }
    }
  });

  test("leaders are spread over the nodes by balancing: group g led by the voter at g mod 3", T, async () => {
    // Sorted voters n1, n2, n3: group 1 → n2, 2 → n3, 3 → n1, 4 → n2.
    const want = new Map([[1, "n2"], [2, "n3"], [3, "n1"], [4, "n2"]]);
    await waitFor("balanced leaders", async () => {
      const all = await groupsFormed(nodes);
      if (all === undefined) return undefined;
      return all.every((s) => [...leadersOf(s)].every(([g, l]) => want.get(g) === l)) || undefined;
    }, 40_000).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify((await nodes[0]!.status())?.groups)}\n${cluster.logs()}`);
    });
  });

  test("writes to many keys, sent to any node, are read back from every node", T, async () => {
    for (let i = 0; i < 40; i++) await write(nodes[i % 3]!, `k${i}`, `v${i}`);
    for (const n of nodes) await assertAllAcked(n);
    // The keys landed in every group: each group's commit moved past its setup entries.
    const s = (await nodes[0]!.status())!;
    assert.ok(s.groups!.every((g) => g.applied > 3), JSON.stringify(s.groups));
  });

  test("a node killed: writes to every group go on, reads see them", T, async () => {
    const victim = nodes[1]!; // n2 leads groups 1 and 4
    await victim.stop("SIGKILL");
    const alive = nodes.filter((n) => n !== victim);
    for (let i = 0; i < 40; i++) await write(alive[i % 2]!, `after${i}`, `w${i}`);
    for (const n of alive) await assertAllAcked(n);
    const s = (await alive[0]!.status())!;
    assert.ok(s.groups!.every((g) => g.leader !== "n2"), JSON.stringify(s.groups));
  });

  test("the killed node restarts from its groups' log and catches up", T, async () => {
    const victim = nodes[1]!;
    victim.start(["-election-timeout", "300ms", "-request-timeout", "3s", "-groups", String(GROUPS)]);
    await waitFor("n2 caught up", async () => {
      const r = await victim.request("GET", `/db/after39`);
      return r.status === 200 && r.text === "w39" || undefined;
    }, 30_000);
    await assertAllAcked(victim);
  });

  test("a restart with another -groups is refused: the count is part of the data", T, async () => {
    const n3 = nodes[2]!;
    assert.equal(await n3.stop("SIGTERM"), 0);
    n3.start(["-election-timeout", "300ms", "-groups", "8"]);
    assert.equal(await n3.exited, 2, n3.output);
    assert.match(n3.output, /holds 4 group\(s\) of keys: start it with -groups 4/);
    n3.start(["-election-timeout", "300ms"]);
    assert.equal(await n3.exited, 2, n3.output);
    n3.start(["-election-timeout", "300ms", "-request-timeout", "3s", "-groups", String(GROUPS)]);
    await waitFor("n3 back", async () => (await n3.request("GET", "/db/after39")).text === "w39" || undefined, 30_000);
  });

  test("a joiner with another -groups is refused with the cluster's count", T, async () => {
    const odd = await cluster.add("odd");
    odd.start(["-election-timeout", "300ms", "-groups", "2", "-join", nodes[0]!.address]);
    const code = await odd.exited;
    assert.equal(code, 2, odd.output);
    assert.match(odd.output, /runs 4 group\(s\) of keys: start with -groups 4/);
  });
});

describe("raftd -groups with -cluster-secret and -admin-token: joins and removals reach every group", () => {
  const cluster = new Cluster();
  const TOKEN = "admin-token-for-groups-0123456789";
  let nodes: RaftdProcess[];
  let flags: string[];
  const writes = new AckedWrites(cluster);

  before(async () => {
    const secret = join(cluster.root, "secret");
    const token = join(cluster.root, "token");
    writeFileSync(secret, "a cluster secret for the groups test, 47 bytes\n");
    writeFileSync(token, TOKEN + "\n");
    flags = ["-groups", String(GROUPS), "-cluster-secret", secret, "-admin-token", token];
    nodes = await formThree(cluster, [], flags);
    await waitFor("every group on n1..n3", () => groupVoters(nodes, ["n1", "n2", "n3"]), 40_000).catch((e) => {
      throw new Error(`${e}\n${cluster.logs()}`);
    });
  });
  after(() => cluster.cleanup());

  test("a fourth node joins every group, and serves every key", T, async () => {
    const n4 = await cluster.add("n4");
    n4.start([...FAST_FLAGS, ...flags, "-id", "n4", "-join", nodes[0]!.address]);
    const all = [...nodes, n4];
    await waitFor("every group on n1..n4", () => groupVoters(all, ["n1", "n2", "n3", "n4"]), 40_000).catch((e) => {
      throw new Error(`${e}\n${cluster.logs()}`);
    });
    // Rebalanced onto the new voter: sorted n1..n4, group g led by the voter at g mod 4.
    const want = new Map([[1, "n2"], [2, "n3"], [3, "n4"], [4, "n1"]]);
    await waitFor("leaders balanced over four nodes", async () => {
      for (const n of all) {
        const s = await n.status();
        if (!s?.groups?.every((g) => want.get(g.group) === g.leader)) return undefined;
      }
      return true;
    }, 40_000).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify((await n4.status())?.groups)}\n${cluster.logs()}`);
    });
    for (let i = 0; i < 16; i++) await writes.write(all[i % 4]!, `s${i}`, `x${i}`);
    for (const n of all) await writes.assertAll(n);
  });

  test("DELETE /members/n4 needs the token, then takes n4 out of every group", T, async () => {
    const leader = await cluster.leader();
    assert.equal((await leader.request("DELETE", "/members/n4")).status, 401);
    const r = await leader.request("DELETE", "/members/n4", undefined, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200, r.text);
    await waitFor("every group on n1..n3 again", () => groupVoters(nodes, ["n1", "n2", "n3"]), 40_000)
      .catch((e) => {
        throw new Error(`${e}\n${cluster.logs()}`);
      });
    const n4 = cluster.nodes.find((n) => n.name === "n4")!;
    assert.equal(await n4.exited, 0, n4.output);
    await writes.write(nodes[2]!, "after-removal", "ok");
    for (const n of nodes) await writes.assertAll(n);
  });
});

describe("raftd -groups with -snapshot-entries: the groups of keys snapshot, and a node restarts from them", () => {
  const cluster = new Cluster();
  const flags = ["-groups", "2", "-snapshot-entries", "10"];
  let nodes: RaftdProcess[];
  const writes = new AckedWrites(cluster);
  /** The snapshot files of group `g` in `node`'s data directory. */
  const snaps = (node: RaftdProcess, g: number) => {
    try {
      return readdirSync(join(node.dataDir, "groups", "snapshots", String(g), "snapshots")).filter((n) =>
        n.endsWith(".snap")
      );
    } catch {
      return [];
    }
  };
  /** Whether every group on `node` has a snapshot reaching `atLeast`. */
  const snapshotted = async (node: RaftdProcess, atLeast: number) => {
    const s = await node.status();
    return s?.groups?.length === 2 && s.groups.every((g) => g.snapshotIndex >= atLeast) || undefined;
  };

  before(async () => {
    nodes = await formThree(cluster, [], flags);
  });
  after(() => cluster.cleanup());

  test("every group snapshots its keys on every node, on disk per group", T, async () => {
    for (let i = 0; i < 60; i++) await writes.write(nodes[i % 3]!, `s${i}`, `v${i}`);
    for (const n of nodes) {
      await waitFor(`${n.name}'s groups snapshotted`, () => snapshotted(n, 10), 30_000).catch(async (e) => {
        throw new Error(`${e}: ${JSON.stringify((await n.status())?.groups)}\n${cluster.logs()}`);
      });
      for (const g of [1, 2]) assert.equal(snaps(n, g).length, 1, `${n.name} group ${g}: ${snaps(n, g)}`);
    }
  });

  test("a killed node restarts from its groups' snapshots and log, and serves every key", T, async () => {
    const victim = nodes[2]!;
    const before = (await victim.status())!.groups!.map((g) => g.snapshotIndex);
    await victim.stop("SIGKILL");
    const alive = nodes.slice(0, 2);
    for (let i = 0; i < 30; i++) await writes.write(alive[i % 2]!, `t${i}`, `w${i}`);
    victim.start([...FAST_FLAGS, ...flags]);
    await waitFor("the victim caught up", async () => {
      const r = await victim.request("GET", "/db/t29");
      return r.status === 200 && r.text === "w29" || undefined;
    }, 30_000);
    await writes.assertAll(victim);
    const s = (await victim.status())!;
    s.groups!.forEach((g, i) => assert.ok(g.snapshotIndex >= before[i]!, JSON.stringify(s.groups)));
  });
});

describe("raftd -groups with mutual TLS between peers: the groups' own mTLS listener at the peer port + 1", () => {
  const cluster = new Cluster();
  const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url).href);
  after(() => cluster.cleanup());

  test("certified nodes form every group over mTLS and serve every key", T, async () => {
    const nodes = [await cluster.add("n1"), await cluster.add("n2"), await cluster.add("n3")];
    const flags = new Map<RaftdProcess, string[]>();
    for (const n of nodes) {
      const port = await freePort(2);
      flags.set(n, [
        ...FAST_FLAGS,
        "-groups",
        String(GROUPS),
        "-id",
        n.name,
        "-peer-cert",
        fixture(`peer-${n.name}.crt`),
        "-peer-key",
        fixture(`peer-${n.name}.key`),
        "-peer-ca",
        fixture("ca.crt"),
        "-peer-addr",
        `127.0.0.1:${port}`,
      ]);
    }
    nodes[0]!.start(flags.get(nodes[0]!)!);
    await waitFor("n1 to lead", async () => (await nodes[0]!.status())?.role === "leader" || undefined);
    for (const n of nodes.slice(1)) n.start([...flags.get(n)!, "-join", nodes[0]!.address]);
    await waitFor("every group on n1..n3", () => groupVoters(nodes, ["n1", "n2", "n3"]), 45_000).catch((e) => {
      throw new Error(`${e}\n${cluster.logs()}`);
    });
    const writes = new AckedWrites(cluster);
    for (let i = 0; i < 12; i++) await writes.write(nodes[i % 3]!, `m${i}`, `t${i}`);
    for (const n of nodes) await writes.assertAll(n);
    // The HTTP port serves no peer path for the groups either.
    const r = await nodes[0]!.request("POST", "/raft/groups/messages", new Uint8Array(8));
    assert.equal(r.status, 404, r.text);
  });
});
