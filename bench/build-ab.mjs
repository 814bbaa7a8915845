#!/usr/bin/env node
// Regression check for build speed: `kiln build --no-cache` and a warm build of minbase by two
// checkouts of Kiln (this one, "new", and another built one, "old"), interleaved run by run so
// that both see the same load on a shared machine; medians and the new/old ratios.
//
//   npm run build && node bench/build-ab.mjs /path/to/other/checkout [runs=5]
//
// (`git worktree add --detach /tmp/kiln-old <rev> && cd /tmp/kiln-old && npm ci && npm run build`)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { serveMirror } from "./mirror.mjs";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR = path.join(ROOT, ".cache/mirror");
if (!process.argv[2]) throw new Error("usage: node bench/build-ab.mjs OTHER_CHECKOUT [runs]");
const KILNS = { old: path.join(path.resolve(process.argv[2]), "bin/kiln.js"), new: path.join(ROOT, "bin/kiln.js") };
const work = mkdtempSync(path.join(tmpdir(), "kiln-ab-"));
const mirror = await serveMirror(MIRROR);
const config = path.join(work, "kiln.yaml");
writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${mirror.url}", suite: bookworm, components: [main], keyring: none}\n`);
const run = (args, env) => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let err = ""; c.stderr.on("data", (d) => (err += d));
  c.on("exit", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(err))));
});
const build = (k, extra, i) => [KILNS[k], "build", "-q", "--config", config, "--os", "Debian 12 x86_64", "--oci", path.join(work, `${k}-${i}-${extra.length}`), "--tag", "m", ...extra];
const env = (k) => ({ KILN_DATA_DIR: path.join(work, `data-${k}`), SOURCE_DATE_EPOCH: "" });
for (const k of ["old", "new"]) await run(build(k, [], "w"), env(k));
const t = { old: { cold: [], warm: [] }, new: { cold: [], warm: [] } };
const n = Number(process.argv[3] ?? 5);
for (let i = 0; i < n; i++) for (const k of i % 2 ? ["new", "old"] : ["old", "new"]) {
  t[k].cold.push(await run(build(k, ["--no-cache"], i), env(k)));
  t[k].warm.push(await run(build(k, [], `${i}w`), env(k)));
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const k of ["old", "new"]) console.log(k, "cold", med(t[k].cold).toFixed(2), t[k].cold.map((x) => x.toFixed(2)).join(","), "warm", med(t[k].warm).toFixed(2), t[k].warm.map((x) => x.toFixed(2)).join(","));
console.log("ratio new/old cold", (med(t.new.cold) / med(t.old.cold)).toFixed(3), "warm", (med(t.new.warm) / med(t.old.warm)).toFixed(3));
await mirror.close();
rmSync(work, { recursive: true, force: true });
