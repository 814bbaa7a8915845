#!/usr/bin/env node
// Benchmark (issue "generate, follow, cancel and download"), against the local mirror, in one run:
//   api-vs-cli   an API generation of minbase plus a small bundle, against `kiln build` of the same
//                base to a .tar.gz docker-archive (both from a fresh layer cache, packages already
//                downloaded) — goal: the API and jobs add at most 20%
//   regenerate   a regeneration after changing only the bundle — goal under 2 s
//   four         four generations at once — goal: all complete, none fail
//   download     a 1 GiB image file from Kiln against nginx (sendfile) serving the same file,
//                both read by curl on loopback — goal ≥ 0.8× nginx's throughput
//
//   npm run build && node bench/generate-api.mjs
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serveWithNginx } from "./nginx.mjs";
import { tgz } from "./tgz.mjs";
import { loadConfig } from "../dist/server/config.js";
import { openRuntime } from "../dist/server/serve.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR = path.join(ROOT, ".cache/mirror");
const KILN = path.join(ROOT, "bin/kiln.js");
const work = mkdtempSync(path.join(tmpdir(), "kiln-bench-gen-"));
const yaml = path.join(work, "kiln.yaml");
writeFileSync(yaml, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "file://${MIRROR}/", suite: bookworm, components: [main], keyring: none}\n`);

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, out }) : reject(new Error(`${cmd} failed: ${err}`))));
  });
}

// A data directory whose deb store already holds the packages (downloaded once, shared).
const seed = path.join(work, "seed");
await run(process.execPath, [KILN, "build", "-q", "--config", yaml, "--os", "Debian 12 x86_64", "--oci", path.join(work, "seed-oci")], { KILN_DATA_DIR: seed });
function freshDataDir(name) {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, "cache"), { recursive: true });
  cpSync(path.join(seed, "cache/debs"), path.join(dir, "cache/debs"), { recursive: true });
  return dir;
}

/**
 * curl, asynchronously: Kiln's server runs in this process, so a synchronous child would wait
 * on itself. Returns the download throughput in MB/s.
 */
async function curl(url, headers = [], extra = []) {
  const { out } = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", ...headers.flatMap((h) => ["-H", h]), ...extra, url]);
  const [code, size, time] = out.split(" ");
  if (!code.startsWith("2")) throw new Error(`curl ${url}: ${code}`);
  return Number(size) / Number(time) / 1e6;
}

// ---- kiln build of minbase to a .tar.gz docker-archive, fresh layer cache -------------------
const cliDir = freshDataDir("cli");
const cli = await run(process.execPath, [KILN, "build", "-q", "--config", yaml, "--os", "Debian 12 x86_64", "--docker-archive", path.join(work, "cli.tar.gz"), "--tag", "hello:1.0"], { KILN_DATA_DIR: cliDir });

// ---- the same through the API ----------------------------------------------------------------
const apiDir = freshDataDir("api");
const rt = await openRuntime(loadConfig({ KILN_DATA_DIR: apiDir, KILN_CONFIG: yaml, KILN_ADMIN_PASSWORD: "bench-root-pw", KILN_BUILD_CONCURRENCY: "2" }), { logger: false, announce: () => {} });
await rt.app.listen({ host: "127.0.0.1", port: 0 });
const port = rt.app.server.address().port;
const auth = `Basic ${Buffer.from("root:bench-root-pw").toString("base64")}`;
async function api(method, url, body, raw) {
  const res = await fetch(`http://127.0.0.1:${port}/api/${url}`, {
    method,
    headers: { authorization: auth, accept: "application/json", ...(raw ? { "content-type": "application/octet-stream" } : body ? { "content-type": "application/json" } : {}) },
    body: raw ?? (body ? JSON.stringify(body) : undefined),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
async function bundle(name, files) {
  const b = await api("POST", "users/root/mysoftware", { name, version: "1.0" });
  const a = await api("POST", `${b.uri}/artifacts`, { name: "app.tar.gz", extract: true, installLocation: `/opt/${name}` });
  await api("POST", `${a.uri}/bin/app.tar.gz`, undefined, await tgz(files));
  const t = await api("POST", `${b.uri}/templates`, { distribution: { uri: "distributions/1" } });
  return { b, a, t };
}
async function generate(t) {
  const t0 = performance.now();
  const img = await api("POST", `${t.uri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/sh"]' });
  for (;;) {
    const s = await api("GET", img.statusUri);
    if (s.complete || s.error || s.cancelled) return { seconds: (performance.now() - t0) / 1000, status: s, img };
    await new Promise((r) => setTimeout(r, 25));
  }
}
const hello = await bundle("hello", [["bin/hello", "#!/bin/sh\necho hello\n", 0o755]]);
const first = await generate(hello.t);
if (!first.status.complete) throw new Error(`generation failed: ${first.status.errorMessage}`);

// ---- regeneration after a bundle change -------------------------------------------------------
await api("POST", `${hello.a.uri}/bin/app.tar.gz`, undefined, await tgz([["bin/hello", "#!/bin/sh\necho hello again\n", 0o755]]));
const regen = await generate(hello.t);
if (!regen.status.complete) throw new Error(`regeneration failed: ${regen.status.errorMessage}`);

// ---- four generations at once -----------------------------------------------------------------
const four = await Promise.all([1, 2, 3, 4].map(async (i) => bundle(`app${i}`, [[`bin/app${i}`, `#!/bin/sh\necho ${i}\n`, 0o755]])));
const t4 = performance.now();
const results = await Promise.all(four.map((x) => generate(x.t)));
const fourSeconds = (performance.now() - t4) / 1000;
const fourOk = results.filter((r) => r.status.complete).length;

// ---- 1 GiB download: Kiln against nginx ------------------------------------------------------
const big = await api("POST", "users/root/mysoftware", { name: "big", version: "1.0" });
const bigArt = await api("POST", `${big.uri}/artifacts`, { name: "big.bin", installLocation: "/opt/big" });
// Random bytes do not compress: the image file is a little over 1 GiB.
const bigFile = path.join(work, "big.bin");
execFileSync("head", ["-c", String(1024 * 1024 * 1024), "/dev/urandom"], { stdio: ["ignore", (await import("node:fs")).openSync(bigFile, "w"), "inherit"] });
const fs = await import("node:fs");
// curl (a separate process) reads the file: this process serves the upload.
await curl(`http://127.0.0.1:${port}/api/${bigArt.uri}/bin/big.bin`, [`Authorization: ${auth}`, "Content-Type: application/octet-stream"], ["-X", "POST", "-T", bigFile]);
rmSync(bigFile);
const bigT = await api("POST", `${big.uri}/templates`, { distribution: { uri: "distributions/1" } });
const bigGen = await generate(bigT);
if (!bigGen.status.complete) throw new Error(`1 GiB generation failed: ${bigGen.status.errorMessage}`);
const bigImg = await api("GET", bigGen.img.uri);
const blobFile = rt.deps.blobs.path(`sha256:${bigImg.sha256sum}`);
const { url: nginxUrl, process: nginx } = await serveWithNginx(work, blobFile, bigImg.fileName);

const kilnUrl = `http://127.0.0.1:${port}/api/${bigGen.img.uri}/downloads/${bigImg.fileName}`;
await curl(nginxUrl);
await curl(kilnUrl, [`Authorization: ${auth}`]);
const kilnMBs = [];
const nginxMBs = [];
for (let i = 0; i < 3; i++) {
  nginxMBs.push(await curl(nginxUrl));
  kilnMBs.push(await curl(kilnUrl, [`Authorization: ${auth}`]));
}
nginx.kill();
await rt.close();
rmSync(work, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`kiln build (minbase, fresh layer cache, .tar.gz)      ${cli.seconds.toFixed(2)} s`);
console.log(`API generation (minbase + bundle, fresh layer cache)  ${first.seconds.toFixed(2)} s   ratio ${(first.seconds / cli.seconds).toFixed(2)} (goal ≤ 1.20)`);
console.log(`regeneration after a bundle change                    ${regen.seconds.toFixed(2)} s   (goal < 2 s)`);
console.log(`four generations at once                              ${fourSeconds.toFixed(2)} s   ${fourOk}/4 complete (goal 4/4)`);
console.log(`download ${(bigImg.fileSize / 2 ** 30).toFixed(2)} GiB: kiln ${median(kilnMBs).toFixed(0)} MB/s (${kilnMBs.map((x) => x.toFixed(0)).join(", ")}), nginx ${median(nginxMBs).toFixed(0)} MB/s (${nginxMBs.map((x) => x.toFixed(0)).join(", ")})   ratio ${(median(kilnMBs) / median(nginxMBs)).toFixed(2)} (goal ≥ 0.80)`);
