/**
 * What the crash tests' child programs share: unbuffered stdout lines, the
 * parent's "done" signal, and which refusals of a request changed nothing.
 *
 * @module
 */

import process from "node:process";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const encoder = new TextEncoder();

/** Writes a line to stdout at once (no buffering in this process), so the parent sees it even if we die next. */
export function emit(line: string): void {
  if (isDeno) {
    const deno = (globalThis as unknown as { Deno: { stdout: { writeSync(b: Uint8Array): number } } }).Deno;
    let bytes = encoder.encode(line + "\n");
    while (bytes.length > 0) bytes = bytes.subarray(deno.stdout.writeSync(bytes));
  } else {
    process.stdout.write(line + "\n");
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when stdin closes: the parent is done with this child. */
export function stdinClosed(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
}

const RETRIED = new Set(["not-leader", "dropped", "transferring", "timeout"]);

/**
 * The reason of a refusal that changed nothing — no leader, a leader change
 * dropped it, a transfer under way, a timeout: Raft promised nothing for it,
 * so ask again — or undefined for any other error (a finding).
 */
export function refusal(e: unknown): string | undefined {
  const reason = (e as { _tag?: string; reason?: string })._tag === "RaftRejected"
    ? (e as { reason: string }).reason
    : undefined;
  return reason !== undefined && RETRIED.has(reason) ? reason : undefined;
}

/**
 * Whether `e` says a write's outcome is unknown (its leader changed before
 * answering): it may or may not be applied, so it is never counted as
 * acknowledged, and it is not proposed again under the same value (that
 * could apply one value twice).
 */
export function outcomeUnknown(e: unknown): boolean {
  return (e as { _tag?: string })._tag === "OutcomeUnknown";
}

/**
 * Runs `request`, again while it is refused with a {@link refusal} (processes
 * restarting at once may take a few elections to settle), until `ms` have
 * passed.
 */
export async function whenServed<T>(request: () => Promise<T>, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await request();
    } catch (e) {
      if (refusal(e) === undefined || performance.now() > deadline) throw e;
      await sleep(50);
    }
  }
}
