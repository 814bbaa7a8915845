/**
 * Downloads through the API from a registry blob store (Debian's docker-registry on loopback,
 * behind a proxy that records what the registry is asked), over real HTTP: what the process
 * uploaded it serves from the copy it kept; the first download of a blob it did not write fetches
 * it once into a verified local copy (concurrent downloads follow that fetch), later ones are
 * served from it; the copies stay within KILN_BLOB_CACHE_SIZE; an evicted blob, an altered copy, a
 * Range request, concurrent downloads and a client that leaves all end with intact bytes and no
 * bad copy.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OciDriver } from "../../src/blobs/oci-driver.js";
import { basic, jsonClient, startTestServer, type TestServer } from "../helpers/api.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../helpers/registry.js";

const MiB = 1 << 20;
const BUDGET = 30 * MiB;
let registry: TestRegistry;
let proxy: TestProxy;
let server: TestServer;
let base: string;
let cacheDir: string;
let bundleUri: string;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);

interface Blob {
  name: string;
  uri: string;
  bytes: Buffer;
  digest: string;
}

beforeAll(async () => {
  registry = await startRegistry({ auth: "htpasswd", users: { kiln: "downloads-pw" } });
  proxy = await startProxy(registry.port);
  server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${proxy.url}/kiln`, KILN_BLOB_STORE_CREDENTIALS: "kiln:downloads-pw", KILN_BLOB_CACHE_SIZE: "30MiB" } });
  await server.createUser("alice");
  await server.rt.app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(server.rt.app.server.address() as AddressInfo).port}`;
  cacheDir = path.join(server.config.dataDir, "cache", "blob-store");
  bundleUri = (await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "files", version: "1" })).json.uri;
});
afterAll(async () => {
  await server?.close();
  await proxy?.stop();
  await registry?.stop();
});

let uploaded = 0;
/** A new artifact of `size` random bytes (its blob in the registry, not in the cache). */
async function upload(size: number): Promise<Blob> {
  const name = `blob-${uploaded++}.bin`;
  const bytes = randomBytes(size);
  const uri = (await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name })).json.uri;
  const up = await server.request({ method: "POST", url: `/api/${uri}/bin/${name}`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
  expect(up.statusCode, up.body).toBe(201);
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  // The process keeps what it uploads (see the first test): dropping that copy makes this process
  // one that did not write the blob (another api process, or a worker's upload).
  expect(cache().has(digest as `sha256:${string}`)).toBe(true);
  await cache().remove(digest as `sha256:${string}`);
  return { name, uri, bytes, digest };
}

const auth = { authorization: basic("alice", "alice-password") };
async function download(b: Blob, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${base}/api/${b.uri}/bin/${b.name}`, { headers: { ...auth, ...headers } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}
async function expectIntact(b: Blob): Promise<void> {
  const got = await download(b);
  expect(got.status).toBe(200);
  expect(got.body.length).toBe(b.bytes.length);
  expect(got.body.equals(b.bytes)).toBe(true);
}

const copyOf = (b: Blob): string => path.join(cacheDir, "sha256", b.digest.slice(7, 9), b.digest.slice(7));
/** The copy is published: on disk, and recorded as verified (a file just renamed into place is not yet). */
const cached = (b: Blob): boolean => existsSync(copyOf(b)) && cache().has(b.digest as `sha256:${string}`);
/** Bytes of the copies on disk. */
function onDisk(): number {
  const dir = path.join(cacheDir, "sha256");
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const d of readdirSync(dir)) for (const f of readdirSync(path.join(dir, d))) n += statSync(path.join(dir, d, f)).size;
  return n;
}
/** Fills in flight (temporary objects of the cache). */
const inFlight = (): string[] => (existsSync(path.join(cacheDir, "tmp")) ? readdirSync(path.join(cacheDir, "tmp")) : []);
/** Reads of a blob the registry answered (whole or ranges). */
const registryReads = (b: Blob): number => proxy.records.filter((r) => r.method === "GET" && (r.status === 200 || r.status === 206) && r.url.endsWith(`/blobs/${b.digest}`)).length;
const cache = (): OciDriver["cache"] => (server.rt.deps.blobs.driver as OciDriver).cache;

/** Waits for a state (never for a time): the suite's timeout bounds it. */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe("downloads from a registry blob store", () => {
  it("come from the local copy the upload left: what this process wrote it does not fetch back", async () => {
    const name = `kept-${uploaded++}.bin`;
    const bytes = randomBytes(3 * MiB);
    const uri = (await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name })).json.uri;
    const up = await server.request({ method: "POST", url: `/api/${uri}/bin/${name}`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
    expect(up.statusCode, up.body).toBe(201);
    const b = { name, uri, bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
    // In the registry (the store), and kept here as a verified copy.
    const hex = b.digest.slice(7);
    expect(readFileSync(path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data")).equals(bytes)).toBe(true);
    expect(cached(b)).toBe(true);
    await expectIntact(b);
    expect(registryReads(b)).toBe(0);
  });

  it("stream the first download from the registry, keep a verified copy, and serve the next from it", async () => {
    const b = await upload(4 * MiB);
    expect(existsSync(copyOf(b))).toBe(false);
    await expectIntact(b);
    expect(registryReads(b)).toBe(1);
    await waitFor(() => cached(b));
    expect(readFileSync(copyOf(b)).equals(b.bytes)).toBe(true);
    await expectIntact(b);
    await expectIntact(b);
    expect(registryReads(b)).toBe(1);
  });

  it("keep the copies within KILN_BLOB_CACHE_SIZE while downloads of several blobs proceed; an evicted blob downloads intact again", async () => {
    const blobs = [await upload(10 * MiB), await upload(10 * MiB), await upload(10 * MiB), await upload(10 * MiB)];
    let sampling = true;
    let most = 0;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, onDisk(), cache().size);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      // All at once, then each again: none is lost, whatever was evicted meanwhile.
      await Promise.all(blobs.map((b) => expectIntact(b)));
      await waitFor(() => inFlight().length === 0);
      for (const b of blobs) await expectIntact(b);
      await waitFor(() => inFlight().length === 0);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(most).toBeLessThanOrEqual(BUDGET);
    expect(onDisk()).toBeLessThanOrEqual(BUDGET);
    expect(cache().size).toBeLessThanOrEqual(BUDGET);
    // 40 MiB of blobs in a 30 MiB cache: the least recently used went, and downloads intact from the registry again.
    const evicted = blobs.find((b) => !existsSync(copyOf(b)))!;
    expect(evicted).toBeDefined();
    const before = registryReads(evicted);
    await expectIntact(evicted);
    expect(registryReads(evicted)).toBe(before + 1);
    await waitFor(() => cached(evicted));
    expect(onDisk()).toBeLessThanOrEqual(BUDGET);
  });

  it("never serve a copy altered on disk: the download comes intact from the registry and the copy is made again", async () => {
    const b = await upload(2 * MiB);
    await expectIntact(b);
    await waitFor(() => cached(b));
    const altered = Buffer.from(b.bytes);
    altered[12345] ^= 0x55;
    chmodSync(copyOf(b), 0o644);
    writeFileSync(copyOf(b), altered);
    const before = registryReads(b);
    await expectIntact(b);
    expect(registryReads(b)).toBe(before + 1);
    await waitFor(() => cached(b) && inFlight().length === 0);
    expect(readFileSync(copyOf(b)).equals(b.bytes)).toBe(true);
  });

  it("serve concurrent downloads of the same uncached blob intact, and keep one good copy", async () => {
    const b = await upload(8 * MiB);
    await Promise.all([expectIntact(b), expectIntact(b), expectIntact(b)]);
    await waitFor(() => cached(b) && inFlight().length === 0);
    expect(readFileSync(copyOf(b)).equals(b.bytes)).toBe(true);
  });

  it("answer Range requests on an uncached blob (without making a copy of a part) and on a cached one", async () => {
    const b = await upload(3 * MiB);
    const part = await download(b, { range: "bytes=100-1123" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-1123/${b.bytes.length}`);
    expect(part.body.equals(b.bytes.subarray(100, 1124))).toBe(true);
    const tail = await download(b, { range: "bytes=-5000" });
    expect(tail.status).toBe(206);
    expect(tail.body.equals(b.bytes.subarray(b.bytes.length - 5000))).toBe(true);
    // A range is not the blob: nothing of it is kept.
    expect(inFlight()).toEqual([]);
    expect(existsSync(copyOf(b))).toBe(false);

    await expectIntact(b);
    await waitFor(() => cached(b));
    const reads = registryReads(b);
    const cachedPart = await download(b, { range: `bytes=${2 * MiB}-${2 * MiB + 99}` });
    expect(cachedPart.status).toBe(206);
    expect(cachedPart.headers.get("etag")).toBe(`"${b.digest.slice(7)}"`);
    expect(cachedPart.body.equals(b.bytes.subarray(2 * MiB, 2 * MiB + 100))).toBe(true);
    const whole = await download(b, { range: "bytes=0-" });
    expect(whole.status).toBe(206);
    expect(whole.body.equals(b.bytes)).toBe(true);
    expect(registryReads(b)).toBe(reads);
    expect((await download(b, { "if-none-match": `"${b.digest.slice(7)}"` })).status).toBe(304);
  });

  it("keep making the copy when the client goes away mid-download: the next download is local", async () => {
    const b = await upload(28 * MiB);
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/api/${b.uri}/bin/${b.name}`, { headers: auth }, (res) => {
        expect(res.statusCode).toBe(200);
        res.once("data", () => {
          // The download follows the copy being made.
          expect(cache().filling(b.digest as `sha256:${string}`) || cached(b)).toBe(true);
          req.destroy();
          resolve();
        });
      });
      req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
    });
    await waitFor(() => cached(b) && inFlight().length === 0);
    expect(readFileSync(copyOf(b)).equals(b.bytes)).toBe(true);
    const reads = registryReads(b);
    await expectIntact(b);
    expect(registryReads(b)).toBe(reads);
  });

  it("cut the download short, and keep nothing, when the registry's bytes are not the blob's", async () => {
    const b = await upload(2 * MiB);
    const hex = b.digest.slice(7);
    const stored = path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const altered = Buffer.from(b.bytes);
    altered[777] ^= 0x01;
    chmodSync(stored, 0o644);
    writeFileSync(stored, altered);
    await expect(download(b)).rejects.toThrow();
    await waitFor(() => inFlight().length === 0);
    expect(existsSync(copyOf(b))).toBe(false);
  });
});
