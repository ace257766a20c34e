/**
 * Command codecs from `effect/Schema` schemas: commands typed and validated
 * end to end (goraft's `RegisterCommand`, done with types). Kept apart from
 * `command.ts` so the Promise facade's signatures carry no effect types.
 *
 * @module
 */

import { Schema } from "effect";
import { type CommandCodec, jsonCodec } from "./command.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A codec from a schema: commands are encoded with the schema, then as JSON;
 * decoding validates, so a malformed entry fails its proposal instead of
 * reaching the state machine. The codec functions are built once, here
 * (building them per call tripled a loop's cost).
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
