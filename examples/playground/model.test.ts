import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Playground } from "./model.ts";

function settle(pg: Playground, ms = 5000): void {
  for (let t = 0; t < ms && pg.leader() === undefined; t += 50) pg.advance(50);
}

describe("playground model", () => {
  test("a seed replays the same run", () => {
    const run = () => {
      const pg = new Playground({ seed: 11, nodes: 5 });
      settle(pg);
      pg.write();
      pg.advance(2000);
      return JSON.stringify({ view: pg.view(), events: pg.events() });
    };
    assert.equal(run(), run());
  });

  test("a leader is elected, writes commit on every node, and a crashed leader is replaced", () => {
    const pg = new Playground({ seed: 3, nodes: 3 });
    settle(pg);
    const first = pg.leader();
    assert.ok(first);
    pg.write();
    pg.write();
    pg.advance(2000);
    const commits = pg.view().map((v) => v.commit);
    assert.ok(commits.every((c) => c >= 3), `no-op and two writes everywhere: ${commits}`);
    pg.crash(first);
    pg.advance(5000);
    const second = pg.leader();
    assert.ok(second !== undefined && second !== first);
    assert.ok(pg.events().some((e) => e.includes(`${second} became leader`)));
    pg.restart(first);
    pg.advance(3000);
    assert.equal(pg.view().find((v) => v.id === first)!.commit, pg.view().find((v) => v.id === second)!.commit);
  });

  test("a leader cut off loses its leadership to the majority; healing brings it back as a follower", () => {
    const pg = new Playground({ seed: 5, nodes: 5 });
    settle(pg);
    const cut = pg.leader()!;
    pg.toggleIsolation(cut);
    pg.advance(6000);
    const majority = pg.leader();
    assert.ok(majority !== undefined && majority !== cut);
    pg.heal();
    pg.advance(3000);
    assert.equal(pg.view().find((v) => v.id === cut)!.role, "follower");
  });
});
