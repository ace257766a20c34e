/**
 * The two APIs of a host of many groups: `createHost` (Promise) and the
 * `RaftHost` service with `hostLayer` (Effect), both over one
 * {@link HostLoop}, a log of every group ({@link MultiGroupLogPort}, e.g.
 * `MultiGroupLog`) and one transport shared by every group.
 *
 * @module
 */

import { Context, Effect, Layer } from "effect";
import type { TransportPort } from "../ports/mod.ts";
import { HostLoop, type HostOptions, type MultiGroupLogPort } from "./host_loop.ts";

/** What a host runs over, and its settings. */
export interface CreateHostOptions extends HostOptions {
  /** The log of every group (one record and one fsync for the iterations queued behind the last fsync). */
  readonly log: MultiGroupLogPort;
  /** One transport for every group: one connection per peer process. */
  readonly transport: TransportPort;
}

/**
 * Starts a host of many Raft groups (Promise API). Add groups with
 * `addGroup`; `stop()` ends it and closes the log and the transport.
 *
 * ```ts ignore
 * const host = await createHost({ id: "a", peers, log: await MultiGroupLog.open(fs, dir), transport });
 * const g = await host.addGroup(7, membershipOf(["a", "b", "c"]), { apply: (e) => e.index });
 * await g.propose(new TextEncoder().encode("x"));
 * ```
 */
export function createHost(options: CreateHostOptions): Promise<HostLoop> {
  return HostLoop.start(options.log, options.transport, options);
}

/** The running host, as an Effect service. */
export const RaftHost: Context.Service<HostLoop, HostLoop> = Context.Service<HostLoop>("@plank/raft/RaftHost");

/** A layer providing {@link RaftHost} for its scope: started on build, stopped when the scope closes. */
export function hostLayer(options: CreateHostOptions): Layer.Layer<HostLoop> {
  return Layer.effect(
    RaftHost,
    Effect.acquireRelease(
      Effect.promise(() => createHost(options)),
      (host) => Effect.promise(() => host.stop()),
    ),
  );
}
