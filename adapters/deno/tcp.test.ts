import { transportContract } from "../../tests/contract/transport.ts";
import { secretContract } from "../../tests/contract/auth.ts";
import type { ContractOptions } from "../../tests/contract/transport.ts";
import { DenoTcpTransport } from "./tcp.ts";

if (typeof Deno !== "undefined") {
  const make = async (opts: ContractOptions) => {
    const t = new DenoTcpTransport({ ...opts, listen: `127.0.0.1:${opts.port ?? 0}` });
    await t.start();
    return t;
  };
  transportContract("DenoTcpTransport", make);
  secretContract("DenoTcpTransport", make);
}
