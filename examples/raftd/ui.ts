/**
 * raftd's live view, `GET /ui`: one self-contained page (no build step, no
 * framework) that polls `GET /ui/cluster` twice a second and shows each
 * member's role, term, commit and applied index, the leader, and a moving
 * chart of writes per second (entries committed) with the leader changes
 * marked on it.
 *
 * `/ui/cluster` is answered by the node serving the page: its own status,
 * and every other member's `/status` fetched over the peer-facing HTTP API
 * (addresses from the replicated address book, never from the request), so
 * the page needs no cross-origin requests.
 *
 * @module
 */

import type { StatusView } from "./http.ts";

/** One member, as the page shows it. */
export interface MemberRow {
  /** Node id. */
  readonly id: string;
  /** `host:port` of its HTTP API, if known. */
  readonly address: string | null;
  /** `voter` or `learner`. */
  readonly suffrage: string;
  /** Its role, or `unreachable` when it did not answer. */
  readonly role: string;
  /** Its term (null: unreachable). */
  readonly term: number | null;
  /** Its commit index (null: unreachable). */
  readonly commit: number | null;
  /** Its applied index (null: unreachable). */
  readonly applied: number | null;
  /** The leader it knows of. */
  readonly leader: string | null;
}

/** `GET /ui/cluster`. */
export interface ClusterView {
  /** The node answering. */
  readonly self: string;
  /** When (ms since the epoch). */
  readonly at: number;
  /** The leader the answering node knows of. */
  readonly leader: string | null;
  /** Its term. */
  readonly term: number;
  /** Leader changes it has seen since it started (`plank_leader_changes_seen_total`). */
  readonly leaderChanges: number;
  /** Every member, sorted by id. */
  readonly members: readonly MemberRow[];
}

/** What the view is built from. */
export interface UiOptions {
  /** This node's status (as `/status` shows it). */
  readonly status: () => StatusView;
  /** Leader changes this node has seen. */
  readonly leaderChanges: () => number;
  /** How to call another member's HTTP API (scheme and fetch, as for proxying). */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** `http` or `https`. */
  readonly scheme: "http" | "https";
  /** How long to wait for a member's `/status` (ms). Default 800. */
  readonly timeoutMs?: number;
}

/** The `/ui` routes: the page and the cluster view; undefined for other paths. */
export function createUi(options: UiOptions): (path: string) => Promise<Response> | undefined {
  const timeoutMs = options.timeoutMs ?? 800;
  const remote = async (address: string): Promise<StatusView | undefined> => {
    try {
      const res = await options.fetch(`${options.scheme}://${address}/status`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      return await res.json() as StatusView;
    } catch {
      return undefined;
    }
  };
  const cluster = async (): Promise<ClusterView> => {
    const self = options.status();
    const rows = await Promise.all(self.members.map(async (m): Promise<MemberRow> => {
      const s = m.id === self.id ? self : m.address ? await remote(m.address) : undefined;
      const base = { id: m.id, address: m.address ?? null, suffrage: m.suffrage };
      if (s === undefined || s.id !== m.id) {
        return { ...base, role: "unreachable", term: null, commit: null, applied: null, leader: null };
      }
      return { ...base, role: s.role, term: s.term, commit: s.commit, applied: s.applied, leader: s.leader };
    }));
    return {
      self: self.id,
      at: Date.now(),
      leader: self.leader,
      term: self.term,
      leaderChanges: options.leaderChanges(),
      members: rows,
    };
  };
  return (path) => {
    if (path === "/ui" || path === "/ui/") {
      return Promise.resolve(
        new Response(PAGE, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            // The page is self-contained: nothing but itself and /ui/cluster.
            "content-security-policy":
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
          },
        }),
      );
    }
    if (path === "/ui/cluster") {
      return cluster().then((view) =>
        new Response(JSON.stringify(view), {
          headers: { "content-type": "application/json", "cache-control": "no-store" },
        })
      );
    }
    return undefined;
  };
}

/** The page: markup, style and script in one document. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>raftd · live</title>
<style>
  :root { color-scheme: dark; --bg:#0f1419; --panel:#171d24; --line:#27303a; --text:#d7dde4; --dim:#7d8894;
          --leader:#f5b942; --follower:#4fa3e0; --candidate:#c678dd; --down:#e06c75; --writes:#56d364; }
  * { box-sizing: border-box; }
  body { margin:0; padding:24px; background:var(--bg); color:var(--text);
         font:14px/1.4 ui-sans-serif, system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display:flex; align-items:baseline; gap:16px; margin-bottom:16px; }
  h1 { font-size:20px; margin:0; letter-spacing:.5px; }
  .dim { color:var(--dim); }
  .stats { display:flex; gap:12px; margin-bottom:16px; flex-wrap:wrap; }
  .stat { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:140px; }
  .stat b { display:block; font-size:22px; font-variant-numeric: tabular-nums; }
  .members { display:grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap:12px; margin-bottom:16px; }
  .card { background:var(--panel); border:1px solid var(--line); border-left:4px solid var(--follower);
          border-radius:8px; padding:12px 14px; }
  .card[data-role=leader] { border-left-color:var(--leader); box-shadow:0 0 0 1px #f5b94233; }
  .card[data-role=candidate], .card[data-role=precandidate] { border-left-color:var(--candidate); }
  .card[data-role=unreachable], .card[data-role=stopped] { border-left-color:var(--down); opacity:.7; }
  .card h2 { margin:0 0 6px; font-size:16px; display:flex; justify-content:space-between; align-items:center; }
  .badge { font-size:11px; text-transform:uppercase; letter-spacing:.8px; padding:2px 8px; border-radius:10px;
           background:#ffffff14; }
  .card[data-role=leader] .badge { background:var(--leader); color:#1b1300; }
  .kv { display:grid; grid-template-columns:auto 1fr; gap:2px 12px; font-variant-numeric: tabular-nums; }
  .kv span:nth-child(odd) { color:var(--dim); }
  .chart { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  .legend { display:flex; gap:16px; margin-bottom:6px; color:var(--dim); font-size:12px; }
  .legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
  svg { width:100%; height:220px; display:block; }
</style>
</head>
<body>
<header>
  <h1>raftd</h1>
  <span class="dim">live view of <b id="self">…</b>, refreshed twice a second</span>
  <span class="dim" id="error"></span>
</header>
<section class="stats">
  <div class="stat"><span class="dim">leader</span><b id="leader">…</b></div>
  <div class="stat"><span class="dim">term</span><b id="term">…</b></div>
  <div class="stat"><span class="dim">writes/s</span><b id="rate">…</b></div>
  <div class="stat"><span class="dim">leader changes seen</span><b id="changes">…</b></div>
</section>
<section class="members" id="members"></section>
<section class="chart">
  <div class="legend"><span><i style="background:var(--writes)"></i>writes/s (entries committed)</span>
    <span><i style="background:var(--leader)"></i>leader change</span></div>
  <svg id="chart" viewBox="0 0 600 220" aria-label="writes per second"></svg>
</section>
<script>
"use strict";
const WINDOW_MS = 60000, POLL_MS = 500;
const samples = [];   // { at, commit }
const changes = [];   // { at, leader }
let lastLeader;
const $ = (id) => document.getElementById(id);
const svgNS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function card(m) {
  const c = el("article", { class: "card", "data-id": m.id, "data-role": m.role });
  const h = el("h2");
  h.append(el("span", {}, m.id), el("span", { class: "badge" }, m.role));
  const kv = el("div", { class: "kv" });
  const show = (v) => (v === null || v === undefined ? "–" : String(v));
  for (const [k, v] of [["term", m.term], ["commit", m.commit], ["applied", m.applied],
                        ["address", m.address], ["suffrage", m.suffrage]]) {
    kv.append(el("span", {}, k), el("span", { "data-field": k }, show(v)));
  }
  c.append(h, kv);
  return c;
}

function rate() {
  const now = samples.at(-1);
  const then = samples.find((s) => s.at >= now.at - 2000) || samples[0];
  return now.at > then.at ? ((now.commit - then.commit) * 1000) / (now.at - then.at) : 0;
}

function draw() {
  const svg = $("chart");
  svg.replaceChildren();
  // One user unit per pixel, so that text is not stretched.
  const W = Math.max(300, Math.round(svg.clientWidth || 600)), H = 220;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  const end = samples.at(-1).at, start = end - WINDOW_MS;
  const x = (t) => ((t - start) / WINDOW_MS) * W;
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    if (b.at > a.at) rates.push({ at: b.at, v: ((b.commit - a.commit) * 1000) / (b.at - a.at) });
  }
  const max = Math.max(10, ...rates.map((r) => r.v)) * 1.15;
  const y = (v) => H - (v / max) * (H - 16) - 1;
  for (let i = 1; i <= 3; i++) {
    const v = (max / 4) * i;
    svg.append(el("svg:line", { x1: 0, x2: W, y1: y(v), y2: y(v), stroke: "#27303a" }));
    svg.append(el("svg:text", { x: 4, y: y(v) - 3, fill: "#7d8894", "font-size": 10 }, Math.round(v) + "/s"));
  }
  for (const c of changes) {
    if (c.at < start) continue;
    svg.append(el("svg:line", { x1: x(c.at), x2: x(c.at), y1: 0, y2: H, stroke: "#f5b942", "stroke-dasharray": "4 3" }));
    svg.append(el("svg:text", { x: x(c.at) + 4, y: 12, fill: "#f5b942", "font-size": 11 }, c.leader || "none"));
  }
  if (rates.length > 1) {
    const pts = rates.map((r) => x(r.at).toFixed(1) + "," + y(r.v).toFixed(1)).join(" ");
    svg.append(el("svg:polyline", { points: pts, fill: "none", stroke: "#56d364", "stroke-width": 2 }));
    const area = x(rates[0].at).toFixed(1) + "," + H + " " + pts + " " + x(rates.at(-1).at).toFixed(1) + "," + H;
    svg.append(el("svg:polygon", { points: area, fill: "#56d36422" }));
  }
}

async function poll() {
  try {
    const res = await fetch("/ui/cluster", { cache: "no-store" });
    if (!res.ok) throw new Error(res.status + " " + res.statusText);
    const view = await res.json();
    const reachable = view.members.filter((m) => m.commit !== null);
    const commit = Math.max(0, ...reachable.map((m) => m.commit));
    samples.push({ at: view.at, commit });
    while (samples.length > 2 && samples[0].at < view.at - WINDOW_MS - POLL_MS) samples.shift();
    const leader = view.leader;
    if (lastLeader !== undefined && leader !== lastLeader) changes.push({ at: view.at, leader });
    lastLeader = leader;
    $("self").textContent = view.self;
    $("leader").textContent = leader || "none";
    $("term").textContent = view.term;
    $("changes").textContent = view.leaderChanges;
    $("rate").textContent = rate().toFixed(1);
    $("members").replaceChildren(...view.members.map(card));
    $("error").textContent = "";
    draw();
  } catch (e) {
    $("error").textContent = "· not answering: " + e.message;
  }
}
poll();
setInterval(poll, POLL_MS);
</script>
</body>
</html>
`;
