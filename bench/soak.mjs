#!/usr/bin/env node
// Soak (issue 10, "never down, never silent"): a real `kiln serve` process on a private
// PostgreSQL server, fed mixed API traffic at a fixed rate — uploads, generations, cancels,
// downloads, publications to a local docker-registry, deletions, reads — while faults are
// injected: the registry restarted, the Debian mirror stalled, the database restarted. At the
// end: crashes (the process exiting), stuck jobs (not final once traffic stopped and the queue
// drained), leaked temporary files, RSS over time, and every job's final state.
//
//   npm run build && node bench/soak.mjs --minutes 30        (as root: PostgreSQL runs as `postgres`)
//
// Options: --minutes N (30), --interval-ms N (one operation started every N ms: 3000),
// --drain-minutes N (how long jobs may take to end once traffic stops: 10).
//
// The private PostgreSQL server is a fresh cluster in a temp dir (as test/helpers/postgres-server.ts
// makes one): the shared server on 5432 is never touched. The helpers of test/ are TypeScript and
// this script runs under plain node, hence its own small versions of them.
import { execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { chownSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { tgz } from "./tgz.mjs";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR_DIR = path.join(ROOT, ".cache/mirror");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MINUTES = arg("minutes", 30);
const INTERVAL_MS = arg("interval-ms", 3000);
const DRAIN_MINUTES = arg("drain-minutes", 10);
const DURATION_MS = MINUTES * 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(path.join(tmpdir(), "kiln-soak-"));
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

async function freePort() {
  const srv = createNetServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

// ---- a private PostgreSQL server -------------------------------------------------------------

const PG_BIN = "/usr/lib/postgresql/15/bin";
async function startPostgres() {
  // Beside the work dir, not in it: the work dir is root's (0700), and PostgreSQL runs as postgres.
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-soak-pg-"));
  const asOwner = (program, args) => (process.getuid?.() === 0 ? run("runuser", ["-u", "postgres", "--", path.join(PG_BIN, program), ...args]) : run(path.join(PG_BIN, program), args));
  if (process.getuid?.() === 0) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, "data");
  await asOwner("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const port = await freePort();
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c max_connections=50`;
  const pgServer = {
    url: (db = "postgres") => `postgres://postgres@127.0.0.1:${port}/${db}`,
    start: () => asOwner("pg_ctl", ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", "-t", "60", "start"]),
    stop: (mode = "fast") => asOwner("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]),
    destroy: async () => {
      await pgServer.stop("immediate").catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await pgServer.start();
  const client = new pg.Client({ connectionString: pgServer.url() });
  await client.connect();
  await client.query("CREATE DATABASE kiln");
  await client.end();
  return pgServer;
}

// ---- docker-registry on a fixed port (restarted on the same one) -----------------------------

async function startRegistry() {
  const port = await freePort();
  const dir = path.join(work, "registry");
  mkdirSync(dir);
  const config = path.join(dir, "config.yml");
  writeFileSync(
    config,
    ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true", "storage:", "  filesystem:", `    rootdirectory: ${path.join(dir, "data")}`, "  delete:", "    enabled: true", "http:", `  addr: 127.0.0.1:${port}`, `  secret: ${randomUUID()}`, ""].join("\n"),
  );
  let child;
  const registry = {
    url: `http://127.0.0.1:${port}`,
    async start() {
      child = spawn("/usr/bin/docker-registry", ["serve", config], { stdio: "ignore" });
      for (;;) {
        const ok = await fetch(`${registry.url}/v2/`).then((r) => r.ok, () => false);
        if (ok) return;
        if (child.exitCode !== null) throw new Error("docker-registry exited");
        await sleep(100);
      }
    },
    async stop() {
      const exited = new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      child.kill("SIGKILL");
      await exited;
    },
  };
  await registry.start();
  return registry;
}

// ---- the Debian mirror over HTTP, which can be stalled ---------------------------------------

async function startMirror() {
  let stalled = false;
  const waiting = new Set();
  const server = createServer(async (req, res) => {
    if (stalled) await new Promise((r) => waiting.add(r));
    const file = path.join(MIRROR_DIR, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!file.startsWith(MIRROR_DIR) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-length": statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    stall() {
      stalled = true;
    },
    release() {
      stalled = false;
      for (const go of waiting) go();
      waiting.clear();
    },
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))),
  };
}

// ---- Kiln ------------------------------------------------------------------------------------

const ADMIN = "soak-root-password";
const kiln = { child: undefined, port: 0, crashes: [], rss: [], output: "" };
const serverErrors = new Map();

async function startKiln(env) {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve"], { cwd: work, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  kiln.child = child;
  let out = "";
  let partial = "";
  const keep = (d) => {
    out += d;
    // The server's errors (JSON lines at level 50), counted by message: what the 5xx answers were.
    const lines = (partial + d).split("\n");
    partial = lines.pop();
    for (const line of lines) {
      if (!line.includes('"level":50')) continue;
      try {
        const entry = JSON.parse(line);
        const key = `${entry.msg}: ${entry.err?.message ?? ""}`.slice(0, 300);
        serverErrors.set(key, (serverErrors.get(key) ?? 0) + 1);
      } catch {
        // Not JSON: counted with the crash output instead.
      }
    }
    // The last lines are what a crash report needs; the rest would grow for ever.
    if (out.length > 1 << 20) out = out.slice(-(256 << 10));
    kiln.output = out;
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.on("exit", (code, signal) => {
    if (kiln.stopping) return;
    kiln.crashes.push({ at: new Date().toISOString(), code, signal, tail: out.slice(-4000) });
    log(`CRASH: kiln exited with ${code ?? signal}; restarting`);
    void startKiln(env);
  });
  for (;;) {
    const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) {
      kiln.port = Number(m[1]);
      return;
    }
    if (child.exitCode !== null) throw new Error(`kiln serve did not start:\n${out}`);
    await sleep(50);
  }
}

function sampleRss() {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${kiln.child.pid}/status`, "utf8"));
    if (m) kiln.rss.push({ t: Date.now(), mb: Number(m[1]) / 1024 });
  } catch {
    // Between a crash and the restart.
  }
}

const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const AUTH = { soak: basic("soak", "soak-password"), root: basic("root", ADMIN) };
const statuses = new Map();
function count(op, status) {
  const key = `${op} ${status}`;
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
}

async function api(op, method, url, { body, type = "application/json", user = "soak", raw = false, timeoutMs = 120_000 } = {}) {
  const headers = { authorization: AUTH[user], accept: "application/json" };
  if (body !== undefined) headers["content-type"] = type;
  let res;
  try {
    res = await fetch(`http://127.0.0.1:${kiln.port}/api/${url}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    count(op, `failed (${err.cause?.code ?? err.name})`);
    return { status: 0, json: {} };
  }
  count(op, res.status);
  if (raw) {
    let bytes = 0;
    for await (const c of res.body) bytes += c.length;
    return { status: res.status, bytes };
  }
  const text = await res.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

// ---- traffic ---------------------------------------------------------------------------------

const jobs = []; // { kind, statusUri, imageUri?, started }
const bundles = []; // { uri, templateUri }
const completeImages = []; // image uris, oldest first
const accounts = [];
let inFlight = 0;
let opsStarted = 0;
let skipped = 0;

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

async function pendingGenerations() {
  return jobs.filter((j) => j.kind === "generate" && !j.final).length;
}

async function upload() {
  const b = pick(bundles);
  const a = await api("upload", "POST", `${b.uri}/artifacts`, { body: { name: `data-${randomUUID().slice(0, 8)}.bin`, installLocation: "/opt/soak/data" } });
  if (a.status !== 201) return;
  const size = (256 << 10) + Math.floor(Math.random() * (2 << 20));
  await api("upload", "POST", `${a.json.uri}/bin/data.bin`, { body: randomBytes(size), type: "application/octet-stream" });
  // A bundle keeps a few files: the oldest go, so that images stay small.
  const list = await api("upload", "GET", `${b.uri}/artifacts`);
  const items = (list.json.softwareArtifacts ?? []).filter((x) => /^data-/.test(x.name ?? ""));
  for (const old of items.slice(0, Math.max(0, items.length - 3))) await api("upload", "DELETE", old.uri);
}

async function generate(cancelAfterMs) {
  if ((await pendingGenerations()) >= 3) {
    skipped++;
    return;
  }
  const b = pick(bundles);
  const r = await api("generate", "POST", `${b.templateUri}/images`, { body: { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/soak/bin/hello"]' } });
  if (r.status !== 201) return;
  const job = { kind: "generate", statusUri: r.json.statusUri, imageUri: r.json.uri, started: Date.now() };
  jobs.push(job);
  if (cancelAfterMs !== undefined) {
    await sleep(cancelAfterMs);
    job.cancelAsked = true;
    await api("cancel", "DELETE", job.statusUri);
  }
}

async function download() {
  const uri = pick(completeImages);
  if (!uri) return;
  const img = await api("download", "GET", uri);
  if (img.status !== 200 || !img.json.downloadUri) return;
  await api("download", "GET", img.json.downloadUri, { raw: true });
}

let published = 0;
async function publish() {
  const uri = pick(completeImages);
  if (!uri) return;
  const account = pick(accounts);
  const res = await api(
    "publish",
    "POST",
    `${uri}/pimages`,
    {
      type: "application/xml",
      body: `<ns0:publishImage xmlns:ns0="http://www.usharesoft.com/uforge" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns0:PublishImageDocker"><credAccount xsi:type="ns0:CredAccountDocker"><uri>${account}</uri></credAccount><namespace>soak</namespace><repositoryName>r${published % 5}</repositoryName><tagName>t${++published}</tagName></ns0:publishImage>`,
    },
  );
  if (res.status === 201) jobs.push({ kind: "publish", statusUri: res.json.statusUri, started: Date.now() });
}

async function deleteOldImage() {
  if (completeImages.length <= 6) return;
  const uri = completeImages.shift();
  await api("delete", "DELETE", uri);
}

async function read() {
  const b = pick(bundles);
  await api("read", "GET", b.templateUri);
  await api("read", "GET", "users/soak/mysoftware");
  await api("read", "GET", "status");
}

/** Polls the status of every job not yet final. */
async function pollJobs() {
  for (const j of jobs.filter((x) => !x.final)) {
    const s = await api("poll", "GET", j.statusUri);
    if (s.status === 404 && j.kind === "generate") {
      // Its image was deleted (only complete ones are): final.
      j.final = "deleted";
      continue;
    }
    if (s.status !== 200) continue;
    if (s.json.complete) j.final = "complete";
    else if (s.json.cancelled) j.final = "cancelled";
    else if (s.json.error) j.final = "error";
    if (j.final) {
      j.ended = Date.now();
      j.message = s.json.errorMessage;
      if (j.final === "complete" && j.kind === "generate") completeImages.push(j.imageUri);
    }
  }
}

const OPS = [
  [20, upload],
  [20, () => generate()],
  [10, () => generate(Math.floor(Math.random() * 20_000))],
  [15, download],
  [12, publish],
  [8, deleteOldImage],
  [15, read],
];

function nextOp() {
  let r = Math.random() * OPS.reduce((n, [w]) => n + w, 0);
  for (const [w, fn] of OPS) if ((r -= w) < 0) return fn;
  return read;
}

// ---- faults ----------------------------------------------------------------------------------

const faults = [];
/** What to stop however the run ends (a private PostgreSQL server must not outlive it). */
const cleanup = [];
async function fault(name, fn) {
  const t0 = Date.now();
  log(`fault: ${name}`);
  try {
    await fn();
    faults.push({ name, seconds: (Date.now() - t0) / 1000 });
  } catch (err) {
    faults.push({ name, error: String(err) });
  }
}

// ---- the run ---------------------------------------------------------------------------------

async function main() {
  log(`soak: ${MINUTES} min, one operation every ${INTERVAL_MS} ms, work dir ${work}`);
  const db = await startPostgres();
  cleanup.push(() => db.destroy());
  const registry = await startRegistry();
  cleanup.push(() => registry.stop());
  const mirror = await startMirror();
  cleanup.push(() => mirror.close());
  const yaml = path.join(work, "kiln.yaml");
  writeFileSync(yaml, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${mirror.url}", suite: bookworm, components: [main], keyring: none}\n`);
  const dataDir = path.join(work, "data");
  await startKiln({ KILN_DATA_DIR: dataDir, KILN_CONFIG: yaml, KILN_PORT: "0", KILN_ADMIN_PASSWORD: ADMIN, KILN_DATABASE_URL: db.url("kiln"), KILN_PUBLISH_ALLOW: "127.0.0.1", KILN_BUILD_CONCURRENCY: "2" });
  const rssTimer = setInterval(sampleRss, 5000);
  sampleRss();

  await api("setup", "POST", "users", { user: "root", body: { loginName: "soak", email: "soak@example.com", password: "soak-password" } });
  const hello = await tgz([["bin/hello", "#!/bin/sh\necho hello\n", 0o755]]);
  for (let i = 0; i < 3; i++) {
    const b = await api("setup", "POST", "users/soak/mysoftware", { body: { name: `soak${i}`, version: "1.0" } });
    const a = await api("setup", "POST", `${b.json.uri}/artifacts`, { body: { name: "hello.tar.gz", extract: true, installLocation: "/opt/soak" } });
    await api("setup", "POST", `${a.json.uri}/bin/hello.tar.gz`, { body: hello, type: "application/octet-stream" });
    const t = await api("setup", "POST", `${b.json.uri}/templates`, { body: { distribution: { name: "Debian", version: "12", arch: "x86_64" } } });
    bundles.push({ uri: b.json.uri, templateUri: t.json.uri });
  }
  for (let i = 0; i < 2; i++) {
    const acct = await api("setup", "POST", "users/soak/accounts", { body: { xsiType: "CredAccountDocker", name: `registry ${i}`, endpointUrl: registry.url, login: "soak", password: "unused" } });
    accounts.push(acct.json.uri);
  }
  if (bundles.some((b) => !b.templateUri) || accounts.some((a) => !a)) throw new Error(`setup failed: ${JSON.stringify([...statuses])}`);

  // Faults at fixed points of the run (fractions of it), each lasting a little while.
  const schedule = [
    [0.15, "registry restart", async () => (await registry.stop(), await sleep(5000), await registry.start())],
    [0.3, "mirror stall (45 s)", async () => (mirror.stall(), await sleep(45_000), mirror.release())],
    [0.45, "database restart", async () => (await db.stop("fast"), await sleep(8000), await db.start())],
    [0.6, "registry restart", async () => (await registry.stop(), await sleep(5000), await registry.start())],
    [0.72, "database crash and restart", async () => (await db.stop("immediate"), await sleep(5000), await db.start())],
    [0.85, "mirror stall (45 s)", async () => (mirror.stall(), await sleep(45_000), mirror.release())],
  ];
  const t0 = Date.now();
  const faultRuns = schedule.map(([at, name, fn]) => sleep(at * DURATION_MS).then(() => fault(name, fn)));
  const pollTimer = setInterval(() => void pollJobs().catch(() => undefined), 2000);
  const running = new Set();
  let lastReport = t0;
  while (Date.now() - t0 < DURATION_MS) {
    const op = nextOp();
    opsStarted++;
    inFlight++;
    const p = op()
      .catch((err) => count("harness", `threw ${err.message}`))
      .finally(() => {
        inFlight--;
        running.delete(p);
      });
    running.add(p);
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now();
      const rss = kiln.rss.at(-1)?.mb.toFixed(0);
      log(`${((Date.now() - t0) / 60_000).toFixed(1)} min: ${opsStarted} ops, ${inFlight} in flight, ${jobs.length} jobs (${jobs.filter((j) => !j.final).length} open), RSS ${rss} MB, crashes ${kiln.crashes.length}`);
    }
    await sleep(INTERVAL_MS);
  }
  log("traffic stopped; waiting for the operations in flight, the faults and every job");
  await Promise.all(running);
  await Promise.all(faultRuns);
  const drainStart = Date.now();
  while (jobs.some((j) => !j.final) && Date.now() - drainStart < DRAIN_MINUTES * 60_000) {
    await pollJobs();
    await sleep(2000);
  }
  clearInterval(pollTimer);
  await pollJobs();
  const drainSeconds = (Date.now() - drainStart) / 1000;
  // Once the work is over, temporary space must be empty.
  await sleep(3000);
  const leaked = [path.join(dataDir, "tmp", "jobs"), path.join(dataDir, "blobs", "tmp")].flatMap((d) => (existsSync(d) ? readdirSync(d).map((n) => path.join(path.relative(dataDir, d), n)) : []));
  sampleRss();
  clearInterval(rssTimer);
  kiln.stopping = true;
  const exit = await new Promise((r) => {
    kiln.child.once("exit", (code, signal) => r(code ?? signal));
    kiln.child.kill("SIGTERM");
  });
  await registry.stop();
  await db.destroy();
  await mirror.close();

  // ---- summary -----------------------------------------------------------------------------
  const byState = {};
  for (const j of jobs) byState[`${j.kind} ${j.final ?? "NOT FINAL"}`] = (byState[`${j.kind} ${j.final ?? "NOT FINAL"}`] ?? 0) + 1;
  const errors = {};
  for (const j of jobs.filter((x) => x.final === "error")) errors[j.message ?? "?"] = (errors[j.message ?? "?"] ?? 0) + 1;
  const rss = kiln.rss.map((s) => s.mb);
  const quarter = Math.max(1, Math.floor(rss.length / 4));
  const firstQ = Math.max(...rss.slice(0, quarter));
  const lastQ = Math.max(...rss.slice(-quarter));
  const genTimes = jobs.filter((j) => j.kind === "generate" && j.final === "complete").map((j) => (j.ended - j.started) / 1000).sort((a, b) => a - b);
  const summary = {
    minutes: MINUTES,
    intervalMs: INTERVAL_MS,
    operations: opsStarted,
    generationsSkippedQueueFull: skipped,
    crashes: kiln.crashes.length,
    stuckJobs: jobs.filter((j) => !j.final).length,
    leakedTempFiles: leaked.length,
    exitOnSigterm: exit,
    jobs: byState,
    jobErrors: errors,
    generationSeconds: genTimes.length ? { median: genTimes[Math.floor(genTimes.length / 2)], max: genTimes.at(-1) } : undefined,
    rssMB: { start: rss[0]?.toFixed(0), maxFirstQuarter: firstQ.toFixed(0), maxLastQuarter: lastQ.toFixed(0), max: Math.max(...rss).toFixed(0), end: rss.at(-1)?.toFixed(0) },
    faults,
    drainSeconds,
    http: Object.fromEntries([...statuses].sort()),
    serverErrors: Object.fromEntries(serverErrors),
  };
  console.log(JSON.stringify(summary, null, 2));
  for (const c of kiln.crashes) console.log(`crash at ${c.at}: ${c.code ?? c.signal}\n${c.tail}`);
  if (leaked.length) console.log("leaked:", leaked);
  const ok = summary.crashes === 0 && summary.stuckJobs === 0 && summary.leakedTempFiles === 0 && exit === 0 && lastQ < Math.max(firstQ * 1.5, firstQ + 150);
  console.log(ok ? "SOAK PASSED: 0 crashes, 0 stuck jobs, 0 leaked temp files, RSS bounded, every job final" : "SOAK FAILED");
  rmSync(work, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

async function abort(err) {
  console.error(err);
  kiln.stopping = true;
  kiln.child?.kill("SIGKILL");
  for (const c of cleanup) await Promise.resolve().then(c).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  process.exit(2);
}
process.once("SIGINT", () => void abort(new Error("interrupted")));
process.once("SIGTERM", () => void abort(new Error("terminated")));
main().catch(abort);
