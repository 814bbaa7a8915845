#!/usr/bin/env node
// Regression check for build speed: `kiln build --no-cache` and a warm build of minbase by two
// checkouts of Kiln (this one, "new", and another built one, "old"), interleaved run by run so
// that both see the same load on a shared machine; medians and the new/old ratios, of the wall
// time and of the CPU time (user + system).
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
// Each run's wall time, and its CPU time (user + system, from GNU time): on a shared machine the
// CPU time is the steadier measure of work done.
const cpu = { old: { cold: [], warm: [] }, new: { cold: [], warm: [] } };
const run = (args, env) => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const c = spawn("/usr/bin/time", ["-f", "KILN_CPU=%U+%S", process.execPath, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let err = ""; c.stderr.on("data", (d) => (err += d));
  c.on("exit", (code) => {
    if (code !== 0) return reject(new Error(err));
    const m = /KILN_CPU=([\d.]+)\+([\d.]+)/.exec(err);
    resolve({ wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: Number(m[1]) + Number(m[2]) });
  });
});
const build = (k, extra, i) => [KILNS[k], "build", "-q", "--config", config, "--os", "Debian 12 x86_64", "--oci", path.join(work, `${k}-${i}-${extra.length}`), "--tag", "m", ...extra];
const env = (k) => ({ KILN_DATA_DIR: path.join(work, `data-${k}`), SOURCE_DATE_EPOCH: "" });
for (const k of ["old", "new"]) await run(build(k, [], "w"), env(k));
const t = { old: { cold: [], warm: [] }, new: { cold: [], warm: [] } };
const n = Number(process.argv[3] ?? 5);
for (let i = 0; i < n; i++) for (const k of i % 2 ? ["new", "old"] : ["old", "new"]) {
  for (const [kind, extra, tag] of [["cold", ["--no-cache"], i], ["warm", [], `${i}w`]]) {
    const r = await run(build(k, extra, tag), env(k));
    t[k][kind].push(r.wall);
    cpu[k][kind].push(r.cpu);
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const k of ["old", "new"]) console.log(k, "cold", med(t[k].cold).toFixed(2), t[k].cold.map((x) => x.toFixed(2)).join(","), "warm", med(t[k].warm).toFixed(2), t[k].warm.map((x) => x.toFixed(2)).join(","));
console.log("ratio new/old cold", (med(t.new.cold) / med(t.old.cold)).toFixed(3), "warm", (med(t.new.warm) / med(t.old.warm)).toFixed(3));
for (const k of ["old", "new"]) console.log(k, "CPU s cold", med(cpu[k].cold).toFixed(2), cpu[k].cold.map((x) => x.toFixed(2)).join(","), "warm", med(cpu[k].warm).toFixed(2), cpu[k].warm.map((x) => x.toFixed(2)).join(","));
console.log("CPU ratio new/old cold", (med(cpu.new.cold) / med(cpu.old.cold)).toFixed(3), "warm", (med(cpu.new.warm) / med(cpu.old.warm)).toFixed(3));
await mirror.close();
rmSync(work, { recursive: true, force: true });
