import { transportContract } from "../../tests/contract/transport.ts";
import { DenoTcpTransport } from "./tcp.ts";

if (typeof Deno !== "undefined") {
  transportContract("DenoTcpTransport", async (opts) => {
    const t = new DenoTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  });
}
