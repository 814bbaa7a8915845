/**
 * Kiln on several processes, for real: a fresh PostgreSQL database, a registry (Debian's
 * docker-registry, with credentials) as the blob store of them all, one `api` and two `worker`
 * processes (bin/kiln.js serve), each with its own data directory. Generations submitted to the API complete
 * on the workers; a job submitted while no worker runs waits for one; a worker SIGKILLed in the
 * middle of a generation loses nothing (the other resumes the job once the lease lapses, and the
 * image downloads intact); a cancel from the API stops a job on a worker; the API restarts
 * without losing or duplicating anything.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kilnYaml, type JsonStatus } from "../helpers/api.js";
import { postgresTarget, type TargetDatabase } from "../helpers/databases.js";
import { startKiln, type KilnProcess } from "../helpers/kiln-process.js";
import { run, startRegistry, type TestRegistry } from "../helpers/registry.js";

const ROOT_PW = "cluster-root-pw";
const LEASE = "5s";
const dir = mkdtempSync(path.join(tmpdir(), "kiln-cluster-"));
writeFileSync(path.join(dir, "kiln.yaml"), kilnYaml());
let db: TargetDatabase;
let api: KilnProcess | undefined;
const workers: Array<KilnProcess | undefined> = [];
let blobStore = "";
let registry: TestRegistry;
const REGISTRY_PW = "registry-secret-pw";

function env(name: string): Record<string, string> {
  return {
    KILN_DATA_DIR: path.join(dir, name),
    KILN_CONFIG: path.join(dir, "kiln.yaml"),
    KILN_ADMIN_PASSWORD: ROOT_PW,
    KILN_DATABASE_URL: db.options.databaseUrl!,
    KILN_BLOB_STORE: blobStore,
    KILN_BLOB_STORE_CREDENTIALS: `kiln:${REGISTRY_PW}`,
    KILN_JOB_LEASE: LEASE,
    KILN_SECRET_KEY: "cluster-shared-secret",
    KILN_BUILD_CONCURRENCY: "1",
  };
}
const startApi = async (): Promise<KilnProcess> => (api = await startKiln(env("api"), "api"));
const startWorker = async (i: number): Promise<KilnProcess> => (workers[i] = await startKiln(env(`worker${i}`), "worker"));

beforeAll(async () => {
  db = await postgresTarget.create();
  registry = await startRegistry({ auth: "htpasswd", users: { kiln: REGISTRY_PW } });
  blobStore = `oci+${registry.url}/kiln`;
});
afterAll(async () => {
  await Promise.all([api, ...workers].map((p) => p?.stop()));
  // The registry's password was never written by any process.
  for (const p of [api, ...workers]) expect(p?.output() ?? "").not.toContain(REGISTRY_PW);
  await registry?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

async function call<T = Record<string, unknown>>(method: string, url: string, body?: unknown, user = "alice"): Promise<{ status: number; json: T }> {
  const res = await fetch(`${api!.url}/api/${url}`, {
    method,
    headers: { authorization: auth(user, user === "root" ? ROOT_PW : "alice-password"), accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as T };
}

async function waitStatus(statusUri: string, until: (s: JsonStatus) => boolean): Promise<JsonStatus> {
  for (;;) {
    const s = (await call<JsonStatus>("GET", statusUri)).json;
    if (until(s)) return s;
    if (s.error) throw new Error(`${statusUri} failed: ${s.errorMessage} ${s.detailedErrorMsg ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const ended = (s: JsonStatus): boolean => s.complete || s.error || s.cancelled;

/** Waits for a state (never for a time): the suite's timeout bounds it. */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 50));
}

async function jobRow(imageUri: string): Promise<{ state: string; attempts: number; lease_owner: string | null; message: string }> {
  const id = Number(imageUri.split("/").pop());
  const rows = await db.query(`select j.state, j.attempts, j.lease_owner, j.message from jobs j join images i on i.job_id = j.id where i.id = ${id}`);
  return rows[0] as { state: string; attempts: number; lease_owner: string | null; message: string };
}

let templateUri = "";
async function generate(): Promise<{ uri: string; statusUri: string }> {
  const r = await call<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/true"]' });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

/** Downloads the image through the API and checks its bytes against what the store recorded. */
async function expectIntactDownload(imageUri: string): Promise<Buffer> {
  const res = await fetch(`${api!.url}/api/${imageUri}/downloads`, { headers: { authorization: auth("alice", "alice-password") } });
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  const [row] = await db.query(`select file_digest, file_size from images where id = ${Number(imageUri.split("/").pop())}`);
  expect(bytes.length).toBe(Number(row!.file_size));
  expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(row!.file_digest);
  return bytes;
}

/**
 * The image is tagged in the registry blob store: its registeringName (JSON and XML) is that
 * reference, and skopeo reads it with the registry's credentials.
 */
async function expectPullableReference(imageUri: string): Promise<void> {
  const revision = Number((await db.query(`select revision from images where id = ${Number(imageUri.split("/").pop())}`))[0]!.revision);
  const reference = `${registry.host}/kiln/alice/spread:1.0-${revision}`;
  expect((await call<{ registeringName: string }>("GET", imageUri)).json.registeringName).toBe(reference);
  const xml = await fetch(`${api!.url}/api/${imageUri}`, { headers: { authorization: auth("alice", "alice-password"), accept: "application/xml" } });
  expect(await xml.text()).toContain(`<registeringName>${reference}</registeringName>`);
  const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", "--creds", `kiln:${REGISTRY_PW}`, `docker://${reference}`]);
  const inspected = JSON.parse(stdout) as { Labels: Record<string, string>; Layers: string[] };
  expect(inspected.Labels).toMatchObject({ "org.opencontainers.image.title": "spread", "org.opencontainers.image.version": "1.0" });
  expect(inspected.Layers.length).toBeGreaterThan(0);
}

/** A one-time key, Range, ETag and 304 through the API, from the registry store, as on one process. */
async function expectDownloadSemantics(imageUri: string, bytes: Buffer): Promise<void> {
  const img = await call<{ downloadUri: string }>("GET", imageUri);
  const url = `${api!.url}/api/${img.json.downloadUri.replace(/^\/?(api\/)?/, "")}`;
  const etag = `"${createHash("sha256").update(bytes).digest("hex")}"`;
  const notModified = await fetch(url, { headers: { "if-none-match": etag } });
  expect(notModified.status).toBe(304);
  const part = await fetch(url, { headers: { range: "bytes=100-1123" } });
  expect(part.status).toBe(206);
  expect(part.headers.get("content-range")).toBe(`bytes 100-1123/${bytes.length}`);
  expect(part.headers.get("etag")).toBe(etag);
  expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 1124))).toBe(true);
  // The 206 used the key up.
  expect((await fetch(url)).status).toBe(401);
}

describe("an api and two workers on PostgreSQL", () => {
  it("runs a job submitted while no worker runs once one starts", async () => {
    await startApi();
    const created = await call("POST", "users", { loginName: "alice", email: "alice@example.com", password: "alice-password" }, "root");
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const b = await call<{ uri: string }>("POST", "users/alice/mysoftware", { name: "spread", version: "1.0" });
    const a = await call<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "data.bin" });
    const up = await fetch(`${api!.url}/api/${a.json.uri}/bin/data.bin`, { method: "POST", headers: { authorization: auth("alice", "alice-password"), "content-type": "application/octet-stream" }, body: randomBytes(1 << 20) });
    expect(up.status).toBe(201);
    const t = await call<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
    templateUri = t.json.uri;

    const first = await generate();
    // No worker: the job waits in the queue (the API runs none itself).
    for (let i = 0; i < 10; i++) {
      expect((await call<JsonStatus>("GET", first.statusUri)).json).toMatchObject({ complete: false, error: false, percentage: 0 });
      expect((await jobRow(first.uri)).state).toBe("queued");
      await new Promise((r) => setTimeout(r, 100));
    }
    const w0 = await startWorker(0);
    const done = await waitStatus(first.statusUri, ended);
    expect(done).toMatchObject({ complete: true, percentage: 100 });
    expect(await jobRow(first.uri)).toMatchObject({ state: "complete", attempts: 1 });
    expect(w0.output()).not.toMatch(/"level":50/);
    // The api process fetched the image file into its cache when the job completed (its
    // download is then local): a verified copy is there before anyone asked for it.
    const [row] = await db.query(`select file_digest from images where id = ${Number(first.uri.split("/").pop())}`);
    const hex = String(row!.file_digest).slice(7);
    const copy = path.join(dir, "api", "cache", "blob-store", "sha256", hex.slice(0, 2), hex);
    await waitFor(() => existsSync(copy));
    expect(createHash("sha256").update(readFileSync(copy)).digest("hex")).toBe(hex);
    expect(api!.output()).toContain("fetched a generated image's file into this process's blob cache");
    await expectIntactDownload(first.uri);
    await expectPullableReference(first.uri);
  });

  it("resumes on the other worker the job of a worker killed mid-generation, and the image downloads intact", async () => {
    await startWorker(1);
    const job = await generate();
    await waitStatus(job.statusUri, (s) => /unpacking|configuring|writing/.test(s.message ?? ""));
    const holder = (await jobRow(job.uri)).lease_owner!;
    const victim = workers.findIndex((w) => w !== undefined && holder.split(":")[1] === String(w.pid));
    expect(victim).toBeGreaterThanOrEqual(0);
    const killedAt = Date.now();
    expect(await workers[victim]!.kill()).toBe("SIGKILL");
    workers[victim] = undefined;
    // Another worker takes it over once the lease lapses (measured: lease + the poll).
    for (;;) {
      const r = await jobRow(job.uri);
      if (r.attempts >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`cluster: the job resumed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after its worker was killed (lease ${LEASE})`);
    const done = await waitStatus(job.statusUri, ended);
    expect(done).toMatchObject({ complete: true, percentage: 100 });
    const row = await jobRow(job.uri);
    expect(row.state).toBe("complete");
    expect(row.attempts).toBeGreaterThanOrEqual(2);
    const bytes = await expectIntactDownload(job.uri);
    await expectDownloadSemantics(job.uri, bytes);
    await expectPullableReference(job.uri);
    await startWorker(victim);
  });

  it("keeps a worker paused past its lease from overwriting the job the other worker took over", async () => {
    const job = await generate();
    await waitStatus(job.statusUri, (s) => /unpacking|configuring|writing/.test(s.message ?? ""));
    const holder = (await jobRow(job.uri)).lease_owner!;
    const paused = workers.find((w) => w !== undefined && holder.split(":")[1] === String(w.pid))!;
    paused.child.kill("SIGSTOP");
    try {
      const done = await waitStatus(job.statusUri, ended);
      expect(done).toMatchObject({ complete: true });
    } finally {
      paused.child.kill("SIGCONT");
    }
    const [before] = await db.query(`select file_digest, last_modified from images where id = ${Number(job.uri.split("/").pop())}`);
    // Awake again, it learns at its next renewal that the job is another's, and stops it.
    while (!/another worker took the job over/.test(paused.output())) await new Promise((r) => setTimeout(r, 100));
    expect(await jobRow(job.uri)).toMatchObject({ state: "complete", attempts: 2, lease_owner: null });
    const [after] = await db.query(`select file_digest, last_modified from images where id = ${Number(job.uri.split("/").pop())}`);
    expect(after).toEqual(before);
    await expectIntactDownload(job.uri);
  });

  it("stops a job running on a worker when the API cancels it", async () => {
    const job = await generate();
    await waitStatus(job.statusUri, (s) => /resolving|downloading|unpacking|configuring|writing/.test(s.message ?? ""));
    expect((await jobRow(job.uri)).lease_owner).not.toBeNull();
    const asked = Date.now();
    const answer = await call<JsonStatus>("DELETE", job.statusUri);
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    const s = await waitStatus(job.statusUri, ended);
    console.log(`cluster: a cancel from the API stopped the job on its worker in ${((Date.now() - asked) / 1000).toFixed(2)} s`);
    expect(s.cancelled).toBe(true);
    expect(await jobRow(job.uri)).toMatchObject({ state: "cancelled", lease_owner: null });
  });

  it("restarts the API without losing or duplicating anything", async () => {
    const job = await generate();
    await waitStatus(job.statusUri, (s) => s.percentage > 0);
    expect(await api!.stop()).toBe(0);
    await startApi();
    const done = await waitStatus(job.statusUri, ended);
    expect(done).toMatchObject({ complete: true });
    expect(await jobRow(job.uri)).toMatchObject({ state: "complete", attempts: 1 });
    const [count] = await db.query("select count(*)::int as images, (select count(*)::int from jobs) as jobs from images");
    expect(count).toEqual({ images: 5, jobs: 5 });
    await expectIntactDownload(job.uri);
  });
});
