/// <reference types="bun" />
/**
 * Bun adapter for plank (storage, transport, clock on Bun APIs).
 *
 * PLACEHOLDER: replaced as the adapter lands.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
