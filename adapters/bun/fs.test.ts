/// <reference types="bun" />
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { BunFs } from "./fs.ts";
import { type ContractOptions, durableFsContract, type LockHolder } from "../../tests/contract/durable_fs.ts";
import { snapshotContract, walContract } from "../../tests/contract/wal.ts";
import { walDamageContract } from "../../tests/contract/wal_damage.ts";

const HOLDER = decodeURIComponent(new URL("../../tests/contract/hold_lock.ts", import.meta.url).pathname);

/** Starts `bun` on the holder script and waits for its `ready`. */
async function spawnLockHolder(dir: string): Promise<LockHolder> {
  const child = Bun.spawn([process.execPath, HOLDER, dir], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`lock holder exited before ready: ${out}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    pid: child.pid,
    kill: async () => {
      child.kill("SIGKILL");
      await child.exited;
    },
  };
}

const options: ContractOptions = { skip: typeof Bun === "undefined", spawnLockHolder };
const makeFs = () => new BunFs();
const tmpDir = () => fsp.mkdtemp(join(tmpdir(), "plank-bunfs-"));

durableFsContract("BunFs", makeFs, tmpDir, options);
walContract("BunFs", makeFs, tmpDir, options);
walDamageContract("BunFs", makeFs, tmpDir, options);
snapshotContract("BunFs", makeFs, tmpDir, options);
