/**
 * The playground page: renders a {@link Playground} and wires its
 * controls. Bundled for the browser by `build.ts` into `dist/playground.js`,
 * which `index.html` loads. Plain DOM, no framework.
 *
 * @module
 */

/// <reference lib="dom" />

import { Playground } from "./model.ts";

/** Virtual milliseconds per animation tick at speed 1. */
const TICK_MS = 20;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Mounts the playground in `root`. */
export function mount(root: HTMLElement): void {
  const seedInput = el("input", { id: "seed", type: "number", value: "1", min: "1" });
  const nodesInput = el("select", { id: "nodes" });
  for (const n of ["3", "5"]) nodesInput.append(el("option", { value: n }, `${n} nodes`));
  const faults = el("input", { id: "faults", type: "checkbox" });
  const newButton = el("button", { id: "new" }, "New cluster");
  const runButton = el("button", { id: "run" }, "Pause");
  const writeButton = el("button", { id: "write" }, "Write");
  const healButton = el("button", { id: "heal" }, "Heal network");
  const clock = el("span", { id: "clock" });
  const leaderLine = el("p", { id: "leader" });
  const table = el("table", { id: "nodes-table" });
  const log = el("pre", { id: "events" });
  const faultsLabel = el("label", {}, " random faults ");
  faultsLabel.prepend(faults);
  root.append(
    el("p", {}, "Seed "),
    seedInput,
    nodesInput,
    faultsLabel,
    newButton,
    runButton,
    writeButton,
    healButton,
    clock,
    leaderLine,
    table,
    log,
  );

  let pg = new Playground({ seed: 1, nodes: 3 });
  let running = true;

  /** One row per node, built once per cluster and updated in place (its buttons must stay clickable). */
  let rows = new Map<
    string,
    { row: HTMLTableRowElement; cells: HTMLTableCellElement[]; crash: HTMLButtonElement; cut: HTMLButtonElement }
  >();
  const build = () => {
    table.replaceChildren();
    const head = el("tr");
    for (const h of ["node", "role", "term", "commit", "applied", "", ""]) head.append(el("th", {}, h));
    table.append(head);
    rows = new Map();
    for (const id of pg.nodeIds) {
      const row = el("tr", { "data-node": id });
      const cells = [0, 1, 2, 3, 4].map(() => el("td"));
      const crash = el("button", { class: "crash" });
      const cut = el("button", { class: "cut" });
      crash.onclick = () => {
        if (pg.view().find((v) => v.id === id)?.up) pg.crash(id);
        else pg.restart(id);
        render();
      };
      cut.onclick = () => {
        pg.toggleIsolation(id);
        render();
      };
      const c1 = el("td"), c2 = el("td");
      c1.append(crash);
      c2.append(cut);
      row.append(...cells, c1, c2);
      table.append(row);
      rows.set(id, { row, cells, crash, cut });
    }
  };
  const render = () => {
    clock.textContent = ` t = ${(pg.now / 1000).toFixed(2)} s`;
    const leader = pg.leader();
    leaderLine.textContent = leader === undefined ? "no leader" : `leader: ${leader}`;
    for (const v of pg.view()) {
      const r = rows.get(v.id)!;
      r.row.setAttribute("data-role", v.role);
      r.row.className = v.role;
      const texts = [v.id, v.isolated ? `${v.role} (cut off)` : v.role, v.term, v.commit, v.applied];
      texts.forEach((t, i) => {
        if (r.cells[i]!.textContent !== String(t)) r.cells[i]!.textContent = String(t);
      });
      r.crash.textContent = v.up ? "crash" : "restart";
      r.cut.textContent = v.isolated ? "reconnect" : "cut off";
    }
    log.textContent = pg.events().slice(-30).join("\n");
  };

  newButton.onclick = () => {
    pg = new Playground({
      seed: Math.max(1, Number(seedInput.value) | 0),
      nodes: Number(nodesInput.value),
      faults: faults.checked,
    });
    build();
    render();
  };
  runButton.onclick = () => {
    running = !running;
    runButton.textContent = running ? "Pause" : "Run";
  };
  writeButton.onclick = () => {
    pg.write();
    render();
  };
  healButton.onclick = () => {
    pg.heal();
    render();
  };
  const frame = () => {
    if (running) {
      pg.advance(TICK_MS);
      render();
    }
    requestAnimationFrame(frame);
  };
  build();
  render();
  requestAnimationFrame(frame);
}

mount(document.getElementById("app")!);
