/**
 * Did the HTTP server rewrite the request's path? A URL parser resolves
 * `.` and `..` segments (and their `%2e` spellings) and reads `\` as `/`,
 * so `PUT /db/q/%2E%2E/s` would otherwise reach the handler as `/db/s` and
 * write key `s`. raftd refuses such a request (400) instead: a client gets
 * the key it named or an error, never another key.
 *
 * Deno hands the handler the request target as sent (`req.url`), so the
 * comparison is direct. Bun normalizes `req.url` before the handler sees it
 * (oven-sh/bun#4001), but its router matches the raw target and decodes
 * each raw segment into `req.params`: `platform_bun.ts` routes every path
 * of up to {@link MAX_ROUTED_SEGMENTS} segments through one parameter route
 * per depth and compares those segments with the normalized path.
 *
 * @module
 */

/** Deepest path Bun's parameter routes see raw; a key has far fewer segments ({@link MAX_KEY_SEGMENTS}). */
export const MAX_ROUTED_SEGMENTS = 40;
/** Most `/`-separated segments in a key (so that on every runtime each one is checked as sent). */
export const MAX_KEY_SEGMENTS = 32;

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The path's segments, percent-decoded (`/a/b%2Fc` → `["a", "b/c"]`). */
export function decodedSegments(pathname: string): string[] {
  return pathname.split("/").slice(1).map(decode);
}

/** The path of a (normalized) request URL, or undefined when it does not parse (a malformed Host: the API answers 400). */
export function pathnameOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** Whether the raw segments (already decoded) differ from the normalized path's (false when it does not parse). */
export function segmentsDiffer(raw: readonly string[], normalizedUrl: string): boolean {
  const pathname = pathnameOf(normalizedUrl);
  if (pathname === undefined) return false;
  const normalized = decodedSegments(pathname);
  return raw.length !== normalized.length || raw.some((s, i) => s !== normalized[i]);
}

/** The path of a request URL exactly as written, without query or fragment (`http://h/a/../b?x` → `/a/../b`). */
export function rawPathOf(url: string): string {
  const scheme = url.indexOf("//");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 2);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

/** Deno: whether `new URL(url)` rewrote the path of the target as sent (`url` is `req.url`, unnormalized). */
export function rewrittenFromRawUrl(url: string): boolean {
  return segmentsDiffer(decodedSegments(rawPathOf(url)), url);
}

/**
 * Bun, for a request no parameter route matched: its raw path had an empty
 * segment or more than {@link MAX_ROUTED_SEGMENTS} segments. A normalized
 * path with neither would have matched, so the server must have rewritten it.
 */
export function rewrittenUnrouted(normalizedUrl: string): boolean {
  const pathname = pathnameOf(normalizedUrl);
  if (pathname === undefined) return false;
  const segments = pathname.split("/").slice(1);

  return segments.length <= MAX_ROUTED_SEGMENTS && segments.every((s) => s !== "");
}
