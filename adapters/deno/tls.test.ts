import { tlsContract } from "../../tests/contract/tls.ts";
import { DenoTcpTransport } from "./tcp.ts";

if (typeof Deno !== "undefined") {
  tlsContract("DenoTcpTransport", async (opts) => {
    const t = new DenoTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  });
}
