/**
 * The roles of `kiln serve` and what each refuses: `api` and `worker` only beside a PostgreSQL
 * database, never two servers on one SQLite file; a worker answers its health and nothing else.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kilnYaml, startTestServer } from "../helpers/api.js";
import { startRegistry } from "../helpers/registry.js";
import { postgresTarget, type TargetDatabase } from "../helpers/databases.js";
import { runServe, startKiln } from "../helpers/kiln-process.js";
import { ROOT } from "../helpers/global-setup.js";

const dir = mkdtempSync(path.join(tmpdir(), "kiln-roles-"));
writeFileSync(path.join(dir, "kiln.yaml"), kilnYaml());
const databases: TargetDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
  rmSync(dir, { recursive: true, force: true });
});
const base = (name: string): Record<string, string> => ({ KILN_DATA_DIR: path.join(dir, name), KILN_CONFIG: path.join(dir, "kiln.yaml"), KILN_ADMIN_PASSWORD: "roles-root-pw", KILN_DATABASE_URL: "", KILN_SECRET_KEY: "roles-shared-secret" });

describe("kiln serve --role", () => {
  it("refuses the api and worker roles without PostgreSQL, naming KILN_DATABASE_URL", async () => {
    for (const role of ["api", "worker"]) {
      const r = await runServe(base("none"), role);
      expect(r.code).toBe(1);
      expect(r.output).toMatch(new RegExp(`the ${role} role .*PostgreSQL.*KILN_DATABASE_URL`));
    }
    const env = await runServe({ ...base("none"), KILN_ROLE: "builder" });
    expect(env.code).toBe(1);
    expect(env.output).toMatch(/the role must be all, api, worker; got "builder"/);
    const keyless = await runServe({ ...base("none"), KILN_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres", KILN_SECRET_KEY: "" }, "worker");
    expect(keyless.code).toBe(1);
    expect(keyless.output).toMatch(/set KILN_SECRET_KEY, the same in every process/);
  });

  it("refuses a second server on one SQLite data directory, and serves again once the first stops", async () => {
    const first = await startKiln(base("sqlite"));
    try {
      const second = await runServe(base("sqlite"));
      expect(second.code).toBe(1);
      expect(second.output).toMatch(/another Kiln server is already running on this data directory's SQLite database/);
      // The first one was not disturbed.
      expect((await fetch(`${first.url}/api/status`)).status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const again = await startKiln(base("sqlite"));
    expect(await again.stop()).toBe(0);
  });

  it("keeps refusing a second server once the first has collected its garbage (the claim is held for the process's life)", async () => {
    // A server that forces full garbage collections once it listens: a claim nothing refers to
    // would be collected, its SQLite handle closed and its lock gone.
    const script = `const { serve } = await import(${JSON.stringify(path.join(ROOT, "dist/server/serve.js"))}); await serve(); globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); globalThis.gc(); console.log("collected the garbage");`;
    const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { env: { ...process.env, KILN_PORT: "0", KILN_CONFIG: "", ...base("collected") }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      while (!out.includes("collected the garbage")) {
        if (child.exitCode !== null) throw new Error(`the server exited: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = await runServe(base("collected"));
      expect(second.code, second.output).toBe(1);
      expect(second.output).toMatch(/another Kiln server is already running on this data directory's SQLite database/);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("a worker answers GET /api/status with its role and reachability, and serves nothing else", async () => {
    const db = await postgresTarget.create();
    databases.push(db);
    const worker = await startKiln({ ...base("worker"), KILN_DATABASE_URL: db.options.databaseUrl! }, "worker");
    const api = await startKiln({ ...base("api"), KILN_DATABASE_URL: db.options.databaseUrl! }, "api");
    try {
      const status = await fetch(`${worker.url}/api/status`, { headers: { accept: "text/plain" } });
      expect(status.status).toBe(200);
      expect(await status.text()).toBe("alive (role worker)");
      expect(status.headers.get("x-kiln-role")).toBe("worker");
      expect(status.headers.get("x-kiln-database")).toBe("reachable");
      expect(status.headers.get("x-kiln-blob-store")).toBe("reachable");
      const auth = { authorization: `Basic ${Buffer.from("root:roles-root-pw").toString("base64")}` };
      expect((await fetch(`${worker.url}/api/users/root`, { headers: auth })).status).toBe(404);
      expect((await fetch(`${worker.url}/`)).status).toBe(404);
      const apiStatus = await fetch(`${api.url}/api/status`);
      expect(apiStatus.headers.get("x-kiln-role")).toBe("api");
      expect((await fetch(`${api.url}/api/users/root`, { headers: auth })).status).toBe(200);
    } finally {
      expect(await worker.stop()).toBe(0);
      expect(await api.stop()).toBe(0);
    }
  });
});

describe("GET /api/status with a registry blob store", () => {
  it("answers 503 naming the blob store while its registry is away", async () => {
    const registry = await startRegistry({ auth: "htpasswd", users: { kiln: "status-pw" } });
    const server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${registry.url}/kiln`, KILN_BLOB_STORE_CREDENTIALS: "kiln:status-pw" } });
    try {
      const up = await server.request({ method: "GET", url: "/api/status", headers: { accept: "text/plain" } });
      expect(up.statusCode).toBe(200);
      expect(up.headers["x-kiln-blob-store"]).toBe("reachable");
      await registry.kill();
      const down = await server.request({ method: "GET", url: "/api/status", headers: { accept: "text/plain" } });
      expect(down.statusCode).toBe(503);
      expect(down.headers["x-kiln-blob-store"]).toBe("unreachable");
      expect(down.headers["x-kiln-database"]).toBe("reachable");
      expect(down.body).toMatch(/blob store cannot be reached/);
      expect(down.body).not.toContain("status-pw");
      const xml = await server.request({ method: "GET", url: "/api/status" });
      expect(xml.statusCode).toBe(503);
    } finally {
      await server.close();
      await registry.stop();
    }
  });

  it("answers 503 when the registry refuses the blob store's credentials", async () => {
    const registry = await startRegistry({ auth: "htpasswd", users: { kiln: "status-pw" } });
    const server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${registry.url}/kiln`, KILN_BLOB_STORE_CREDENTIALS: "kiln:wrong-pw" } });
    try {
      const res = await server.request({ method: "GET", url: "/api/status", headers: { accept: "text/plain" } });
      expect(res.statusCode).toBe(503);
      expect(res.headers["x-kiln-blob-store"]).toBe("unreachable");
      expect(res.body).not.toContain("wrong-pw");
    } finally {
      await server.close();
      await registry.stop();
    }
  });
});
