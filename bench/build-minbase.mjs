#!/usr/bin/env node
// Benchmark (issues "image builder" and 14): the bookworm minbase image from the local mirror on
// loopback, with the packages already downloaded, in the same run:
//   mmdebstrap  mmdebstrap --variant=minbase --include=apt (merged-usr hook) into a tmpfs, then
//               umoci insert of the result into an OCI layout (the fastest standard tool; on a
//               tmpfs it pays no sync cost)
//   debootstrap debootstrap --variant=minbase into the same tmpfs, then umoci insert
//   kiln        kiln build --no-cache (every layer rebuilt; downloaded and unpacked .debs reused,
//               as mmdebstrap reuses apt's downloaded .debs)
//   kiln cold   kiln build --no-cache --no-package-cache (every package decompressed again too)
//   kiln zstd   kiln build --no-cache --compression zstd (zstd layers), against the same anchor
//   warm        kiln build with a warm layer cache, command start included
//   memory      peak RSS of a --no-cache build, and of one with a 1 GiB local package on top
//   trixie      kiln build --no-cache of trixie minbase, and mmdebstrap trixie on the tmpfs
//               (the test suite's trixie mirror, .cache/mirror-trixie: its global setup makes it)
//   arm64       kiln build --no-cache of bookworm arm64 minbase + jq (the suite's arm64 mirror);
//               no anchor: mmdebstrap and debootstrap need qemu-user with binfmt_misc for it
//
//   npm run build && node bench/build-minbase.mjs [runs=3]        (as root: mount, mmdebstrap)
//
// Goals (issue 14): kiln ≤ 0.33× mmdebstrap's wall time; warm rebuild < 0.5 s; peak memory
// < 300 MB and not growing with image size.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serveMirror } from "./mirror.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR = path.join(ROOT, ".cache/mirror");
const KILN = path.join(ROOT, "bin/kiln.js");
const runs = Number(process.argv[2] ?? 3);
const work = mkdtempSync(path.join(tmpdir(), "kiln-bench-build-"));


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
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} failed (${code}):\n${err}`));
      else resolve({ seconds, out, err });
    });
  });
}

/** Peak RSS (MB) of a command, from GNU time. */
async function peakMb(args, env) {
  const r = await run("/usr/bin/time", ["-f", "PEAK_KB=%M", process.execPath, ...args], env);
  return Number(/PEAK_KB=(\d+)/.exec(r.err)[1]) / 1024;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const mirror = await serveMirror(MIRROR);
const mirrorUrl = mirror.url;
const config = path.join(work, "kiln.yaml");
writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${mirrorUrl}", suite: bookworm, components: [main], keyring: none}\n`);
const env = { KILN_DATA_DIR: path.join(work, "data"), SOURCE_DATE_EPOCH: "" };
const build = (extra) => ["build", "-q", "--config", config, "--os", "Debian 12 x86_64", ...extra];

// Warm up: downloads the .debs once (the benchmark measures builds, not downloads).
await run(process.execPath, [KILN, ...build(["--oci", path.join(work, "warmup"), "--tag", "m"])], env);

// The anchors build into a tmpfs (no sync cost) and umoci inserts from there into the same tmpfs.
const tmpfs = path.join(work, "tmpfs");
mkdirSync(tmpfs);
execFileSync("mount", ["-t", "tmpfs", "-o", "size=4g", "kiln-bench", tmpfs]);
/** An anchor tool's tree, then umoci insert of it: the wall time of both. */
async function anchorRun(name, argv) {
  const target = path.join(tmpfs, `${name}-root`);
  const layout = path.join(tmpfs, `${name}-oci`);
  const t0 = process.hrtime.bigint();
  await run(argv[0], argv.slice(1).map((a) => (a === "TARGET" ? target : a)));
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:minbase`]);
  await run("umoci", ["insert", "--image", `${layout}:minbase`, target, "/"]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const m of readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(`${target}/`)).sort().reverse()) execFileSync("umount", ["-l", m]);
  rmSync(target, { recursive: true, force: true });
  rmSync(layout, { recursive: true, force: true });
  return seconds;
}
const mmdebstrapArgs = (suite, url, hook) => ["mmdebstrap", "--mode=root", "--variant=minbase", "--include=apt", ...(hook ? ["--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"] : []), suite, "TARGET", `deb [trusted=yes] ${url} ${suite} main`];

const mmdebstrap = [];
const debootstrap = [];
const kiln = [];
const kilnCold = [];
const kilnZstd = [];
const warm = [];
for (let i = 0; i < runs; i++) {
  mmdebstrap.push(await anchorRun("mmdebstrap", mmdebstrapArgs("bookworm", mirrorUrl, true)));
  debootstrap.push(await anchorRun("debootstrap", ["debootstrap", "--variant=minbase", "--no-check-gpg", "bookworm", "TARGET", mirrorUrl]));
  kiln.push((await run(process.execPath, [KILN, ...build(["--no-cache", "--oci", path.join(work, `kiln-${i}`), "--tag", "minbase"])], env)).seconds);
  kilnCold.push((await run(process.execPath, [KILN, ...build(["--no-cache", "--no-package-cache", "--oci", path.join(work, `kiln-cold-${i}`), "--tag", "minbase"])], env)).seconds);
  kilnZstd.push((await run(process.execPath, [KILN, ...build(["--no-cache", "--compression", "zstd", "--oci", path.join(work, `kiln-zstd-${i}`), "--tag", "minbase"])], env)).seconds);
  warm.push((await run(process.execPath, [KILN, ...build(["--oci", path.join(work, `warm-${i}`), "--tag", "minbase"])], env)).seconds);
}

// trixie (amd64) and arm64: Kiln --no-cache, after one build that downloads the packages.
const other = {};
const trixieMirror = path.join(ROOT, ".cache/mirror-trixie");
const arm64Mirror = path.join(ROOT, ".cache/mirror-bookworm-arm64");
const otherConfig = path.join(work, "other.yaml");
writeFileSync(
  otherConfig,
  `distributions:\n  - {name: Debian, version: "13", arch: x86_64, mirror: "file://${trixieMirror}/", suite: trixie, components: [main], keyring: none}\n` +
    `  - {name: Debian, version: "12", arch: aarch64, mirror: "file://${arm64Mirror}/", suite: bookworm, components: [main], keyring: none}\n`,
);
for (const [label, os, extra, mirror] of [
  ["trixie", "Debian 13 x86_64", [], trixieMirror],
  ["arm64", "Debian 12 aarch64", ["--packages", "jq"], arm64Mirror],
]) {
  if (!existsSync(path.join(mirror, "dists"))) continue;
  const args = (i, more) => ["build", "-q", "--config", otherConfig, "--os", os, ...extra, "--oci", path.join(work, `${label}-${i}`), "--tag", "m", ...more];
  await run(process.execPath, [KILN, ...args("warmup", [])], env);
  const times = [];
  const cold = [];
  for (let i = 0; i < runs; i++) {
    times.push((await run(process.execPath, [KILN, ...args(i, ["--no-cache"])], env)).seconds);
    cold.push((await run(process.execPath, [KILN, ...args(`cold-${i}`, ["--no-cache", "--no-package-cache"])], env)).seconds);
  }
  other[label] = { kiln: times, cold };
}
if (other.trixie) {
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await anchorRun("mmdebstrap-trixie", mmdebstrapArgs("trixie", `copy://${trixieMirror}/`, false)));
  other.trixie.mmdebstrap = times;
}

// Memory: a --no-cache --no-package-cache minbase build, and the same with a 1 GiB package on top.
const peakMinbase = await peakMb([KILN, ...build(["--no-cache", "--no-package-cache", "--oci", path.join(work, "mem-1"), "--tag", "m"])], env);
const bigDir = path.join(work, "big-deb");
mkdirSync(path.join(bigDir, "DEBIAN"), { recursive: true });
mkdirSync(path.join(bigDir, "opt/big"), { recursive: true });
writeFileSync(path.join(bigDir, "DEBIAN/control"), "Package: big-data\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <bench@example.org>\nDescription: 1 GiB of data\n");
for (let i = 0; i < 16; i++) writeFileSync(path.join(bigDir, `opt/big/part-${i}`), execFileSync("head", ["-c", String(64 * 1024 * 1024), "/dev/urandom"], { maxBuffer: 1 << 30 }));
execFileSync("dpkg-deb", ["-Znone", "--root-owner-group", "--build", bigDir, path.join(work, "big-data.deb")], { stdio: "ignore" });
rmSync(bigDir, { recursive: true, force: true });
const peakBig = await peakMb([KILN, ...build(["--no-cache", "--no-package-cache", "--deb", path.join(work, "big-data.deb"), "--oci", path.join(work, "mem-2"), "--tag", "m"])], env);

await mirror.close();
execFileSync("umount", [tmpfs]);
rmSync(work, { recursive: true, force: true });

const m = median(mmdebstrap);
const d = median(debootstrap);
const k = median(kiln);
const kc = median(kilnCold);
const kz = median(kilnZstd);
const w = median(warm);
const list = (xs) => xs.map((x) => x.toFixed(2)).join(", ");
console.log(`runs: ${runs} (median)`);
console.log(`mmdebstrap  minbase --include=apt, tmpfs, + umoci insert  ${m.toFixed(2)} s   (${list(mmdebstrap)})`);
console.log(`debootstrap minbase, tmpfs, + umoci insert                ${d.toFixed(2)} s   (${list(debootstrap)})`);
console.log(`kiln        kiln build --no-cache                         ${k.toFixed(2)} s   (${list(kiln)})`);
console.log(`ratio       kiln / mmdebstrap                             ${(k / m).toFixed(3)}   (goal ≤ 0.33)`);
console.log(`ratio       kiln / debootstrap                            ${(k / d).toFixed(3)}`);
console.log(`kiln cold   kiln build --no-cache --no-package-cache  ${kc.toFixed(2)} s   (${list(kilnCold)})`);
console.log(`ratio       kiln cold / mmdebstrap                        ${(kc / m).toFixed(3)}`);
console.log(`kiln zstd   kiln build --no-cache --compression zstd      ${kz.toFixed(2)} s   (${list(kilnZstd)})`);
console.log(`ratio       kiln zstd / mmdebstrap                        ${(kz / m).toFixed(3)}`);
console.log(`warm        kiln build, warm layer cache, whole command   ${w.toFixed(2)} s   (${list(warm)}; goal < 0.5 s)`);
console.log(`memory      peak RSS, minbase, cold                       ${peakMinbase.toFixed(0)} MB`);
console.log(`memory      peak RSS, minbase + 1 GiB package, cold       ${peakBig.toFixed(0)} MB   (goal < 300 MB, not growing with size)`);
if (other.trixie) {
  const kt = median(other.trixie.kiln);
  const mt = median(other.trixie.mmdebstrap);
  const kct = median(other.trixie.cold);
  console.log(`trixie      kiln --no-cache ${kt.toFixed(2)} s (${list(other.trixie.kiln)}); mmdebstrap tmpfs + umoci ${mt.toFixed(2)} s (${list(other.trixie.mmdebstrap)}); ratio ${(kt / mt).toFixed(3)}`);
  console.log(`trixie      kiln cold ${kct.toFixed(2)} s (${list(other.trixie.cold)}); ratio ${(kct / mt).toFixed(3)}`);
}
if (other.arm64) console.log(`arm64       kiln --no-cache, bookworm minbase + jq    ${median(other.arm64.kiln).toFixed(2)} s (${list(other.arm64.kiln)}; cold ${median(other.arm64.cold).toFixed(2)} s; no anchor without binfmt_misc)`);
