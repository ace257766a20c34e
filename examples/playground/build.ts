/**
 * Bundles the playground for the browser with Deno's own bundler (no
 * framework, no other tool): `deno run -A examples/playground/build.ts`
 * writes `examples/playground/dist/playground.js`; open `index.html`
 * through any static file server (`deno task playground` serves it).
 *
 * @module
 */

const here = new URL(".", import.meta.url);

/** Bundles `main.ts` into `dist/playground.js`; resolves with the output path. */
export async function build(): Promise<string> {
  const out = new URL("dist/playground.js", here).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "--quiet", "-o", out, new URL("main.ts", here).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`deno bundle failed (${r.code})`);
  return out;
}

/** Serves this directory on `port` (index.html and the bundle). */
function serve(port: number): void {
  const types: Record<string, string> = { html: "text/html", js: "text/javascript" };
  Deno.serve({ hostname: "127.0.0.1", port }, async (req) => {
    const path = new URL(req.url).pathname;
    const file = path === "/" ? "index.html" : path.slice(1);
    if (!/^(index\.html|dist\/playground\.js)$/.test(file)) return new Response("not found\n", { status: 404 });
    return new Response(await Deno.readFile(new URL(file, here)), {
      headers: { "content-type": types[file.split(".").pop()!] ?? "application/octet-stream" },
    });
  });
  console.log(`playground: http://127.0.0.1:${port}/`);
}

if (import.meta.main) {
  console.log(`wrote ${await build()}`);
  if (Deno.args.includes("--serve")) serve(8080);
}
