#!/usr/bin/env node
// Benchmark (issue "Kiln on many machines"): real processes — a fresh PostgreSQL database on the
// local server, Debian's docker-registry on loopback as the blob store, one `api` and one or two
// `worker`s (bin/kiln.js serve) — in one run:
//   throughput  N generations (each its own bundle) with 1 worker, then with 2 (fresh data
//               directories each time, so each worker builds its base layer once); on this
//               2-core machine the two workers share the same cores: expect about 1×
//   resumption  a worker SIGKILLed in the middle of a generation: time until the other worker
//               resumes its job — goal under lease + 5 s (KILN_JOB_LEASE=10s here)
//   cancel      a generation running on a worker, cancelled through the API: time until the job
//               is cancelled in the database — goal under 2 s
//   download    an image file of about 256 MiB through the API from the registry store, against
//               nginx (sendfile) serving the same file — goal ≥ 0.5: the first download is asked
//               for as soon as the job reports complete (the api process fetches the file into
//               its blob cache when it hears of the completion; a download that comes meanwhile
//               follows that fetch), later ones read the cached copy
//
//   npm run build && node bench/cluster.mjs [N] [--only download]
//   (BENCH_PG=postgres://postgres@127.0.0.1:5433 for another PostgreSQL server than the local one)
import { execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { serveWithNginx } from "./nginx.mjs";

const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : undefined;
if (only !== undefined && only !== "download") throw new Error(`--only: "${only}" is not a part that runs alone (download)`);
const N = Number(args[0] ?? 4);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const KILN = path.join(ROOT, "bin/kiln.js");
const MIRROR = path.join(ROOT, ".cache/mirror");
const work = mkdtempSync(path.join(tmpdir(), "kiln-bench-cluster-"));
const yaml = path.join(work, "kiln.yaml");
writeFileSync(yaml, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "file://${MIRROR}/", suite: bookworm, components: [main], keyring: none}\n`);
const ROOT_PW = "bench-root-pw";
const LEASE_S = 10;
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- PostgreSQL: a fresh database --------------------------------------------------------------
const PG = process.env.BENCH_PG ?? "postgres://postgres@127.0.0.1:5432";
const dbName = `kiln_bench_${randomBytes(4).toString("hex")}`;
async function admin(sql) {
  const c = new pg.Client({ connectionString: `${PG}/postgres` });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}
await admin(`CREATE DATABASE ${dbName}`);
const dbUrl = `${PG}/${dbName}`;
const db = new pg.Client({ connectionString: dbUrl });

// ---- the registry blob store ------------------------------------------------------------------
const regData = path.join(work, "registry");
writeFileSync(
  path.join(work, "registry.yml"),
  `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${regData}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: ${randomUUID()}\n`,
);
const registry = spawn("/usr/bin/docker-registry", ["serve", path.join(work, "registry.yml")], { stdio: ["ignore", "pipe", "pipe"] });
children.push(registry);
const regPort = await new Promise((resolve, reject) => {
  let log = "";
  const onData = (d) => {
    log += d;
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
    if (m) resolve(Number(m[1]));
  };
  registry.stdout.on("data", onData);
  registry.stderr.on("data", onData);
  registry.once("exit", (code) => reject(new Error(`docker-registry exited with ${code}: ${log}`)));
});

// ---- kiln processes ----------------------------------------------------------------------------
let generation = 0;
function startKiln(role, name) {
  const dataDir = path.join(work, `${name}-${++generation}`);
  const child = spawn(process.execPath, [KILN, "serve", "--role", role], {
    env: {
      ...process.env,
      KILN_PORT: "0",
      KILN_DATA_DIR: dataDir,
      KILN_CONFIG: yaml,
      KILN_ADMIN_PASSWORD: ROOT_PW,
      KILN_DATABASE_URL: dbUrl,
      KILN_BLOB_STORE: `oci+http://127.0.0.1:${regPort}/kiln`,
      KILN_JOB_LEASE: `${LEASE_S}s`,
      KILN_SECRET_KEY: "bench-shared-secret",
      KILN_BUILD_CONCURRENCY: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`kiln serve --role ${role} exited with ${code}: ${out}`)));
    const poll = setInterval(async () => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        child.removeAllListeners("exit");
        resolve({ child, pid: child.pid, url: `http://127.0.0.1:${m[1]}`, dataDir });
      }
    }, 50);
  });
}
const stop = (p) => new Promise((resolve) => (p.child.exitCode !== null ? resolve() : (p.child.once("exit", resolve), p.child.kill("SIGTERM"))));

const apiProc = await startKiln("api", "api");
await db.connect();
const auth = `Basic ${Buffer.from(`root:${ROOT_PW}`).toString("base64")}`;
async function api(method, url, body, headers = {}) {
  const res = await fetch(`${apiProc.url}/api/${url}`, {
    method,
    headers: { authorization: auth, accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
async function template(name, bytes) {
  const b = await api("POST", "users/root/mysoftware", { name, version: "1.0" });
  const a = await api("POST", `${b.uri}/artifacts`, { name: "data.bin", installLocation: `/opt/${name}` });
  await api("POST", `${a.uri}/bin/data.bin`, bytes, { "content-type": "application/octet-stream" });
  return api("POST", `${b.uri}/templates`, { distribution: { uri: "distributions/1" } });
}
const generate = async (t) => api("POST", `${t.uri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/true"]' });
async function waitDone(img) {
  for (;;) {
    const s = await api("GET", img.statusUri);
    if (s.complete) return;
    if (s.error || s.cancelled) throw new Error(`generation failed: ${s.errorMessage}`);
    await sleep(200);
  }
}
const jobOf = async (img) => (await db.query(`select j.state, j.attempts, j.lease_owner from jobs j join images i on i.job_id = j.id where i.id = $1`, [Number(img.uri.split("/").pop())])).rows[0];

// ---- throughput: 1 worker, then 2 -------------------------------------------------------------
async function throughput(workers) {
  const templates = [];
  for (let i = 0; i < N; i++) templates.push(await template(`w${workers}app${i}`, randomBytes(1 << 20)));
  const procs = await Promise.all(Array.from({ length: workers }, (_, i) => startKiln("worker", `worker${i}`)));
  const t0 = performance.now();
  const imgs = await Promise.all(templates.map(generate));
  await Promise.all(imgs.map(waitDone));
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(procs.map(stop));
  return { seconds, perMinute: (N * 60) / seconds };
}
const one = only ? undefined : await throughput(1);
const two = only ? undefined : await throughput(2);

// ---- resumption after a worker's death ----------------------------------------------------------
const w = await Promise.all(only ? [startKiln("worker", "rw0")] : [startKiln("worker", "rw0"), startKiln("worker", "rw1")]);
let victim;
let resumedAfter;
if (!only) {
const rt = await template("resume", randomBytes(1 << 20));
const rimg = await generate(rt);
for (;;) {
  const s = await api("GET", rimg.statusUri);
  if (/unpacking|configuring|writing/.test(s.message ?? "")) break;
  await sleep(100);
}
const holder = (await jobOf(rimg)).lease_owner;
victim = w.find((p) => holder.split(":")[1] === String(p.pid));
const killedAt = performance.now();
victim.child.kill("SIGKILL");
for (;;) {
  if ((await jobOf(rimg)).attempts >= 2) break;
  await sleep(100);
}
resumedAfter = (performance.now() - killedAt) / 1000;
await waitDone(rimg);
}

// ---- a cancel from the API reaching the job on its worker ----------------------------------------
// The job's state read straight from the database every 20 ms, from the DELETE's answer on.
const cimg = await generate(await template("cancel", randomBytes(64 << 20)));
for (;;) {
  const s = await api("GET", cimg.statusUri);
  if (/unpacking|configuring|writing/.test(s.message ?? "")) break;
  if (s.complete || s.error) throw new Error("the generation to cancel ended first");
  await sleep(50);
}
const cancelAt = performance.now();
await api("DELETE", cimg.statusUri);
while ((await jobOf(cimg)).state !== "cancelled") await sleep(20);
const cancelledAfter = (performance.now() - cancelAt) / 1000;

// ---- download through the API from the registry, against nginx ----------------------------------
const big = await template("big", randomBytes(256 << 20));
const bimg = await generate(big);
function curl(url, headers = []) {
  const out = execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", ...headers.flatMap((h) => ["-H", h]), url]).toString();
  const [code, size, time] = out.split(" ");
  if (!code.startsWith("2")) throw new Error(`curl ${url}: ${code}`);
  return Number(size) / Number(time) / 1e6;
}
await waitDone(bimg);
const info = await api("GET", bimg.uri);
const hex = info.sha256sum;
const kilnUrl = `${apiProc.url}/api/${bimg.uri}/downloads/${info.fileName}`;
// As a user's script would: the download as soon as the job says complete (the api process may
// still be fetching the file into its cache: the download then follows that fetch).
const firstMBs = curl(kilnUrl, [`Authorization: ${auth}`]);
// Another image of the same size: how long after its job completes the api process has its file
// (from then on a download is a cached one).
const other = await generate(await template("big2", randomBytes(256 << 20)));
await waitDone(other);
const completedAt = performance.now();
const otherHex = (await api("GET", other.uri)).sha256sum;
while (!existsSync(path.join(apiProc.dataDir, "cache/blob-store/sha256", otherHex.slice(0, 2), otherHex))) await sleep(20);
const prefetchedAfter = (performance.now() - completedAt) / 1000;
await Promise.all(w.filter((p) => p !== victim).map(stop));
const { url: nginxUrl, process: nginx } = await serveWithNginx(work, path.join(regData, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"), info.fileName);
children.push(nginx);
curl(nginxUrl);
// The registry alone (what any Kiln download through it can reach at most).
const registryUrl = `http://127.0.0.1:${regPort}/v2/kiln/blobs/blobs/sha256:${hex}`;
const kilnMBs = [];
const nginxMBs = [];
const registryMBs = [];
for (let i = 0; i < 3; i++) {
  nginxMBs.push(curl(nginxUrl));
  kilnMBs.push(curl(kilnUrl, [`Authorization: ${auth}`]));
  registryMBs.push(curl(registryUrl));
}

nginx.kill();
await stop(apiProc);
await db.end();
registry.kill();
await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
rmSync(work, { recursive: true, force: true });


const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (!only) {
  console.log(`throughput, ${N} generations, 1 worker    ${one.seconds.toFixed(1)} s   ${one.perMinute.toFixed(2)} generations/min`);
  console.log(`throughput, ${N} generations, 2 workers   ${two.seconds.toFixed(1)} s   ${two.perMinute.toFixed(2)} generations/min   ratio ${(two.perMinute / one.perMinute).toFixed(2)} (2 cores shared)`);
  console.log(`worker SIGKILLed mid-generation: resumed by the other after ${resumedAfter.toFixed(1)} s (lease ${LEASE_S} s; goal < ${LEASE_S + 5} s)`);
}
console.log(`a cancel from the API stopped the generation on its worker after ${cancelledAfter.toFixed(2)} s (goal < 2 s)`);
console.log(`first download ${(info.fileSize / 2 ** 20).toFixed(0)} MiB through the API, asked for as soon as the job reported complete: ${firstMBs.toFixed(0)} MB/s   ratio ${(firstMBs / median(nginxMBs)).toFixed(2)}`);
console.log(`  a generated image's file in the api process's cache ${prefetchedAfter.toFixed(2)} s after this script saw its job complete (it polls the status every 0.2 s)`);
console.log(`download ${(info.fileSize / 2 ** 20).toFixed(0)} MiB through the API from the registry store: ${median(kilnMBs).toFixed(0)} MB/s (${kilnMBs.map((x) => x.toFixed(0)).join(", ")}), nginx ${median(nginxMBs).toFixed(0)} MB/s (${nginxMBs.map((x) => x.toFixed(0)).join(", ")})   ratio ${(median(kilnMBs) / median(nginxMBs)).toFixed(2)} (goal ≥ 0.50)`);
console.log(`  the registry alone serving the same blob: ${median(registryMBs).toFixed(0)} MB/s (${registryMBs.map((x) => x.toFixed(0)).join(", ")}); Kiln through it / the registry alone ${(median(kilnMBs) / median(registryMBs)).toFixed(2)}`);
