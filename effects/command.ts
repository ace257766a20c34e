/**
 * How user commands become log entry bytes and back. JSON by default; any
 * {@link CommandCodec} plugs in (for `effect/Schema` commands, `schemaCodec`
 * from `@plank/raft/effect` builds one).
 *
 * @module
 */

/** Turns commands into bytes and back. `decode(encode(c))` must equal `c` on every node. */
export interface CommandCodec<C> {
  /** Command to bytes (runs on the proposing node; a throw rejects the proposal before it reaches the log). */
  encode(command: C): Uint8Array;
  /** Bytes to command (runs on every node, for every committed entry; a throw fails only that entry's proposal). */
  decode(bytes: Uint8Array): C;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The default codec: `JSON.stringify` as UTF-8. */
export function jsonCodec<C>(): CommandCodec<C> {
  return {
    encode: (command) => encoder.encode(JSON.stringify(command)),
    decode: (bytes) => JSON.parse(decoder.decode(bytes)) as C,
  };
}
