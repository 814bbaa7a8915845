#!/usr/bin/env node
// Fidelity harness (issue 9): for each package set of corpus.json, build the image with Kiln and
// the reference with mmdebstrap from the same local mirror, unpack Kiln's image with a privileged
// `umoci unpack`, and compare the two trees path by path — type, mode, owner, symlink target,
// xattrs, content hash. Every difference is either in a harmless category (harmless.json, each
// with its reason) or explained by an "unreproduced" entry of Kiln's build report (whose effect
// the study maps to the paths it leaves); what is left is printed, per set, as unexplained.
//
//   npm run build && node bench/fidelity/run.mjs [SET...]       (as root: mmdebstrap --mode=root, umoci)
//   FIDELITY_KEEP=1 keeps the two trees of each set for inspection.
//
// The corpus mirror is built once under .cache/fidelity/mirror with tools/make-local-mirror.sh,
// from the union of the sets' dependency closures, computed by apt-get's resolver over Debian's
// bookworm (+ updates, security) indexes with a private apt configuration (an empty dpkg status,
// no Recommends): what mmdebstrap --variant=minbase --include=apt,<set> installs.
// Results: a table on stdout, details per set in .cache/fidelity/diff-<set>.txt.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serveMirror } from "../mirror.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WORK = path.join(ROOT, ".cache/fidelity");
const KILN = path.join(ROOT, "bin/kiln.js");
const CORPUS = JSON.parse(readFileSync(path.join(ROOT, "bench/fidelity/corpus.json"), "utf8"));
const { studyFor, pathsFor } = await import(path.join(ROOT, "dist/rootfs/fixups/study/index.js"));
const { classify, compareTrees, scanTree } = await import("./compare.mjs");
const study = studyFor("bookworm");
const SOURCE_DATE_EPOCH = "1735689600"; // 2025-01-01: both tools stamp the same day
const wanted = process.argv.slice(2);
// In the order given (the corpus' order without names).
const sets = wanted.length === 0 ? CORPUS.sets : wanted.map((name) => CORPUS.sets.find((s) => s.name === name) ?? name);
const unknownSets = sets.filter((s) => typeof s === "string");
if (unknownSets.length > 0) throw new Error(`no such set: ${unknownSets.join(", ")}`);
mkdirSync(WORK, { recursive: true });

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { maxBuffer: 1 << 30, ...opts });
}

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} failed (${code}):\n${err.slice(-4000)}`));
      else resolve({ seconds, out, err });
    });
  });
}

// ---- 1. Closures and the corpus mirror --------------------------------------------------------

const aptDir = path.join(WORK, "apt");
function aptConfig() {
  for (const d of ["lists/partial", "archives/partial", "etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d"]) mkdirSync(path.join(aptDir, d), { recursive: true });
  writeFileSync(
    path.join(aptDir, "etc/sources.list"),
    ["bookworm", "bookworm-updates"].map((s) => `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${s} main\n`).join("") +
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main\n",
  );
  writeFileSync(path.join(aptDir, "status"), "");
  const conf = [
    `Dir::Etc "${aptDir}/etc";`,
    `Dir::Etc::sourcelist "${aptDir}/etc/sources.list";`,
    `Dir::Etc::sourceparts "${aptDir}/etc/sources.list.d";`,
    `Dir::Etc::parts "${aptDir}/etc/apt.conf.d";`,
    `Dir::Etc::preferencesparts "${aptDir}/etc/preferences.d";`,
    `Dir::State "${aptDir}";`,
    `Dir::State::lists "${aptDir}/lists";`,
    `Dir::State::status "${aptDir}/status";`,
    `Dir::Cache "${aptDir}";`,
    `Dir::Cache::archives "${aptDir}/archives";`,
    `APT::Architecture "amd64";`,
    `APT::Install-Recommends "false";`,
  ].join("\n");
  writeFileSync(path.join(aptDir, "apt.conf"), `${conf}\n`);
  return path.join(aptDir, "apt.conf");
}

const APT_CONFIG = aptConfig();
const stamp = path.join(aptDir, "updated");
if (!existsSync(stamp) || Date.now() - statSync(stamp).mtimeMs > 7 * 86400_000) {
  sh("apt-get", ["-qq", "update"], { env: { ...process.env, APT_CONFIG }, stdio: "inherit" });
  writeFileSync(stamp, new Date().toISOString());
}
const mainIndex = sh("sh", ["-c", `cat ${aptDir}/lists/*_debian_dists_bookworm_main_binary-amd64_Packages`]).toString();
const base = new Set();
for (const stanza of mainIndex.split("\n\n")) {
  const name = /^Package: (.*)$/m.exec(stanza)?.[1];
  if (name && (/^Priority: required$/m.test(stanza) || /^Essential: yes$/m.test(stanza))) base.add(name);
}
const closureOf = (names) =>
  sh("apt-get", ["-s", "install", ...names], { env: { ...process.env, APT_CONFIG } })
    .toString()
    .split("\n")
    .filter((l) => l.startsWith("Inst "))
    .map((l) => l.split(" ")[1]);
const everything = new Set(closureOf([...base, "apt", "usr-is-merged", ...CORPUS.sets.flatMap((s) => s.packages)]));
const mirror = path.join(WORK, "mirror");
const wantedList = [...everything].sort().join("\n");
if (!existsSync(path.join(mirror, "packages.txt")) || readFileSync(path.join(mirror, "packages.txt"), "utf8") !== wantedList) {
  rmSync(mirror, { recursive: true, force: true });
  sh("bash", [path.join(ROOT, "tools/make-local-mirror.sh"), mirror, ...everything], { env: { ...process.env, APT_CONFIG }, stdio: "inherit" });
  writeFileSync(path.join(mirror, "packages.txt"), wantedList);
}

// ---- 2. The mirror on loopback, and Kiln's configuration --------------------------------------

const served = await serveMirror(mirror);
const url = served.url;
const config = path.join(WORK, "kiln.yaml");
writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${url}", suite: bookworm, components: [main], keyring: none}\n`);
const kilnEnv = { KILN_DATA_DIR: path.join(WORK, "data"), SOURCE_DATE_EPOCH };

// ---- 4. Each set ------------------------------------------------------------------------------

const rows = [];
for (const set of sets) {
  const refDir = path.join(WORK, `ref-${set.name}`);
  const layout = path.join(WORK, `oci-${set.name}`);
  const bundle = path.join(WORK, `bundle-${set.name}`);
  const reportFile = path.join(WORK, `report-${set.name}.json`);
  for (const d of [refDir, layout, bundle]) rmSync(d, { recursive: true, force: true });
  process.stderr.write(`\n== ${set.name}: mmdebstrap\n`);
  // In a private mount namespace: nothing mmdebstrap mounts in its chroot can outlive it on the host.
  const ref = await run(
    "unshare",
    ["-m", "--propagation", "private", "mmdebstrap", "--mode=root", "--variant=minbase", `--include=${["apt", ...set.packages].join(",")}`, "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "bookworm", refDir, `deb [trusted=yes] ${url} bookworm main`],
    { SOURCE_DATE_EPOCH },
  );
  process.stderr.write(`== ${set.name}: kiln build\n`);
  const kilnArgs = ["build", "-q", "--config", config, "--os", "Debian 12 x86_64", "--oci", layout, "--tag", "t", "--report", reportFile, ...(set.packages.length ? ["--packages", set.packages.join(",")] : [])];
  await run(process.execPath, [KILN, ...kilnArgs], kilnEnv); // downloads the packages once
  rmSync(layout, { recursive: true, force: true });
  const kiln = await run(process.execPath, [KILN, ...kilnArgs, "--no-cache"], kilnEnv);
  sh("umoci", ["unpack", "--image", `${layout}:t`, bundle], { stdio: "ignore" });
  const report = JSON.parse(readFileSync(reportFile, "utf8"));
  const diffs = compareTrees(scanTree(refDir), scanTree(path.join(bundle, "rootfs")));
  const sorted = classify(diffs, report, (e) => pathsFor(study, e.package, e.effect));
  const counts = { harmless: sorted.harmless.length, explained: sorted.explained.length, unexplained: sorted.unexplained.length };
  const lines = [
    ...sorted.unexplained.map((d) => `UNEXPLAINED ${d.path}: ${d.kind}`),
    ...sorted.explained.map((d) => `explained   ${d.path}: ${d.kind} (${d.by.package} ${d.by.script}: unreproduced)`),
    ...sorted.harmless.map((d) => `harmless    ${d.path}: ${d.kind} (${d.category})`),
  ];
  const unreproduced = report.scripts.filter((e) => e.outcome === "unreproduced");
  writeFileSync(
    path.join(WORK, `diff-${set.name}.txt`),
    `${lines.join("\n")}\n\nunreproduced effects (${unreproduced.length}):\n${unreproduced.map((e) => `  ${e.package} ${e.script}: ${e.effect}`).join("\n")}\n`,
  );
  const row = { set: set.name, packages: report.packages.length, diffs: diffs.length, ...counts, unreproduced: unreproduced.length, mmdebstrap: ref.seconds, kiln: kiln.seconds };
  rows.push(row);
  process.stderr.write(`${lines.filter((l) => l.startsWith("UNEXPLAINED")).slice(0, 40).join("\n")}\n`);
  process.stderr.write(`== ${set.name}: ${JSON.stringify(row)}\n`);
  // FIDELITY_KEEP=1 keeps both trees (ref-<set>, bundle-<set>/rootfs) for a closer look.
  if (!process.env.FIDELITY_KEEP) {
    rmSync(refDir, { recursive: true, force: true });
    rmSync(bundle, { recursive: true, force: true });
  }
}
await served.close();

console.log("| set | packages | differences | harmless | explained by the report | **unexplained** | unreproduced effects | mmdebstrap | kiln --no-cache | ratio |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(`| ${r.set} | ${r.packages} | ${r.diffs} | ${r.harmless} | ${r.explained} | **${r.unexplained}** | ${r.unreproduced} | ${r.mmdebstrap.toFixed(1)} s | ${r.kiln.toFixed(1)} s | ${(r.kiln / r.mmdebstrap).toFixed(2)} |`);
}
