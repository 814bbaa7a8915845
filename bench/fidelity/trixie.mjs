#!/usr/bin/env node
// Fidelity on Debian 13 (trixie): the minbase tree Kiln builds against the one
// `mmdebstrap --variant=minbase --include=apt trixie` makes from the same local mirror (trixie's
// own base-files merges /usr: no hook), compared path by path with compare.mjs — the comparison
// the fix-up tests and run.mjs use — each difference harmless, explained by Kiln's report, or
// unexplained. Also times both (kiln --no-cache, mmdebstrap on the same disk). The suite runs the
// same comparison as a test (test/rootfs/fixups/trixie.test.ts); this script prints the table of
// bench/RESULTS.md and the times.
//
//   npm run build && node bench/fidelity/trixie.mjs       (as root: mmdebstrap --mode=root, umoci)
//
// The mirror (the 78 packages of tools/minbase-trixie.txt, made with SUITE=trixie
// tools/make-local-mirror.sh) is the test suite's, .cache/mirror-trixie. mmdebstrap runs in a
// private mount namespace, so nothing it mounts can outlive it on the host.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WORK = path.join(ROOT, ".cache/fidelity");
const KILN = path.join(ROOT, "bin/kiln.js");
const { studyFor, pathsFor } = await import(path.join(ROOT, "dist/rootfs/fixups/study/index.js"));
const { classify, compareTrees, scanTree } = await import("./compare.mjs");
const study = studyFor("trixie");
const SOURCE_DATE_EPOCH = "1735689600";
const mirror = path.join(ROOT, ".cache/mirror-trixie");
const names = readFileSync(path.join(ROOT, "tools/minbase-trixie.txt"), "utf8").split("\n").filter(Boolean);
if (!existsSync(path.join(mirror, "dists/trixie/Release"))) {
  execFileSync("bash", [path.join(ROOT, "tools/make-local-mirror.sh"), mirror, ...names], { env: { ...process.env, SUITE: "trixie", ARCH: "amd64" }, stdio: "inherit" });
}

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, err }) : reject(new Error(`${cmd} failed (${code}):\n${err.slice(-4000)}`))));
  });
}

const refDir = path.join(WORK, "ref-trixie");
const layout = path.join(WORK, "oci-trixie");
const bundle = path.join(WORK, "bundle-trixie");
const reportFile = path.join(WORK, "report-trixie.json");
for (const d of [refDir, layout, bundle]) rmSync(d, { recursive: true, force: true });
const config = path.join(WORK, "kiln-trixie.yaml");
writeFileSync(config, `distributions:\n  - {name: Debian, version: "13", arch: x86_64, mirror: "file://${mirror}/", suite: trixie, components: [main], keyring: none}\n`);
const kilnEnv = { KILN_DATA_DIR: path.join(WORK, "data-trixie"), SOURCE_DATE_EPOCH };

const ref = await run("unshare", ["-m", "--propagation", "private", "mmdebstrap", "--mode=root", "--variant=minbase", "--include=apt", "trixie", refDir, `deb [trusted=yes] copy://${mirror}/ trixie main`], { SOURCE_DATE_EPOCH });
const kilnArgs = ["build", "-q", "--config", config, "--os", "Debian 13 x86_64", "--oci", layout, "--tag", "t", "--report", reportFile];
await run(process.execPath, [KILN, ...kilnArgs], kilnEnv); // downloads and unpacks once
rmSync(layout, { recursive: true, force: true });
const kiln = await run(process.execPath, [KILN, ...kilnArgs, "--no-cache"], kilnEnv);
execFileSync("umoci", ["unpack", "--image", `${layout}:t`, bundle], { stdio: "ignore" });
const report = JSON.parse(readFileSync(reportFile, "utf8"));
const diffs = compareTrees(scanTree(refDir), scanTree(path.join(bundle, "rootfs")));
const sorted = classify(diffs, report, (e) => pathsFor(study, e.package, e.effect));
const lines = [
  ...sorted.unexplained.map((d) => `UNEXPLAINED ${d.path}: ${d.kind}`),
  ...sorted.explained.map((d) => `explained   ${d.path}: ${d.kind} (${d.by.package} ${d.by.script}: unreproduced)`),
  ...sorted.harmless.map((d) => `harmless    ${d.path}: ${d.kind} (${d.category})`),
];
const unreproduced = report.scripts.filter((e) => e.outcome === "unreproduced");
writeFileSync(path.join(WORK, "diff-trixie.txt"), `${lines.join("\n")}\n\nunreproduced effects (${unreproduced.length}):\n${unreproduced.map((e) => `  ${e.package} ${e.script}: ${e.effect}`).join("\n")}\n`);
process.stderr.write(`${lines.filter((l) => l.startsWith("UNEXPLAINED")).join("\n")}\n`);
console.log("| release | packages | differences | harmless | explained by the report | **unexplained** | unreproduced effects | mmdebstrap | kiln --no-cache | ratio |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
console.log(`| trixie minbase | ${report.packages.length} | ${diffs.length} | ${sorted.harmless.length} | ${sorted.explained.length} | **${sorted.unexplained.length}** | ${unreproduced.length} | ${ref.seconds.toFixed(1)} s | ${kiln.seconds.toFixed(1)} s | ${(kiln.seconds / ref.seconds).toFixed(2)} |`);
if (!process.env.KEEP) for (const d of [refDir, bundle]) rmSync(d, { recursive: true, force: true });
