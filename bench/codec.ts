/**
 * Micro-benchmark of the binary codec: encode + decode of an AppendEntries
 * carrying 64 entries of 128 bytes, plus each half, a heartbeat, and the
 * CRC-32C of the encoded message.
 *
 * Run: `deno run -A bench/codec.ts` or `bun bench/codec.ts`.
 *
 * @module
 */

import {
  CODEC_VERSION,
  decodeMessage,
  encodedMessageSize,
  encodeMessage,
  Reader,
  readMessage,
  readVersion,
  writeMessage,
  Writer,
} from "../core/codec/mod.ts";
import { crc32c } from "../core/crc32c.ts";
import type { AppendEntries, Entry } from "../core/types.ts";

const ENTRIES = 64;
const PAYLOAD = 128;

function payload(i: number): Uint8Array {
  const b = new Uint8Array(PAYLOAD);
  for (let j = 0; j < PAYLOAD; j++) b[j] = (i * 31 + j * 7) & 0xff;
  return b;
}

const entries: Entry[] = Array.from({ length: ENTRIES }, (_, i) => ({
  term: 7,
  index: 1_000_000 + i,
  kind: "command",
  data: payload(i),
  config: undefined,
}));

const append: AppendEntries = {
  type: "AppendEntries",
  group: 0,
  from: "node-1",
  to: "node-2",
  term: 7,
  prevIndex: 999_999,
  prevTerm: 7,
  entries,
  commit: 999_990,
  seq: 12345,
};
const heartbeat: AppendEntries = { ...append, entries: [] };

const encoded = encodeMessage(append);
let sink = 0;

/** Runs `f` in growing batches until about `ms` milliseconds have passed; returns ns per call. */
function measure(f: () => void, ms = 1000): number {
  for (let i = 0; i < 2000; i++) f(); // warm-up, let the JIT settle
  let iterations = 0;
  let batch = 256;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) f();
    iterations += batch;
    elapsed = performance.now() - start;
    if (elapsed < ms / 10) batch *= 2;
  }
  return (elapsed * 1e6) / iterations;
}

function report(name: string, ns: number, bytes: number): void {
  const mbps = bytes / (ns / 1e9) / 1e6;
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(8)} ns/op ${mbps.toFixed(0).padStart(7)} MB/s`);
}

const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`
  : "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno}`
  : "unknown runtime";
console.log(
  `codec bench on ${runtime}: AppendEntries with ${ENTRIES} × ${PAYLOAD}-byte entries = ${encoded.length} bytes encoded ` +
    `(${encodedMessageSize(append)} predicted); MB/s counts encoded bytes`,
);

report(
  "AppendEntries 64×128 B encode+decode",
  measure(() => {
    const m = decodeMessage(encodeMessage(append)) as AppendEntries;
    sink += m.entries.length;
  }),
  encoded.length,
);
report(
  "AppendEntries 64×128 B encode",
  measure(() => {
    sink += encodeMessage(append).length;
  }),
  encoded.length,
);
report(
  "AppendEntries 64×128 B decode",
  measure(() => {
    sink += (decodeMessage(encoded) as AppendEntries).entries.length;
  }),
  encoded.length,
);
// The allocation-free path a transport or log writer can take: one Writer
// reused across messages (Deno's typed-array allocation costs ~0.3–1.4 µs).
const reused = new Writer(16 * 1024);
report(
  "AppendEntries 64×128 B reused Writer + decode",
  measure(() => {
    reused.reset();
    reused.u8(CODEC_VERSION);
    writeMessage(reused, append);
    const r = new Reader(reused.finish());
    readVersion(r);
    sink += (readMessage(r) as AppendEntries).entries.length;
  }),
  encoded.length,
);
const hb = encodeMessage(heartbeat);
report(
  `heartbeat (${hb.length} B) encode+decode`,
  measure(() => {
    sink += decodeMessage(encodeMessage(heartbeat)).term;
  }),
  hb.length,
);
report(
  `crc32c over the encoded message`,
  measure(() => {
    sink += crc32c(encoded);
  }),
  encoded.length,
);

if (sink === 0) console.log("unreachable: keeps results observable");
