// The console, measured (issue 13): `npm run build && node bench/console.mjs`.
//
// 1. First render of the software library with 500 bundles: Chromium (Debian's, headless, via
//    playwright-core) opens /library signed in; the time is from the start of the navigation to
//    the 500th bundle link in the page (performance.now() in the page), median of 5 loads.
// 2. Server CPU while 50 browsers-worth of watchers follow running generations: Kiln runs as its
//    own process (`kiln serve`), two generations run over a local mirror that holds each .deb back
//    200 ms (so they run for a while and report progress all along), and the server's CPU time is
//    read from /proc over the whole run. Three runs, each on a fresh data directory (the same
//    work): nobody watching; 50 event streams (what 50 open consoles hold); 50 clients polling the
//    template every second with If-None-Match (what a console without the stream would do).
import { spawn } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MIRROR = path.join(ROOT, ".cache/mirror");
const PASSWORD = "bench-password";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TICKS = 100; // USER_HZ: the unit of utime and stime in /proc/PID/stat on Linux

if (!existsSync(path.join(MIRROR, "dists/bookworm/Release"))) throw new Error("no local mirror in .cache/mirror: run the test suite once (its global setup builds it)");

/** A static server over the local mirror that holds every .deb back `delayMs`. */
async function slowMirror(delayMs) {
  const server = http.createServer((req, res) => {
    const file = path.join(MIRROR, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!file.startsWith(MIRROR) || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(200, { "content-length": statSync(file).size });
      createReadStream(file).pipe(res);
    };
    if (file.endsWith(".deb")) setTimeout(send, delayMs);
    else send();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

/** `kiln serve` in its own process, on a fresh data directory. */
async function startKiln(mirrorUrl, env = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-bench-console-"));
  writeFileSync(path.join(dir, "kiln.yaml"), `distributions:\n  - name: Debian\n    version: "12"\n    arch: x86_64\n    mirror: ${mirrorUrl}\n    suite: bookworm\n    components: [main]\n    keyring: none\n`);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve"], {
    env: { ...process.env, KILN_DATA_DIR: path.join(dir, "data"), KILN_CONFIG: path.join(dir, "kiln.yaml"), KILN_ADMIN_PASSWORD: PASSWORD, KILN_PORT: String(port), KILN_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/api/status`)).status < 500) break;
    } catch {
      if (i > 200) throw new Error("kiln did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const auth = `Basic ${Buffer.from(`root:${PASSWORD}`).toString("base64")}`;
  const api = async (method, url, body) => {
    const res = await fetch(`${base}/api/${url}`, { method, headers: { authorization: auth, accept: "application/json", "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (res.status >= 400) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? undefined : res.json();
  };
  const cpuSeconds = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS;
  };
  return {
    base,
    api,
    auth,
    cpuSeconds,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function firstRender() {
  const mirror = await slowMirror(0);
  const kiln = await startKiln(mirror.url);
  for (let i = 0; i < 500; i++) await kiln.api("POST", "users/root/mysoftware", { name: `bundle-${String(i).padStart(3, "0")}`, version: "1.0", description: `Bundle number ${i}` });
  const t0 = performance.now();
  await kiln.api("GET", "users/root/mysoftware?orderBy=name");
  const apiMs = performance.now() - t0;
  const session = await fetch(`${kiln.base}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ login: "root", password: PASSWORD }) });
  const token = /kiln_session=([^;]+)/.exec(session.headers.get("set-cookie"))[1];
  const profile = mkdtempSync(path.join(tmpdir(), "kiln-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: ARGS });
  await context.addCookies([{ name: "kiln_session", value: token, url: kiln.base, httpOnly: true, sameSite: "Strict" }]);
  const page = await context.newPage();
  const times = [];
  for (let i = 0; i < 6; i++) {
    await page.goto(`${kiln.base}/library`);
    const ms = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const check = () => (document.querySelectorAll('ul[aria-label="Bundles"] > li').length === 500 ? resolve(performance.now()) : requestAnimationFrame(check));
          check();
        }),
    );
    if (i > 0) times.push(ms); // the first load warms the browser's cache of the assets
  }
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  await kiln.stop();
  await mirror.close();
  times.sort((a, b) => a - b);
  return { medianMs: Math.round(times[2]), minMs: Math.round(times[0]), maxMs: Math.round(times[4]), apiMs: Math.round(apiMs) };
}

/** One run: two generations on a fresh server, watched by `watchers` as `mode` says. */
async function watchedRun(mode, watchers) {
  const mirror = await slowMirror(200);
  const kiln = await startKiln(mirror.url, { KILN_BUILD_CONCURRENCY: "2" });
  const bundle = await kiln.api("POST", "users/root/mysoftware", { name: "watched", version: "1" });
  const template = await kiln.api("POST", `users/root/mysoftware/${bundle.dbId}/templates`, { distribution: { uri: "distributions/1" } });
  const streams = [];
  let polls = 0;
  let notModified = 0;
  let events = 0;
  let polling = true;
  if (mode === "sse") {
    for (let i = 0; i < watchers; i++) {
      const res = await fetch(`${kiln.base}/api/users/root/events`, { headers: { authorization: kiln.auth } });
      const reader = res.body.getReader();
      streams.push(reader);
      void (async () => {
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true }));
          if (done) return;
          events += (Buffer.from(value).toString().match(/event: status/g) ?? []).length;
        }
      })();
    }
  }
  const pollers =
    mode === "poll"
      ? Array.from({ length: watchers }, async (_, i) => {
          let etag;
          await new Promise((r) => setTimeout(r, (1000 * i) / watchers));
          while (polling) {
            const res = await fetch(`${kiln.base}/api/${template.uri}`, { headers: { authorization: kiln.auth, accept: "application/json", ...(etag ? { "if-none-match": etag } : {}) } });
            polls++;
            if (res.status === 304) notModified++;
            else etag = res.headers.get("etag") ?? undefined;
            await res.arrayBuffer();
            await new Promise((r) => setTimeout(r, 1000));
          }
        })
      : [];
  const cpu0 = kiln.cpuSeconds();
  const t0 = performance.now();
  const images = [];
  for (let i = 0; i < 2; i++) images.push(await kiln.api("POST", `${template.uri}/images`, { targetFormat: { name: "Docker" }, compress: true }));
  for (const img of images) {
    for (;;) {
      const s = await kiln.api("GET", `${img.uri}/status`);
      if (s.complete || s.error || s.cancelled) {
        if (!s.complete) throw new Error(`generation ended: ${JSON.stringify(s)}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = kiln.cpuSeconds() - cpu0;
  polling = false;
  await Promise.all(pollers);
  for (const r of streams) await r.cancel().catch(() => undefined);
  await kiln.stop();
  await mirror.close();
  return { mode, watchers, seconds: +seconds.toFixed(1), cpuSeconds: +cpu.toFixed(2), cpuPercent: +((100 * cpu) / seconds).toFixed(1), events, polls, notModified };
}

const render = await firstRender();
console.log(`library with 500 bundles: first render ${render.medianMs} ms median (${render.minMs}-${render.maxMs} ms over 5 loads); the API's list alone ${render.apiMs} ms`);
const runs = [];
for (const [mode, n] of [["none", 0], ["sse", 50], ["poll", 50]]) {
  const r = await watchedRun(mode, n);
  runs.push(r);
  console.log(JSON.stringify(r));
}
const none = runs[0];
for (const r of runs.slice(1)) {
  console.log(`${r.mode === "sse" ? "50 event streams" : "50 pollers (1/s, ETag)"}: server CPU ${r.cpuSeconds} s over ${r.seconds} s, ${(r.cpuSeconds - none.cpuSeconds).toFixed(2)} s more than nobody watching (${none.cpuSeconds} s)`);
}
