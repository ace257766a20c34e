import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { catalogue } from "./catalogue.ts";
import { extended } from "./extended.ts";

const root = fileURLToPath(new URL("../../", import.meta.url).href);

describe("the mutation catalogue stays in step with core/", () => {
  test("at least 30 mutations, uniquely named, each of one core/ or effects/driver/ file", () => {
    assert.ok(catalogue.length >= 30, `only ${catalogue.length} mutations`);
    assert.equal(new Set(catalogue.map((m) => m.name)).size, catalogue.length, "names are unique");
    for (const m of catalogue) assert.match(m.file, /^(core|effects\/driver)\/[a-z_/]+\.ts$/, m.name);
  });

  test("the extended catalogue's names are unique and distinct from the first one's", () => {
    const names = [...catalogue, ...extended].map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
    for (const m of extended) assert.match(m.file, /^(core|effects\/driver)\/[a-z_/]+\.ts$/, m.name);
  });

  for (const m of [...catalogue, ...extended]) {
    test(`${m.name}: its text occurs exactly once, and replacing it changes the file`, () => {
      const source = readFileSync(`${root}${m.file}`, "utf8");
      const count = source.split(m.find).length - 1;
      assert.equal(count, 1, `${m.name}: ${JSON.stringify(m.find)} occurs ${count} times in ${m.file}`);
      assert.notEqual(m.find, m.replace);
    });
  }
});
