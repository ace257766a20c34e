/**
 * Golden transcripts of key interactions, in the spirit of etcd's datadriven
 * `testdata/`: a scenario drives a hand-run cluster of pure cores, every
 * input and effect is rendered with `describe*`, and the text must match the
 * file in `testdata/` exactly. A change in behaviour shows as a readable diff.
 * To accept a deliberate change: `UPDATE_GOLDEN=1 deno test -A tests/core/transcripts.test.ts`.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ScenarioCluster } from "../core_cluster.ts";
import { describeEffect, describeInput, describeState } from "../../core/describe.ts";

const dir = fileURLToPath(new URL("./testdata/", import.meta.url).href);
const update = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
  .UPDATE_GOLDEN === "1";

/** Runs `scenario` on a fresh cluster and renders what happened, one line per input, effect and state. */
function transcript(voters: string[], scenario: (c: ScenarioCluster, note: (s: string) => void) => void): string {
  const c = new ScenarioCluster(voters);
  const lines: string[] = [];
  c.onStep = (id, input, effects, state) => {
    lines.push(`${id} < ${describeInput(input)}`);
    for (const e of effects) if (e.type !== "SetTimer") lines.push(`${id} > ${describeEffect(e)}`);
    lines.push(`${id} = ${describeState(state)}`);
  };
  scenario(c, (s) => lines.push(`# ${s}`));
  return lines.join("\n") + "\n";
}

function golden(name: string, text: string): void {
  const path = `${dir}${name}.txt`;
  if (update || !existsSync(path)) {
    writeFileSync(path, text);
    if (!update) assert.fail(`${name}.txt did not exist: written, check it in and run again`);
    return;
  }
  assert.equal(text, readFileSync(path, "utf8"), `${name}: transcript differs (UPDATE_GOLDEN=1 accepts the new one)`);
}

describe("golden transcripts", () => {
  test("election: a times out, wins b's and c's votes, appends its no-op and commits it", () => {
    golden(
      "election",
      transcript(["a", "b", "c"], (c, note) => {
        note("a's election timer fires");
        c.input("a", { type: "Timeout", timer: "election" });
        note("the vote requests and answers cross the network");
        c.deliver();
      }),
    );
  });

  test("replication: a proposal on the leader is appended, acknowledged and committed", () => {
    golden(
      "replication",
      transcript(["a", "b", "c"], (c, note) => {
        c.elect("a", ["a", "b", "c"]);
        note("a client proposes on the leader");
        c.input("a", { type: "Propose", proposals: [{ requestId: 1, data: new TextEncoder().encode("x") }] });
        c.deliver();
      }),
    );
  });

  test("transfer: the leader catches b up, announces the hand-over to every voter and b wins at once", () => {
    golden(
      "transfer",
      transcript(["a", "b", "c"], (c, note) => {
        c.elect("a", ["a", "b", "c"]);
        note("a is asked to hand leadership to b");
        c.input("a", { type: "TransferLeadership", requestId: 7, to: "b" });
        c.deliver();
      }),
    );
  });
});
