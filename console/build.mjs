// Builds the console into dist/console/: the app bundled and minified by esbuild (type-checked
// first by `tsc -p console`), content-hashed asset names, gzip and brotli copies of each asset,
// and the page template the server fills with the session. Run by `npm run build` (and so by
// `npm install`); nothing is fetched from anywhere.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, "../dist/console");
const assets = path.join(out, "assets");

const result = await build({
  entryPoints: [path.join(here, "src/main.tsx"), path.join(here, "src/style.css")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome111", "firefox111", "safari16.4"],
  jsx: "automatic",
  jsxImportSource: "preact",
  write: false,
  outdir: "out",
  entryNames: "[name]",
  legalComments: "none",
  logLevel: "warning",
});

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const names = {};
const emit = (logical, bytes) => {
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
  const ext = path.extname(logical);
  const name = `${path.basename(logical, ext)}-${hash}${ext}`;
  writeFileSync(path.join(assets, name), bytes);
  writeFileSync(path.join(assets, `${name}.gz`), gzipSync(bytes, { level: 9 }));
  writeFileSync(path.join(assets, `${name}.br`), brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  names[logical] = name;
};
for (const f of result.outputFiles) {
  const logical = path.basename(f.path) === "main.js" ? "app.js" : path.basename(f.path) === "style.css" ? "app.css" : path.basename(f.path);
  emit(logical, Buffer.from(f.contents));
}
emit("icon.svg", readFileSync(path.join(here, "src/icon.svg")));
const page = readFileSync(path.join(here, "src/index.html"), "utf8").replace(/\{\{([\w.]+)\}\}/g, (_m, k) => {
  if (!names[k]) throw new Error(`index.html names an unknown asset ${k}`);
  return names[k];
});
writeFileSync(path.join(out, "index.html"), page);
const js = readFileSync(path.join(assets, `${names["app.js"]}.gz`)).length;
console.log(`console: ${names["app.js"]} (${js} bytes gzipped), ${names["app.css"]}`);
