/**
 * Micro-reproductions for issue 15's Deno RSS growth: each mode repeats one
 * suspect operation N times in a fresh process and prints RSS (and V8's heap
 * and external bytes) every `--every` operations, then the RSS slope per
 * 10^5 operations after the first fifth. Deno only (`Deno.serve`,
 * `Deno.upgradeWebSocket`).
 *
 *   deno run -A bench/rss_probe.ts serve|ws-in|ws-out|fetch|wal|encode [--ops N] [--every N] [--size B]
 *
 * - `serve`: N keep-alive HTTP/1.1 PUTs with a `size`-byte body into `Deno.serve`, from a raw `Deno.connect` client
 *   (so the client allocates nearly nothing).
 * - `ws-in`: N binary messages into an upgraded `Deno.serve` WebSocket (the receiving side of a peer stream).
 * - `ws-out`: N binary messages sent from a `WebSocket` client (the sending side of a peer stream).
 * - `fetch`: N `fetch` PUTs against a `Deno.serve` in the same process (follower → leader forwarding).
 * - `wal`: N appends of `size` bytes + `FsFile.sync()` (the WAL's write path).
 * - `encode`: N `TextEncoder.encode` of a `size`-character string (a control: pure V8).
 *
 * @module
 */

import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    ops: { type: "string", default: "200000" },
    every: { type: "string", default: "20000" },
    size: { type: "string", default: "1024" },
    batch: { type: "string", default: "16" },
  },
});
const mode = positionals[0] ?? "serve";
const ops = Number(values.ops);
const every = Number(values.every);
const size = Number(values.size);
const batch = Number(values.batch);
const body = new Uint8Array(size).fill(120);

const samples: { op: number; rss: number; heap: number; external: number }[] = [];
function sample(op: number): void {
  const m = Deno.memoryUsage();
  samples.push({ op, rss: m.rss, heap: m.heapUsed, external: m.external });
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  console.log(`${mode} op=${op} rss=${mib(m.rss)}MiB heapUsed=${mib(m.heapUsed)}MiB external=${mib(m.external)}MiB`);
}

/** Least-squares slope of RSS in MiB per 10^5 ops, over samples after the first fifth. */
function slope(): number {
  const s = samples.filter((x) => x.op >= ops / 5);
  const n = s.length;
  const mx = s.reduce((a, x) => a + x.op, 0) / n;
  const my = s.reduce((a, x) => a + x.rss, 0) / n;
  const num = s.reduce((a, x) => a + (x.op - mx) * (x.rss - my), 0);
  const den = s.reduce((a, x) => a + (x.op - mx) ** 2, 0);
  return (num / den) * 1e5 / 2 ** 20;
}

async function runLoop(step: (i: number) => Promise<void>, perCall = 1): Promise<void> {
  sample(0);
  for (let i = 0; i < ops; i += perCall) {
    await step(i);
    if ((i + perCall) % every < perCall) sample(i + perCall);
  }
}

async function serveMode(): Promise<void> {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    return new Response("ok\n");
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const head = new TextEncoder().encode(
    `PUT /kv/k HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\n`,
  );
  const req = new Uint8Array(head.length + size);
  req.set(head);
  req.set(body, head.length);
  const buf = new Uint8Array(64 * 1024);
  let pending = 0;
  const readAnswers = async (n: number) => {
    // Each answer ends with "ok\n"; count them.
    while (n > 0) {
      const got = await conn.read(buf);
      if (got === null) throw new Error("server closed");
      for (let k = 0; k < got; k++) if (buf[k] === 10 && buf[k - 1] === 107) n--;
    }
  };
  await runLoop(async () => {
    for (let b = 0; b < batch; b++) await conn.write(req);
    pending += batch;
    await readAnswers(pending);
    pending = 0;
  }, batch);
  conn.close();
  await server.shutdown();
}

async function wsMode(inbound: boolean): Promise<void> {
  let received = 0;
  let wake: (() => void) | undefined;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) received++;
      if (received % batch === 0) socket.send(new Uint8Array(8)); // ack a batch
    };
    return response;
  });
  const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
  ws.binaryType = "arraybuffer";
  await new Promise((r) => ws.addEventListener("open", r, { once: true }));
  ws.onmessage = () => wake?.();
  // Both sides live in this process, so both modes measure the pair; `ws-out` sends larger batches from the client.
  void inbound;
  await runLoop(async () => {
    const acked = new Promise<void>((r) => (wake = r));
    for (let b = 0; b < batch; b++) ws.send(body);
    await acked;
  }, batch);
  ws.close();
  await server.shutdown();
}

async function fetchMode(): Promise<void> {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    return new Response("ok\n");
  });
  const url = `http://127.0.0.1:${server.addr.port}/kv/k`;
  await runLoop(async () => {
    await Promise.all(
      Array.from({ length: batch }, async () => {
        const r = await fetch(url, { method: "PUT", body });
        await r.arrayBuffer();
      }),
    );
  }, batch);
  await server.shutdown();
}

async function walMode(): Promise<void> {
  const dir = await Deno.makeTempDir();
  const file = await Deno.open(`${dir}/wal`, { append: true, create: true });
  await runLoop(async () => {
    let off = 0;
    while (off < body.length) off += await file.write(body.subarray(off));
    await file.sync();
  });
  file.close();
  await Deno.remove(dir, { recursive: true });
}

async function encodeMode(): Promise<void> {
  const enc = new TextEncoder();
  const text = "x".repeat(size);
  let sink = 0;
  await runLoop((i) => {
    sink += enc.encode(text + i).length;
    return Promise.resolve();
  });
  if (sink < 0) console.log(sink);
}

const modes: Record<string, () => Promise<void>> = {
  serve: serveMode,
  "ws-in": () => wsMode(true),
  "ws-out": () => wsMode(false),
  fetch: fetchMode,
  wal: walMode,
  encode: encodeMode,
};
const run = modes[mode];
if (!run) throw new Error(`unknown mode ${mode}; one of ${Object.keys(modes).join(", ")}`);
const t0 = performance.now();
await run();
console.log(
  `${mode}: ${ops} ops in ${((performance.now() - t0) / 1000).toFixed(1)} s; RSS slope after the first fifth ${
    slope().toFixed(2)
  } MiB per 10^5 ops`,
);
