// Black-box tests of raftd -groups N: three real processes hosting 4 groups of
// keys each; only the command line and the HTTP API are used.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, formThree, type RaftdProcess, type Status, waitFor } from "./harness.ts";

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

/** Group id → leader, as `node` sees it. */
function leadersOf(s: Status): Map<number, string | null> {
  return new Map(s.groups!.map((g) => [g.group, g.leader]));
}

describe("raftd -groups (black box)", () => {
  const cluster = new Cluster();
  let nodes: RaftdProcess[];
  const acked = new Map<string, string>();

  async function write(node: RaftdProcess, key: string, value: string): Promise<void> {
    const r = await node.request("PUT", `/db/${key}`, value);
    assert.equal(r.status, 200, `PUT ${key} on ${node.name}: ${r.status} ${r.text}\n${cluster.logs()}`);
    acked.set(key, value);
  }

  async function assertAllAcked(node: RaftdProcess): Promise<void> {
    for (const [key, value] of acked) {
      const r = await node.request("GET", `/db/${key}`);
      assert.equal(r.status, 200, `GET ${key} on ${node.name}: ${r.status} ${r.text}`);
      assert.equal(r.text, value, `value of ${key} on ${node.name}`);
    }
  }

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
    for (let i = 0; i < 40; i++) {
      const node = alive[i % 2]!;
      const key = `after${i}`;
      await waitFor(`PUT ${key}`, async () => {
        const r = await node.request("PUT", `/db/${key}`, `w${i}`);
        return r.status === 200 || undefined;
      }, 30_000).catch((e) => {
        throw new Error(`${e}\n${cluster.logs()}`);
      });
      acked.set(key, `w${i}`);
    }
    for (const n of alive) await assertAllAcked(n);
    const s = (await alive[0]!.status())!;
    assert.ok(s.groups!.every((g) => g.leader !== "n2" && g.leader !== null), JSON.stringify(s.groups));
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

  test("a joiner with another -groups is refused with the cluster's count", T, async () => {
    const odd = await cluster.add("odd");
    odd.start(["-election-timeout", "300ms", "-groups", "2", "-join", nodes[0]!.address]);
    const code = await odd.exited;
    assert.equal(code, 2, odd.output);
    assert.match(odd.output, /runs 4 group\(s\) of keys: start with -groups 4/);
  });
});
