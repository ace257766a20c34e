/**
 * Deno adapter for plank (storage, transport, clock on Deno APIs).
 *
 * PLACEHOLDER: replaced as the adapter lands.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
