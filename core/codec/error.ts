/**
 * The one error the binary decoders throw.
 *
 * @module
 */

/**
 * Input bytes are not a valid encoding: truncated, over-long, of an unknown
 * version or tag, with an out-of-range value, or with bytes left over.
 *
 * Decoders throw this and nothing else, so a transport or log reader can
 * treat any other exception as a bug rather than as bad input. A plain class
 * (not `Data.TaggedError`) because `core/` imports nothing outside itself.
 */
export class DecodeError extends Error {
  /** Discriminator, so Effect code can match it with `catchTag`. */
  readonly _tag: "DecodeError" = "DecodeError";
  /** Byte offset in the input where decoding failed. */
  readonly offset: number;
  /** What was wrong, without the offset. */
  readonly reason: string;

  /**
   * Creates the error; the message combines both fields.
   *
   * @param reason what was wrong
   * @param offset byte offset in the input where it was detected
   */
  constructor(reason: string, offset: number) {
    super(`${reason} at byte offset ${offset}`);
    this.name = "DecodeError";
    this.reason = reason;
    this.offset = offset;
  }
}
