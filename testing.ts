/**
 * Test helpers for plank (in-memory cluster, deterministic network).
 *
 * PLACEHOLDER: replaced as the helpers land.
 *
 * @module
 */

/** The version of this package. */
export const VERSION = "0.1.0";
