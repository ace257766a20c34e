/**
 * In-memory services for tests and examples: a log store, a snapshot store
 * and an in-process network hub. Each is a plain object usable with
 * `createNode`, and offers `.layer()` for Effect users.
 *
 * ```ts
 * import { createNode, MemoryHub, MemoryLogStore, MemorySnapshotStore } from "@plank/raft";
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
 * ```
 *
 * @module
 */

export { MemoryHub } from "./hub.ts";
export { MemoryLogStore, type MemoryLogStoreOptions } from "./log.ts";
export { MemorySnapshotStore } from "./snapshots.ts";
