/**
 * Compares two V8 heap snapshots (`.heapsnapshot`, e.g. from `bench/heap_soak.ts`): the object count and
 * self size per constructor in each and the growth, then, for each `--retainers` constructor, the shortest
 * retainer path from the GC roots (a BFS from the root that keeps each node's first parent, skipping weak
 * edges) of the objects that are new in the second snapshot (ids absent from the first), grouped by path.
 *
 *   deno run -A bench/heap_diff.ts A.heapsnapshot B.heapsnapshot [--top 30] [--retainers AsyncResource,Uint8Array]
 *                                  [--depth 14] [--paths 5]
 *
 * With one snapshot, it prints that snapshot's counts and the retainers of all objects of those constructors.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    retainers: { type: "string", default: "AsyncResource" },
    depth: { type: "string", default: "14" },
    paths: { type: "string", default: "5" },
  },
});

interface Snap {
  nodes: Uint32Array;
  edges: Uint32Array;
  strings: string[];
  nf: number;
  ef: number;
  nodeTypes: string[];
  edgeTypes: string[];
  firstEdge: Uint32Array; // per node ordinal: index into edges of its first edge
  count: number;
}

function load(file: string): Snap {
  const j = JSON.parse(readFileSync(file, "utf8"));
  const meta = j.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nodes = Uint32Array.from(j.nodes as number[]);
  const edges = Uint32Array.from(j.edges as number[]);
  const count = nodes.length / nf;
  const firstEdge = new Uint32Array(count + 1);
  const ecIdx = meta.node_fields.indexOf("edge_count");
  let e = 0;
  for (let i = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * nf + ecIdx] * ef;
  }
  firstEdge[count] = e;
  return {
    nodes,
    edges,
    strings: j.strings,
    nf,
    ef,
    nodeTypes: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
    firstEdge,
    count,
  };
}

// node fields: type, name, id, self_size, edge_count, trace_node_id, detachedness; edge fields: type, name_or_index, to_node
const typeOf = (s: Snap, i: number) => s.nodeTypes[s.nodes[i * s.nf]];
const nameOf = (s: Snap, i: number) => s.strings[s.nodes[i * s.nf + 1]];
const idOf = (s: Snap, i: number) => s.nodes[i * s.nf + 2];
const sizeOf = (s: Snap, i: number) => s.nodes[i * s.nf + 3];
const label = (s: Snap, i: number) => {
  const t = typeOf(s, i);
  const n = nameOf(s, i);
  const short = n.replace(/@\d+/g, "@…");
  return t === "object" || t === "native" ? short : `(${t}) ${short.length > 40 ? short.slice(0, 40) + "…" : short}`;
};

function counts(s: Snap): Map<string, { n: number; bytes: number }> {
  const m = new Map<string, { n: number; bytes: number }>();
  for (let i = 0; i < s.count; i++) {
    const t = typeOf(s, i);
    const k = t === "object" || t === "native" ? nameOf(s, i) : `(${t})`;
    const c = m.get(k) ?? { n: 0, bytes: 0 };
    c.n++;
    c.bytes += sizeOf(s, i);
    m.set(k, c);
  }
  return m;
}

/** An edge's name with indices and object ids elided, so paths that differ only in them group together. */
function edgeName(s: Snap, e: number): string {
  const t = s.edgeTypes[s.edges[e]];
  const v = s.edges[e + 1];
  if (t === "element" || t === "hidden") return "[i]";
  const name = t === "context" ? `ctx.${s.strings[v]}` : s.strings[v];
  return name.replace(/@\d+/g, "@…").replace(/^\d+ \/ /, "");
}

/** BFS from the root node (ordinal 0): each node's parent ordinal and the edge index that reached it. */
function bfs(s: Snap): { parent: Int32Array; via: Int32Array } {
  const parent = new Int32Array(s.count).fill(-1);
  const via = new Int32Array(s.count).fill(-1);
  const queue = new Uint32Array(s.count);
  let head = 0;
  let tail = 0;
  parent[0] = 0;
  queue[tail++] = 0;
  const weak = s.edgeTypes.indexOf("weak");
  const shortcut = s.edgeTypes.indexOf("shortcut");
  while (head < tail) {
    const n = queue[head++];
    for (let e = s.firstEdge[n]; e < s.firstEdge[n + 1]; e += s.ef) {
      const et = s.edges[e];
      if (et === weak || et === shortcut) continue;
      const to = s.edges[e + 2] / s.nf;
      if (parent[to] !== -1) continue;
      parent[to] = n;
      via[to] = e;
      queue[tail++] = to;
    }
  }
  return { parent, via };
}

const [a, b] = positionals;
if (!a) throw new Error("usage: heap_diff.ts A.heapsnapshot [B.heapsnapshot]");
const TOP = Number(values.top);
const DEPTH = Number(values.depth);
const PATHS = Number(values.paths);
const sa = load(a);
const sb = b ? load(b) : undefined;
const ca = counts(sa);
console.log(`${a}: ${sa.count} nodes`);
if (sb) {
  const cb = counts(sb);
  console.log(`${b}: ${sb.count} nodes`);
  const keys = new Set([...ca.keys(), ...cb.keys()]);
  const diff = [...keys].map((k) => ({
    k,
    a: ca.get(k)?.n ?? 0,
    b: cb.get(k)?.n ?? 0,
    db: (cb.get(k)?.bytes ?? 0) - (ca.get(k)?.bytes ?? 0),
  }));
  diff.sort((x, y) => (y.b - y.a) - (x.b - x.a));
  console.log(`\ngrowth by count (top ${TOP}): constructor, count A → B (+Δ), Δ self bytes`);
  for (const d of diff.slice(0, TOP)) {
    console.log(`  ${d.k.padEnd(40)} ${d.a} → ${d.b} (${d.b - d.a >= 0 ? "+" : ""}${d.b - d.a}), ${d.db} B`);
  }
} else {
  const all = [...ca.entries()].sort((x, y) => y[1].n - x[1].n).slice(0, TOP);
  for (const [k, c] of all) console.log(`  ${k.padEnd(40)} ${c.n}, ${c.bytes} B`);
}

const target = sb ?? sa;
const oldIds = new Set<number>();
if (sb) { for (let i = 0; i < sa.count; i++) oldIds.add(idOf(sa, i)); }
const { parent, via } = bfs(target);
for (const ctor of values.retainers.split(",").filter(Boolean)) {
  const groups = new Map<string, { n: number; example: number }>();
  let total = 0;
  let unreachable = 0;
  for (let i = 0; i < target.count; i++) {
    const t = typeOf(target, i);
    if ((t !== "object" && t !== "native") || nameOf(target, i) !== ctor) continue;
    if (sb && oldIds.has(idOf(target, i))) continue;
    total++;
    if (parent[i] === -1) {
      unreachable++;
      continue;
    }
    const hops: string[] = [];
    let n = i;
    while (n !== 0 && hops.length < DEPTH) {
      hops.push(`${label(target, parent[n])} --${edgeName(target, via[n])}-->`);
      n = parent[n];
    }
    const key = hops.reverse().join("\n     ");
    const g = groups.get(key) ?? { n: 0, example: i };
    g.n++;
    groups.set(key, g);
  }
  console.log(
    `\nretainers of ${total} ${
      sb ? "new " : ""
    }${ctor} (${unreachable} unreachable from the root), ${groups.size} distinct paths; the ${PATHS} commonest (root side first, last ${DEPTH} hops):`,
  );
  const sorted = [...groups.entries()].sort((x, y) => y[1].n - x[1].n).slice(0, PATHS);
  for (const [k, g] of sorted) {
    console.log(`\n  ${g.n} x (e.g. @${idOf(target, g.example)}):\n     ${k}\n     ${ctor}`);
  }
}
