/**
 * The ports a node runs on — its log, its snapshots, its transport and its
 * state machine — one module each, every module holding the Promise-style
 * interface, the effect service and the Layer between them.
 *
 * @module
 */

export * from "./log_store.ts";
export * from "./snapshot_store.ts";
export * from "./transport.ts";
export * from "./state_machine.ts";
