/**
 * A free TCP port on 127.0.0.1 for the listeners of a test or a bench (the OS picks one, the
 * probe releases it): node:net, so the same module serves Deno and Bun.
 *
 * @module
 */

import { createServer } from "node:net";

/** Asks the OS for a free port on 127.0.0.1 and releases it. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
