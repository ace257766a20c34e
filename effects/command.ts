/**
 * How user commands become log entry bytes and back: JSON by default, or an
 * `effect/Schema` schema so commands are typed and validated end to end
 * (goraft's `RegisterCommand`, done with types).
 *
 * @module
 */

import { Schema } from "effect";

/** Turns commands into bytes and back. `decode(encode(c))` must equal `c` on every node. */
export interface CommandCodec<C> {
  /** Command to bytes (runs on the proposing node). */
  encode(command: C): Uint8Array;
  /** Bytes to command (runs on every node, for every committed entry). */
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

/**
 * A codec from a schema: commands are encoded with the schema, then as JSON;
 * decoding validates, so a malformed entry fails its proposal instead of
 * reaching the state machine. The codec functions are built once, here.
 */
export function schemaCodec<C, E>(schema: Schema.Codec<C, E, never, never>): CommandCodec<C> {
  const encode = Schema.encodeSync(schema);
  const decode = Schema.decodeUnknownSync(schema);
  return {
    encode: (command) => encoder.encode(JSON.stringify(encode(command))),
    decode: (bytes) => decode(JSON.parse(decoder.decode(bytes))),
  };
}

/** Accepts either form: a schema or a codec; undefined means JSON. */
export function toCommandCodec<C>(
  codec: CommandCodec<C> | Schema.Codec<C, unknown, never, never> | undefined,
): CommandCodec<C> {
  if (codec === undefined) return jsonCodec<C>();
  if (Schema.isSchema(codec)) return schemaCodec(codec as Schema.Codec<C, unknown, never, never>);
  return codec as CommandCodec<C>;
}
