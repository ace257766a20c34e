/**
 * In-memory ports for tests and examples (`@plank/raft/memory`): a log
 * store, a snapshot store and an in-process network hub. Each is a plain
 * Promise-style object that `createNode` takes directly; Effect users turn
 * them into Layers with `logStoreLayer`, `snapshotStoreLayer` and
 * `transportLayer` from `@plank/raft/effect`.
 *
 * ```ts
 * import { createNode } from "@plank/raft";
 * import { MemoryHub, MemoryLogStore, MemorySnapshotStore } from "@plank/raft/memory";
 *
 * const hub = new MemoryHub();
 * const peers = { a: "a", b: "b", c: "c" };
 * const nodes = await Promise.all(Object.keys(peers).map((id) =>
 *   createNode({
 *     id,
 *     peers,
 *     stateMachine: { apply: (cmd: number) => cmd * 2 },
 *     logStore: new MemoryLogStore(),
 *     snapshotStore: new MemorySnapshotStore(),
 *     transport: hub.transport(id),
 *   })
 * ));
 * // A new cluster elects its leader first.
 * while (nodes[0].status().leader === undefined) await new Promise((r) => setTimeout(r, 10));
 * console.log(await nodes[0].propose(21)); // 42, once committed and applied
 * await Promise.all(nodes.map((n) => n.stop()));
 * ```
 *
 * @module
 */

export { MemoryHub } from "./hub.ts";
export { MemoryLogStore, type MemoryLogStoreOptions } from "./log.ts";
export { MemorySnapshotStore } from "./snapshots.ts";
