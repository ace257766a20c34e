/**
 * A replicated counter on Deno: three nodes in one process, each with its own
 * write-ahead log and snapshot files, talking over real TCP on 127.0.0.1.
 *
 *   npx -y deno run -A examples/counter/deno.ts
 *
 * @module
 */

import { startNode } from "../../adapters/deno/mod.ts"; // "@plank/raft/deno" when installed

const peers = { a: "127.0.0.1:7101", b: "127.0.0.1:7102", c: "127.0.0.1:7103" };
const dir = await Deno.makeTempDir({ prefix: "plank-counter-" });

// The state machine: apply(command) returns the command's result.
function counter() {
  return {
    total: 0,
    apply(add: number): number {
      return (this.total += add);
    },
  };
}

const nodes = await Promise.all(
  Object.keys(peers).map((id) => startNode({ id, peers, dataDir: `${dir}/${id}`, stateMachine: counter() })),
);

// Any node takes proposals: a follower forwards them to the leader.
let total = 0;
for (let i = 1; i <= 10; i++) total = await nodes[i % 3]!.propose(i);
console.log(`total after 10 increments: ${total}`); // 55

// A linearizable read on a follower sees every acknowledged write.
const seen = await nodes[2]!.read((sm) => sm.total);
console.log(`read on c: ${seen}`); // 55
console.log(`leader: ${nodes[0]!.status().leader}`);

await Promise.all(nodes.map((n) => n.stop()));
await Deno.remove(dir, { recursive: true });
