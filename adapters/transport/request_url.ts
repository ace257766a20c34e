/**
 * A request's parsed URL, parsed once however many handlers look at it:
 * the peer transport's handler, raftd's shutdown check and its router each
 * need the path of every request, and `new URL` is one of the costlier
 * steps of serving one.
 *
 * @module
 */

const parsed = new WeakMap<Request, URL>();

/**
 * `new URL(req.url)`, remembered for the request's lifetime. Throws as
 * `new URL` does when the URL does not parse (a malformed Host, say). The
 * same object is returned each time: callers must not change it.
 */
export function requestUrl(req: Request): URL {
  let url = parsed.get(req);
  if (url === undefined) {
    url = new URL(req.url);
    parsed.set(req, url);
  }
  return url;
}
