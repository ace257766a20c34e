/// <reference types="bun" />
import { tlsContract } from "../../tests/contract/tls.ts";
import { BunTcpTransport } from "./tcp.ts";

if (typeof Bun !== "undefined") {
  tlsContract("BunTcpTransport", async (opts) => {
    const t = new BunTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  });
}
