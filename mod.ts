/**
 * plank (`@plank/raft`): Raft consensus for Deno and Bun.
 *
 * PLACEHOLDER: this entry point will re-export the Effect-based node API.
 * It is replaced as the implementation lands.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
