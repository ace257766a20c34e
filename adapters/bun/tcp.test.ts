/// <reference types="bun" />
import { transportContract } from "../../tests/contract/transport.ts";
import { BunTcpTransport } from "./tcp.ts";

if (typeof Bun !== "undefined") {
  transportContract("BunTcpTransport", async (opts) => {
    const t = new BunTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  });
}
