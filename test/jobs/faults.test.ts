/**
 * The suite's generation and publication flows under faults, on a PostgreSQL server of this
 * file's own (test/helpers/postgres-server.ts) that is really stopped and started:
 *
 * - cancelled at every phase boundary of a generation (layer writes of the package groups in
 *   flight, as on a fresh layer cache) and of a publication, and at random points;
 * - the database stopped at each step a job takes (before each store call, at each phase), and
 *   under each request of the API flow.
 *
 * Every time: the process survives (no unhandled rejection, no uncaught exception), requests
 * answer `503` naming the database while it is down and work again once it is back (no restart),
 * every job ends in a final state with a message a person can act on, and no temporary file is
 * left behind.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildDeb, makeTar, tempDir } from "../fixtures/debs.js";
import { errorMessage, jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres-server.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import type { JobProgress, Store, StoreRepositories } from "../../src/store/types.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

let db: PostgresServer;
let registry: TestRegistry;
let server: TestServer;
let work: string;
let templateUri: string;
let bundleUri: string;
let imageUri: string;
let dataArtifactUri: string;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const waitFor: ReturnType<typeof jsonClient>["waitFor"] = (...args) => jsonClient(server, "alice").waitFor(...args);

// What would end a real server process: recorded here, and none may happen.
const fatal: unknown[] = [];
const onFatal = (err: unknown): void => void fatal.push(err);

// ---- watching the store: every repository call of the server goes through here --------------

type Call = { repo: string; method: string; args: unknown[] };
/** Runs before a store call; may stop the database first. Returns true once it has acted (it is then removed). */
type Hook = (call: Call) => Promise<boolean> | boolean;
let hook: Hook | undefined;

function watchStore(store: Store): void {
  watchRepositories(store);
  // Calls made inside a transaction go through the repositories bound to it: watched too.
  const transaction = store.transaction.bind(store);
  (store as { transaction: Store["transaction"] }).transaction = (fn) => transaction((tx) => (watchRepositories(tx), fn(tx)));
}

function watchRepositories(store: StoreRepositories): void {
  for (const repo of ["users", "apiKeys", "distributions", "bundles", "artifacts", "cloudAccounts", "templates", "downloadKeys", "jobs", "images", "publications", "blobLocks"] as const) {
    const target = store[repo] as unknown as Record<string, unknown>;
    for (const [method, fn] of Object.entries(target)) {
      if (typeof fn !== "function") continue;
      target[method] = async (...args: unknown[]) => {
        const h = hook;
        if (h && (await h({ repo, method, args }))) {
          if (hook === h) hook = undefined;
        }
        return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      };
    }
  }
}

/** The job id a store call is about, when it names one (progress, finish, getByJob). */
function jobOf(call: Call): number | undefined {
  if (call.repo === "jobs" && (call.method === "progress" || call.method === "finish")) return call.args[0] as number;
  if ((call.repo === "images" || call.repo === "publications") && call.method === "getByJob") return call.args[0] as number;
  return undefined;
}

/** Whether the store call being made comes from the job runner or a job (not from a request). */
function fromJob(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  return /[\\/]src[\\/]jobs[\\/]/.test(stack);
}

/**
 * Starts a job and calls `act` before each store call the job makes. A job may start before its
 * ticket is known here: its store calls wait until it is (as if the database were slow).
 */
async function withJob<T extends { jobId: number }>(start: () => Promise<T>, act: (call: Call, ticket: T) => Promise<boolean> | boolean): Promise<T> {
  let ticket: T | undefined;
  let known!: () => void;
  const isKnown = new Promise<void>((resolve) => (known = resolve));
  hook = async (call) => {
    if (!fromJob()) return false;
    if (!ticket) await isKnown;
    const id = jobOf(call);
    if (id !== undefined && id !== ticket!.jobId) return false;
    return act(call, ticket!);
  };
  try {
    ticket = await start();
  } finally {
    known();
  }
  return ticket;
}

// ---- helpers ---------------------------------------------------------------------------------

const dataDir = (): string => server.config.dataDir;

/** Temporary files Kiln may leave only while work is in flight. */
function leftovers(): string[] {
  const out: string[] = [];
  const jobs = path.join(dataDir(), "tmp", "jobs");
  if (existsSync(jobs)) out.push(...readdirSync(jobs).map((n) => `tmp/jobs/${n}`));
  const blobs = path.join(dataDir(), "blobs", "tmp");
  if (existsSync(blobs)) out.push(...readdirSync(blobs).map((n) => `blobs/tmp/${n}`));
  return out;
}

async function generate(): Promise<{ uri: string; statusUri: string; jobId: number }> {
  const r = await api<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/faulty/bin/hello"]' });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  const img = await server.rt.deps.store.images.getById(Number(r.json.uri.split("/").pop()));
  return { ...r.json, jobId: img!.jobId };
}

let accounts = 0;
/** A publication to a new account (so no blob can be mounted from an earlier push: every layer is uploaded). */
async function publish(): Promise<{ statusUri: string; jobId: number }> {
  const acct = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountDocker", name: `registry ${++accounts}`, endpointUrl: registry.url, login: "alice", password: "unused" });
  expect(acct.status, JSON.stringify(acct.json)).toBe(201);
  const res = await server.request({
    method: "POST",
    url: `/api/${imageUri}/pimages`,
    user: "alice",
    headers: { "content-type": "application/xml", accept: "application/json" },
    payload: `<ns0:publishImage ${NS} ${XSI} xsi:type="ns0:PublishImageDocker"><credAccount xsi:type="ns0:CredAccountDocker"><uri>${acct.json.uri}</uri></credAccount><namespace>faults</namespace><repositoryName>r${accounts}</repositoryName><tagName>t${accounts}</tagName></ns0:publishImage>`,
  });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json() as { statusUri: string; uri: string };
  const pub = (await server.rt.deps.store.publications.listByImage((await server.rt.deps.store.users.getByLogin("alice"))!.id, Number(imageUri.split("/").pop()))).find((p) => body.uri.endsWith(`/pimages/${p.id}`));
  return { statusUri: body.statusUri, jobId: pub!.jobId };
}

/** A job's end as its status shows it: final, and a message a person can act on when it failed. */
function expectClearEnd(s: JsonStatus): void {
  expect(s.complete || s.error || s.cancelled, JSON.stringify(s)).toBe(true);
  if (s.error) {
    expect(s.errorMessage ?? "").not.toBe("");
    expect(s.errorMessage).not.toMatch(/^internal error/);
  }
}

/** Removes the layer cache's records, so that the package layers are written again (in flight while packages unpack). */
function forgetLayers(): void {
  rmSync(path.join(dataDir(), "cache", "layers"), { recursive: true, force: true });
}

async function createDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  process.on("unhandledRejection", onFatal);
  process.on("uncaughtException", onFatal);
  work = tempDir("kiln-faults-");
  [db, registry] = await Promise.all([startPostgres(), startRegistry()]);
  await createDatabase("kiln");
  server = await startTestServer({ databaseUrl: db.url("kiln"), env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  watchStore(server.rt.deps.store);
  await server.createUser("alice");

  // A bundle like the suite's: a .deb that pulls in dependencies, an archive, and a file.
  const debDir = path.join(work, "debs");
  mkdirSync(debDir);
  const deb = buildDeb({ name: "hello-jq", version: "1.0", arch: "all", depends: "jq", files: [{ path: "usr/bin/hello-jq", content: "#!/bin/sh\necho '{}' | jq .\n", mode: 0o755 }] }, debDir);
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "faulty", version: "1.0" });
  bundleUri = b.json.uri;
  const artifacts: Array<[string, Record<string, unknown>, Buffer]> = [
    ["hello-jq_1.0_all.deb", { install: true, tag: "ospkg" }, readFileSync(deb)],
    ["hello.tar.gz", { extract: true, installLocation: "/opt/faulty" }, gzipSync(await makeTar([{ name: "bin/hello", content: "#!/bin/sh\necho hello\n", mode: 0o755 }]))],
    ["data.bin", {}, randomBytes(4 << 20)],
  ];
  for (const [name, fields, bytes] of artifacts) {
    const a = await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name, ...fields });
    if (name === "data.bin") dataArtifactUri = a.json.uri;
    const up = await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/${name}`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
    expect(up.statusCode, up.body).toBe(201);
  }
  const t = await api<{ uri: string }>("POST", `${bundleUri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  templateUri = t.json.uri;
  // The reference run: every cache warm but the layers, and an image to publish.
  const g = await generate();
  const s = await waitFor(g.statusUri);
  expect(s.complete, JSON.stringify(s)).toBe(true);
  imageUri = g.uri;
}, 300_000);

afterEach(() => {
  hook = undefined;
  expect(fatal.splice(0)).toEqual([]);
});

afterAll(async () => {
  hook = undefined;
  if (db && !db.running()) await db.start();
  await server?.close();
  await registry?.stop();
  await db?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
  process.off("unhandledRejection", onFatal);
  process.off("uncaughtException", onFatal);
});

// ---- cancellation ----------------------------------------------------------------------------

/** Starts a job and cancels it through the API when its progress first matches `when`. */
async function cancelWhen<T extends { jobId: number; statusUri: string }>(
  start: () => Promise<T>,
  when: (p: JobProgress) => boolean,
): Promise<{ ticket: T; answer: { status: number; json: JsonStatus } }> {
  let answer!: Promise<{ status: number; json: JsonStatus }>;
  let fired!: () => void;
  let missed!: (err: Error) => void;
  const firedOnce = new Promise<void>((resolve, reject) => ((fired = resolve), (missed = reject)));
  const ticket = await withJob(start, (call, t) => {
    if (call.repo === "jobs" && call.method === "finish") {
      missed(new Error(`the job ended (${JSON.stringify(call.args[1])}) before the phase to cancel it at`));
      return true;
    }
    if (call.repo !== "jobs" || call.method !== "progress" || !when(call.args[1] as JobProgress)) return false;
    // Not awaited here: the cancel waits for the job, which waits for this progress write.
    answer = api<JsonStatus>("DELETE", cancelUri(t.statusUri));
    fired();
    return true;
  });
  await firedOnce;
  return { ticket, answer: await answer };
}

/** A generation is cancelled by deleting its status; a publication at its `cancel` resource. */
function cancelUri(statusUri: string): string {
  return /\/pimages\/\d+\/status$/.test(statusUri) ? statusUri.replace(/\/status$/, "/cancel") : statusUri;
}

async function expectCancelled(answer: { status: number; json: JsonStatus }, statusUri: string): Promise<void> {
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  expect(answer.json.cancelled, JSON.stringify(answer.json)).toBe(true);
  // The cancel answers once the job has stopped: nothing of it is still writing.
  expect(leftovers()).toEqual([]);
  expect((await api<JsonStatus>("GET", statusUri)).json.cancelled).toBe(true);
}

const message = (re: RegExp) => (p: JobProgress) => p.message !== undefined && re.test(p.message);
const late = (p: JobProgress): boolean => {
  const m = /^unpacking (\d+)\/(\d+)/.exec(p.message ?? "");
  return m !== null && Number(m[2]) - Number(m[1]) <= 3;
};

describe("cancelling a generation", () => {
  const boundaries: Array<[string, (p: JobProgress) => boolean]> = [
    ["preparing the bundle", message(/^preparing the bundle/)],
    ["reading the index", message(/^reading the package index/)],
    ["resolving", message(/^resolving dependencies/)],
    ["downloading", message(/^downloading/)],
    ["unpacking (first package)", message(/^unpacking \d+ packages/)],
    ["unpacking (last packages, layers being written)", late],
    ["configuring", message(/^configuring \(/)],
    ["configuring (a fix-up)", message(/^configuring: /)],
    ["writing layers", message(/^writing layers/)],
    ["writing the image config", message(/^writing the image config/)],
    ["writing the image file", message(/^writing the image file/)],
  ];
  for (const [name, when] of boundaries) {
    it(`stops cleanly at: ${name}`, async () => {
      forgetLayers();
      const { ticket, answer } = await cancelWhen(generate, when);
      await expectCancelled(answer, ticket.statusUri);
    });
  }

  it("stops cleanly at random points", async () => {
    // A fixed seed, printed, so that a failure can be replayed.
    let seed = 20261210;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 4; i++) {
      forgetLayers();
      const ticket = await generate();
      const delay = Math.floor(random() * 3000);
      await new Promise((r) => setTimeout(r, delay));
      const answer = await api<JsonStatus>("DELETE", cancelUri(ticket.statusUri));
      const what = `seed 20261210, run ${i}, delay ${delay} ms: ${JSON.stringify(answer.json)}`;
      // A cancel that comes after the end finds nothing to cancel (its status, unchanged); either way the job is over.
      expect(answer.status, what).toBe(200);
      const end = (await api<JsonStatus>("GET", ticket.statusUri)).json;
      expectClearEnd(end);
      expect(end.cancelled || end.complete, what).toBe(true);
      expect(leftovers()).toEqual([]);
    }
  });
});

describe("cancelling a publication", () => {
  const boundaries: Array<[string, (p: JobProgress) => boolean]> = [
    ["connecting", message(/^connecting to/)],
    ["uploading layers", message(/^uploading layers/)],
  ];
  for (const [name, when] of boundaries) {
    it(`stops cleanly at: ${name}`, async () => {
      const { ticket, answer } = await cancelWhen(publish, when);
      await expectCancelled(answer, ticket.statusUri);
    });
  }

  it("ends clearly when cancelled while the manifest is sent", async () => {
    // The manifest names the tag: once the registry took it, the image is published and a cancel
    // that arrives then finds the job complete. Either end is right; a crash or a hang is not.
    const { ticket, answer } = await cancelWhen(publish, message(/^uploading the manifest/));
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expectClearEnd(answer.json);
    expect(leftovers()).toEqual([]);
    expectClearEnd((await api<JsonStatus>("GET", ticket.statusUri)).json);
  });
});

// ---- the database stopped --------------------------------------------------------------------

/** While the database is down, the API says so: `503` naming it, for the status too. */
async function expectUnavailable(statusUri: string): Promise<void> {
  const s = await api("GET", statusUri);
  expect(s.status, s.res.body).toBe(503);
  expect(errorMessage(s.res)).toMatch(/metadata database is unreachable/);
  expect(s.res.headers["retry-after"]).toBeDefined();
  const status = await server.request({ method: "GET", url: "/api/status" });
  expect(status.statusCode).toBe(503);
  const plain = await server.request({ method: "GET", url: "/api/status", headers: { accept: "text/plain" } });
  expect(plain.statusCode).toBe(503);
  expect(plain.body).toMatch(/database/);
}

/**
 * Starts a job, stops the database just before the job's first store call that `at` picks, checks
 * the API while it is down, starts it again, and waits for the job's clear end.
 */
async function stopDatabaseAt(start: () => Promise<{ statusUri: string; jobId: number }>, at: (call: Call) => boolean): Promise<JsonStatus> {
  let stopped!: () => void;
  let missed!: (err: Error) => void;
  const down = new Promise<void>((resolve, reject) => ((stopped = resolve), (missed = reject)));
  const ticket = await withJob(start, async (call) => {
    if (!at(call)) {
      if (call.repo === "jobs" && call.method === "finish") {
        missed(new Error(`the job ended (${JSON.stringify(call.args[1])}) before the step to stop the database at`));
        return true;
      }
      return false;
    }
    await db.stop("fast");
    stopped();
    return true;
  });
  await down;
  await expectUnavailable(ticket.statusUri);
  await db.start();
  const end = await waitFor(ticket.statusUri);
  expectClearEnd(end);
  if (end.error) expect(end.errorMessage).toMatch(/metadata database is unreachable/);
  expect((await server.request({ method: "GET", url: "/api/status" })).statusCode).toBe(200);
  expect(leftovers()).toEqual([]);
  return end;
}

const store = (repo: string, method: string) => (c: Call) => c.repo === repo && c.method === method;
const progressOf = (re: RegExp) => (c: Call) => c.repo === "jobs" && c.method === "progress" && re.test((c.args[1] as JobProgress).message ?? "");

describe("the database stopped at each step of a generation", () => {
  const steps: Array<[string, (c: Call) => boolean]> = [
    ["reading the image", store("images", "getByJob")],
    ["reading the artifacts", store("artifacts", "listAll")],
    ["resolving", progressOf(/^resolving/)],
    ["downloading", progressOf(/^downloading/)],
    ["unpacking", progressOf(/^unpacking/)],
    ["configuring", progressOf(/^configuring/)],
    ["writing layers", progressOf(/^writing layers/)],
    ["writing the image file", progressOf(/^writing the image file/)],
    ["recording the image", store("images", "update")],
    ["ending the job", store("jobs", "finish")],
  ];
  for (const [name, at] of steps) {
    it(`ends the job clearly when it stops at: ${name}`, async () => {
      forgetLayers();
      await stopDatabaseAt(generate, at);
    });
  }
});

describe("the database stopped at each step of a publication", () => {
  const steps: Array<[string, (c: Call) => boolean]> = [
    ["reading the publication", store("publications", "getByJob")],
    ["reading the account", store("cloudAccounts", "get")],
    ["uploading layers", progressOf(/^uploading layers/)],
    ["recording where it landed", store("publications", "update")],
    ["ending the job", store("jobs", "finish")],
  ];
  for (const [name, at] of steps) {
    it(`ends the job clearly when it stops at: ${name}`, async () => {
      await stopDatabaseAt(publish, at);
    });
  }
});

describe("the database stopped under each request of the flow", () => {
  it("answers 503 naming the database, then works again without a restart", async () => {
    const requests: Array<[string, () => Promise<{ status: number; body: string }>]> = [
      ["create a bundle", async () => api("POST", "users/alice/mysoftware", { name: `b${Date.now()}`, version: "1" }).then((r) => ({ status: r.status, body: r.res.body }))],
      ["list bundles", async () => api("GET", "users/alice/mysoftware").then((r) => ({ status: r.status, body: r.res.body }))],
      ["create an artifact", async () => api("POST", `${bundleUri}/artifacts`, { name: `x${Date.now()}.txt` }).then((r) => ({ status: r.status, body: r.res.body }))],
      [
        "upload bytes",
        async () => {
          const r = await server.request({ method: "POST", url: `/api/${dataArtifactUri}/bin/data.bin`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: randomBytes(1 << 20) });
          return { status: r.statusCode, body: r.body };
        },
      ],
      ["create a template", async () => api("POST", `${bundleUri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } }).then((r) => ({ status: r.status, body: r.res.body }))],
      ["list images", async () => api("GET", "users/alice/images").then((r) => ({ status: r.status, body: r.res.body }))],
      ["download the image", async () => server.request({ method: "GET", url: `/api/${imageUri}/downloads`, user: "alice" }).then((r) => ({ status: r.statusCode, body: r.statusCode === 200 ? "" : r.body }))],
      ["list publications", async () => api("GET", "users/alice/pimages").then((r) => ({ status: r.status, body: r.res.body }))],
    ];
    for (const [name, request] of requests) {
      await db.stop("fast");
      const down = await request();
      expect(down.status, `${name} with the database down: ${down.body}`).toBe(503);
      expect(down.body, name).toMatch(/metadata database is unreachable/);
      await db.start();
      const up = await request();
      expect(up.status, `${name} with the database back: ${up.body}`).toBeLessThan(300);
    }
    expect(leftovers()).toEqual([]);
  });

  it("leaves every job of the file in a final state", async () => {
    const all = await api<{ statuses: JsonStatus[] }>("GET", "users/alice/images/status");
    for (const s of all.json.statuses) expectClearEnd(s);
    const pubs = await api<{ statuses: JsonStatus[] }>("GET", "users/alice/pimages/status");
    for (const s of pubs.json.statuses) expectClearEnd(s);
  });
});
