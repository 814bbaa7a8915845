#!/usr/bin/env node
// Benchmark: GET /api/users/{uid}/mysoftware/{msid}/templates/{tid} (XML) on Kiln against a bare
// Fastify route returning the same bytes, in the same run, 64 connections each; then a list with
// a FIQL query (`mysoftware?query=name=='tool-1*';version=='1.0'&orderBy=name&count=10` over 200
// bundles) the same way.
//
//   npm run build && node bench/api-template.mjs [seconds=10]
//
// Kiln runs with its defaults (SQLite in a temporary data directory, HTTP Basic auth on every
// request); the bare route does no auth, no database and no encoding. autocannon runs in a child
// process. Goal: Kiln ≥ 0.5× the bare route's requests/s.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import { loadConfig } from "../dist/server/config.js";
import { openRuntime } from "../dist/server/serve.js";

const seconds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(path.join(tmpdir(), "kiln-bench-"));
writeFileSync(
  path.join(dir, "kiln.yaml"),
  'distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "file:///nonexistent/", suite: bookworm, keyring: none}\n',
);
const config = loadConfig({ KILN_DATA_DIR: path.join(dir, "data"), KILN_CONFIG: path.join(dir, "kiln.yaml"), KILN_ADMIN_PASSWORD: "bench-root-pw", KILN_PORT: "0" });
const rt = await openRuntime(config, { logger: false, announce: () => {} });
const auth = (u, p) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';

async function call(method, url, payload, user = "alice", pw = "alice-bench-pw") {
  const res = await rt.app.inject({ method, url, payload, headers: { authorization: auth(user, pw), "content-type": "application/xml" } });
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res;
}
await call("POST", "/api/users", `<ns0:user ${NS}><loginName>alice</loginName><password>alice-bench-pw</password></ns0:user>`, "root", "bench-root-pw");
const b = await call("POST", "/api/users/alice/mysoftware", `<ns0:mySoftware ${NS}><name>hello</name><version>1.0</version><description>benchmark bundle</description></ns0:mySoftware>`);
const msid = /<dbId>(\d+)<\/dbId>/.exec(b.body)[1];
const t = await call("POST", `/api/users/alice/mysoftware/${msid}/templates`, `<ns0:containerTemplate ${NS}><distribution><uri>distributions/1</uri></distribution></ns0:containerTemplate>`);
const tid = /<dbId>(\d+)<\/dbId>/.exec(t.body)[1];
const url = `/api/users/alice/mysoftware/${msid}/templates/${tid}`;
const sample = await call("GET", url);
const bytes = sample.rawPayload;
const contentType = sample.headers["content-type"];
// 200 bundles, of which the query finds 9 (tool-1, tool-11 ... tool-19 but tool-17, which is a 2.0).
for (let i = 0; i < 200; i++) {
  await call("POST", "/api/users/alice/mysoftware", `<ns0:mySoftware ${NS}><name>tool-${i}</name><version>${i % 7 === 3 ? "2.0" : "1.0"}</version></ns0:mySoftware>`);
}
const listUrl = `/api/users/alice/mysoftware?query=${encodeURIComponent("name=='tool-1*';version=='1.0'")}&orderBy=name&count=10`;
const listSample = await call("GET", listUrl);
const listBytes = listSample.rawPayload;

await rt.app.listen({ host: "127.0.0.1", port: 0 });
const kilnPort = rt.app.server.address().port;

const bare = Fastify({ logger: false });
bare.get(url, (_req, reply) => reply.type(contentType).send(bytes));
bare.get("/api/users/alice/mysoftware", (_req, reply) => reply.type(contentType).send(listBytes));
await bare.listen({ host: "127.0.0.1", port: 0 });
const barePort = bare.server.address().port;

// autocannon runs in its own process: the load generator must not share the servers' event loop.
const AUTOCANNON = fileURLToPath(new URL("../node_modules/.bin/autocannon", import.meta.url));
function run(name, port, headers, path = url) {
  const args = ["-j", "-c", "64", "-d", String(seconds), ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}=${v}`]), `http://127.0.0.1:${port}${path}`];
  return new Promise((resolve, reject) => {
    const child = spawn(AUTOCANNON, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", () => {
      try {
        const r = JSON.parse(out);
        if (r.non2xx > 0 || r.errors > 0) return reject(new Error(`${name}: ${r.non2xx} non-2xx answers, ${r.errors} errors`));
        resolve({ name, rps: r.requests.average, p99: r.latency.p99, total: r.requests.total });
      } catch (err) {
        reject(err);
      }
    });
  });
}

// Warm up both, then measure.
await run("warm-kiln", kilnPort, { authorization: auth("alice", "alice-bench-pw") });
await run("warm-bare", barePort, {});
const bareResult = await run("bare fastify route", barePort, {});
const kilnResult = await run("kiln GET template", kilnPort, { authorization: auth("alice", "alice-bench-pw") });
const bareList = await run("bare fastify list", barePort, {}, listUrl);
const kilnList = await run("kiln FIQL list", kilnPort, { authorization: auth("alice", "alice-bench-pw") }, listUrl);

console.log(`template: ${bytes.length} bytes of XML; list: ${listBytes.length} bytes (the 9 bundles the query finds among 201); 64 connections, ${seconds} s each`);
for (const r of [bareResult, kilnResult, bareList, kilnList]) console.log(`${r.name.padEnd(20)} ${r.rps.toFixed(0).padStart(7)} req/s   p99 ${r.p99} ms   (${r.total} requests)`);
console.log(`ratio kiln/bare, template GET: ${(kilnResult.rps / bareResult.rps).toFixed(2)} (goal ≥ 0.50)`);
console.log(`ratio kiln/bare, FIQL list:    ${(kilnList.rps / bareList.rps).toFixed(2)}`);

await bare.close();
await rt.close();
rmSync(dir, { recursive: true, force: true });
