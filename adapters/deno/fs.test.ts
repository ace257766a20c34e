import { DenoFs } from "./fs.ts";
import { type ContractOptions, durableFsContract, type LockHolder } from "../../tests/contract/durable_fs.ts";
import { snapshotContract, walContract } from "../../tests/contract/wal.ts";
import { walDamageContract } from "../../tests/contract/wal_damage.ts";

const HOLDER = decodeURIComponent(new URL("../../tests/contract/hold_lock.ts", import.meta.url).pathname);

/** Starts `deno run` on the holder script and waits for its `ready`. */
async function spawnLockHolder(dir: string): Promise<LockHolder> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HOLDER, dir],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
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
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

const options: ContractOptions = { skip: typeof Deno === "undefined", spawnLockHolder };
const makeFs = () => new DenoFs();
const tmpDir = () => Deno.makeTempDir({ prefix: "plank-denofs-" });

durableFsContract("DenoFs", makeFs, tmpDir, options);
walContract("DenoFs", makeFs, tmpDir, options);
walDamageContract("DenoFs", makeFs, tmpDir, options);
snapshotContract("DenoFs", makeFs, tmpDir, options);
