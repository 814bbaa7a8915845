#!/usr/bin/env node
// Benchmark (issue "image builder"): the bookworm minbase image from the local mirror on
// loopback, with the packages already downloaded, in the same run:
//   anchor  debootstrap --variant=minbase, then umoci insert of the result into an OCI layout
//   kiln    kiln build --no-cache (every layer rebuilt; downloaded .debs reused)
//   warm    kiln build with a warm layer cache, command start included
//   memory  peak RSS of a --no-cache build, and of one with a 1 GiB local package on top
//
//   npm run build && node bench/build-minbase.mjs [runs=3]
//
// Goals: kiln ≤ 0.25× the anchor's wall time; warm rebuild < 1.5 s; peak memory < 300 MB and
// not growing with image size.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createReadStream, statSync } from "node:fs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR = path.join(ROOT, ".cache/mirror");
const KILN = path.join(ROOT, "bin/kiln.js");
const runs = Number(process.argv[2] ?? 3);
const work = mkdtempSync(path.join(tmpdir(), "kiln-bench-build-"));

// A static server for the mirror, in a child process so timing here is not disturbed.
function serveMirror() {
  const server = createServer((req, res) => {
    const file = path.join(MIRROR, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!file.startsWith(MIRROR)) return res.writeHead(403).end();
    let st;
    try {
      st = statSync(file);
    } catch {
      return res.writeHead(404).end();
    }
    if (!st.isFile()) return res.writeHead(404).end();
    res.writeHead(200, { "content-length": st.size });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
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

const server = await serveMirror();
const mirrorUrl = `http://127.0.0.1:${server.address().port}/`;
const config = path.join(work, "kiln.yaml");
writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${mirrorUrl}", suite: bookworm, components: [main], keyring: none}\n`);
const env = { KILN_DATA_DIR: path.join(work, "data"), SOURCE_DATE_EPOCH: "" };
const build = (extra) => ["build", "-q", "--config", config, "--os", "Debian 12 x86_64", ...extra];

// Warm up: downloads the .debs once (the benchmark measures builds, not downloads).
await run(process.execPath, [KILN, ...build(["--oci", path.join(work, "warmup"), "--tag", "m"])], env);

const anchor = [];
const kiln = [];
const warm = [];
for (let i = 0; i < runs; i++) {
  const target = path.join(work, `debootstrap-${i}`);
  const layout = path.join(work, `umoci-${i}`);
  const t0 = process.hrtime.bigint();
  await run("debootstrap", ["--variant=minbase", "--no-check-gpg", "bookworm", target, mirrorUrl]);
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:minbase`]);
  await run("umoci", ["insert", "--image", `${layout}:minbase`, target, "/"]);
  anchor.push(Number(process.hrtime.bigint() - t0) / 1e9);
  rmSync(target, { recursive: true, force: true });
  rmSync(layout, { recursive: true, force: true });

  kiln.push((await run(process.execPath, [KILN, ...build(["--no-cache", "--oci", path.join(work, `kiln-${i}`), "--tag", "minbase"])], env)).seconds);
  warm.push((await run(process.execPath, [KILN, ...build(["--oci", path.join(work, `warm-${i}`), "--tag", "minbase"])], env)).seconds);
}

// Memory: a --no-cache minbase build, and the same with a 1 GiB package on top.
const peakMinbase = await peakMb([KILN, ...build(["--no-cache", "--oci", path.join(work, "mem-1"), "--tag", "m"])], env);
const bigDir = path.join(work, "big-deb");
mkdirSync(path.join(bigDir, "DEBIAN"), { recursive: true });
mkdirSync(path.join(bigDir, "opt/big"), { recursive: true });
writeFileSync(path.join(bigDir, "DEBIAN/control"), "Package: big-data\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <bench@example.org>\nDescription: 1 GiB of data\n");
for (let i = 0; i < 16; i++) writeFileSync(path.join(bigDir, `opt/big/part-${i}`), execFileSync("head", ["-c", String(64 * 1024 * 1024), "/dev/urandom"], { maxBuffer: 1 << 30 }));
execFileSync("dpkg-deb", ["-Znone", "--root-owner-group", "--build", bigDir, path.join(work, "big-data.deb")], { stdio: "ignore" });
rmSync(bigDir, { recursive: true, force: true });
const peakBig = await peakMb([KILN, ...build(["--no-cache", "--deb", path.join(work, "big-data.deb"), "--oci", path.join(work, "mem-2"), "--tag", "m"])], env);

server.close();
rmSync(work, { recursive: true, force: true });

const a = median(anchor);
const k = median(kiln);
const w = median(warm);
console.log(`runs: ${runs} (median)`);
console.log(`anchor  debootstrap --variant=minbase + umoci insert   ${a.toFixed(2)} s   (${anchor.map((x) => x.toFixed(2)).join(", ")})`);
console.log(`kiln    kiln build --no-cache                          ${k.toFixed(2)} s   (${kiln.map((x) => x.toFixed(2)).join(", ")})`);
console.log(`ratio   kiln / anchor                                  ${(k / a).toFixed(3)}   (goal ≤ 0.25)`);
console.log(`warm    kiln build, warm layer cache, whole command    ${w.toFixed(2)} s   (${warm.map((x) => x.toFixed(2)).join(", ")}; goal < 1.5 s)`);
console.log(`memory  peak RSS, minbase --no-cache                   ${peakMinbase.toFixed(0)} MB`);
console.log(`memory  peak RSS, minbase + 1 GiB package --no-cache   ${peakBig.toFixed(0)} MB   (goal < 300 MB, not growing with size)`);
