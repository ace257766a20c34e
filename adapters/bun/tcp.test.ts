/// <reference types="bun" />
import { type ContractOptions, transportContract } from "../../tests/contract/transport.ts";
import { secretContract } from "../../tests/contract/auth.ts";
import { BunTcpTransport } from "./tcp.ts";

if (typeof Bun !== "undefined") {
  const make = async (opts: ContractOptions) => {
    const t = new BunTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  };
  transportContract("BunTcpTransport", make);
  secretContract("BunTcpTransport", make);
}
