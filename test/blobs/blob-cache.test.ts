/**
 * The registry driver's local cache (blob-cache.ts) on a real registry (Debian's docker-registry on
 * loopback, behind a recording proxy that counts blob reads): within its budget, least recently
 * used evicted first, copies in use pinned, a copy altered on disk never handed out, rebuilt from
 * disk at start, leftovers of interrupted fills removed.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Readable, Transform } from "node:stream";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BlobStore, type Digest } from "../../src/blobs/blob-store.js";
import { OciDriver } from "../../src/blobs/oci-driver.js";
import { BlobCache } from "../../src/blobs/blob-cache.js";
import { FsDriver, type ByteReader, type LocalCopy } from "../../src/blobs/driver.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../helpers/registry.js";

const MiB = 1 << 20;
let registry: TestRegistry;
let proxy: TestProxy;
beforeAll(async () => {
  registry = await startRegistry({ auth: "htpasswd", users: { kiln: "cache-pw" } });
  proxy = await startProxy(registry.port);
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

let root: string;
let prefix: string;
const driver = (cacheSize: number): OciDriver =>
  new OciDriver({ registry: proxy.url, prefix, credentials: { username: "kiln", password: "cache-pw" }, localDir: root, cacheSize });
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), "kiln-blob-cache-"));
  prefix = `kiln/${path.basename(root).toLowerCase().replace(/[^a-z0-9]/g, "")}`;
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Buffer): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const copyPath = (digest: Digest): string => path.join(root, "sha256", digest.slice(7, 9), digest.slice(7));
/** Bytes of the copies on disk. */
const onDisk = (): number => {
  const dir = path.join(root, "sha256");
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const d of readdirSync(dir)) for (const f of readdirSync(path.join(dir, d))) n += statSync(path.join(dir, d, f)).size;
  return n;
};
/** GETs of a blob the registry answered (fetches, not HEADs). */
const reads = (digest: Digest): number => proxy.records.filter((r) => r.method === "GET" && r.status === 200 && r.url.endsWith(`/blobs/${digest}`)).length;

/** Blobs of `size` random bytes, pushed to the registry through a store of their own. */
async function pushBlobs(count: number, size: number): Promise<{ digest: Digest; bytes: Buffer }[]> {
  const store = new BlobStore(driver(0));
  const out = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(size);
    await store.put(bytes);
    out.push({ digest: sha(bytes), bytes });
  }
  return out;
}

describe("the registry driver's local cache", () => {
  it("keeps within its budget, evicting the least recently used, and fetches an evicted blob again intact", async () => {
    const blobs = await pushBlobs(4, 3 * MiB);
    const d = driver(7 * MiB);
    const store = new BlobStore(d);
    for (const b of blobs) {
      const copy = await store.localCopy(b.digest);
      expect(readFileSync(copy.path).equals(b.bytes)).toBe(true);
      copy.release();
      expect(d.cache.size).toBeLessThanOrEqual(7 * MiB);
      expect(onDisk()).toBeLessThanOrEqual(7 * MiB);
    }
    // The two most recent stay, the first two went.
    expect(blobs.map((b) => existsSync(copyPath(b.digest)))).toEqual([false, false, true, true]);
    // A cached blob is not fetched again; an evicted one is, intact.
    const before = reads(blobs[3]!.digest);
    (await store.localCopy(blobs[3]!.digest)).release();
    expect(reads(blobs[3]!.digest)).toBe(before);
    const firstReads = reads(blobs[0]!.digest);
    const again = await store.localCopy(blobs[0]!.digest);
    expect(readFileSync(again.path).equals(blobs[0]!.bytes)).toBe(true);
    again.release();
    expect(reads(blobs[0]!.digest)).toBe(firstReads + 1);
    // blobs[2] was the least recently used: it made room.
    expect(blobs.map((b) => existsSync(copyPath(b.digest)))).toEqual([true, false, false, true]);
    expect(onDisk()).toBeLessThanOrEqual(7 * MiB);
  });

  it("never evicts a copy in use: a path handed out stays readable until released", async () => {
    const blobs = await pushBlobs(3, 3 * MiB);
    const d = driver(4 * MiB);
    const store = new BlobStore(d);
    const held = await store.localCopy(blobs[0]!.digest);
    for (const b of blobs.slice(1)) (await store.localCopy(b.digest)).release();
    // The copy in use stayed although least recently used; the others made room (removed from
    // disk once their own users released them).
    expect(readFileSync(held.path).equals(blobs[0]!.bytes)).toBe(true);
    await waitFor(() => !existsSync(copyPath(blobs[2]!.digest)));
    expect(blobs.map((b) => existsSync(copyPath(b.digest)))).toEqual([true, false, false]);
    expect(onDisk()).toBeLessThanOrEqual(4 * MiB);
    held.release();
    held.release();
    expect(d.cache.size).toBe(3 * MiB);
  });

  it("with a budget of 0 still hands out a blob as a file, removed once released", async () => {
    const [b] = await pushBlobs(1, MiB);
    const d = driver(0);
    const [one, two] = await Promise.all([d.localCopy(`sha256/${b!.digest.slice(7, 9)}/${b!.digest.slice(7)}`), d.localCopy(`sha256/${b!.digest.slice(7, 9)}/${b!.digest.slice(7)}`)]);
    expect(readFileSync(one!.path).equals(b!.bytes)).toBe(true);
    expect(readFileSync(two!.path).equals(b!.bytes)).toBe(true);
    one!.release();
    two!.release();
    await waitFor(() => onDisk() === 0);
  });

  it("fetches a blob asked for by several at once only once", async () => {
    const [b] = await pushBlobs(1, 2 * MiB);
    const store = new BlobStore(driver(8 * MiB));
    const copies = await Promise.all([1, 2, 3].map(() => store.localCopy(b!.digest)));
    for (const c of copies) expect(readFileSync(c.path).equals(b!.bytes)).toBe(true);
    copies.forEach((c) => c.release());
    expect(reads(b!.digest)).toBe(1);
  });

  it("never hands out a copy altered on disk: it is dropped and fetched again", async () => {
    const [b] = await pushBlobs(1, MiB);
    const store = new BlobStore(driver(8 * MiB));
    (await store.localCopy(b!.digest)).release();
    const file = copyPath(b!.digest);
    const altered = Buffer.from(b!.bytes);
    altered[1000] ^= 0xff;
    chmodSync(file, 0o644);
    writeFileSync(file, altered);
    const copy = await store.localCopy(b!.digest);
    expect(readFileSync(copy.path).equals(b!.bytes)).toBe(true);
    copy.release();
    expect(reads(b!.digest)).toBe(2);
  });

  it("is rebuilt from disk at start: sizes and order kept, copies hashed before their first use, leftovers removed", async () => {
    const blobs = await pushBlobs(3, MiB);
    const first = new BlobStore(driver(8 * MiB));
    for (const b of blobs) (await first.localCopy(b.digest)).release();
    // One copy altered behind the cache's back while no process ran, one fill interrupted.
    const altered = Buffer.from(blobs[1]!.bytes);
    altered[0] ^= 0xff;
    chmodSync(copyPath(blobs[1]!.digest), 0o644);
    writeFileSync(copyPath(blobs[1]!.digest), altered);
    const part = `${copyPath(blobs[0]!.digest)}.abcdef.part`;
    writeFileSync(part, "half a blob");
    mkdirSync(path.join(root, "sha256", "zz"), { recursive: true });

    const d = driver(8 * MiB);
    const store = new BlobStore(d);
    await d.cache.load();
    expect(d.cache.size).toBe(3 * MiB);
    expect(existsSync(part)).toBe(false);
    const readsBefore = blobs.map((b) => reads(b.digest));
    for (const b of blobs) {
      const copy = await store.localCopy(b.digest);
      expect(readFileSync(copy.path).equals(b.bytes)).toBe(true);
      copy.release();
    }
    // The intact copies were used as they were; the altered one was fetched again.
    expect(blobs.map((b, i) => reads(b.digest) - readsBefore[i]!)).toEqual([0, 1, 0]);
  });

  it("a budget lowered between runs applies at start", async () => {
    const blobs = await pushBlobs(3, MiB);
    const first = new BlobStore(driver(8 * MiB));
    for (const b of blobs) (await first.localCopy(b.digest)).release();
    const d = driver(2 * MiB);
    await d.cache.load();
    expect(d.cache.size).toBeLessThanOrEqual(2 * MiB);
    expect(onDisk()).toBeLessThanOrEqual(2 * MiB);
  });

  it("lets a download follow a fetch in flight: one read of the registry, every byte intact", async () => {
    const [b, c] = await pushBlobs(2, 6 * MiB);
    const d = driver(64 * MiB);
    // The registry's bytes held back until the downloads follow the fetch.
    let letThrough!: () => void;
    const gate = new Promise<void>((resolve) => (letThrough = resolve));
    const cache = new BlobCache(new FsDriver(root), 64 * MiB, async (digest) => {
      const stream = await d.open(`sha256/${digest.slice(7, 9)}/${digest.slice(7)}`);
      const held = new Transform({ transform: (chunk: Buffer, _enc, cb) => void gate.then(() => cb(null, chunk)) });
      return { stream: stream.pipe(held), size: 6 * MiB };
    });
    const fetching = [cache.prefetch(b!.digest, 6 * MiB), cache.prefetch(c!.digest, 6 * MiB)];
    await waitFor(() => cache.filling(b!.digest) && cache.filling(c!.digest));
    const whole = await cache.openDownload(b!.digest, 6 * MiB, { start: 0, end: 6 * MiB - 1 });
    const part = await cache.openDownload(c!.digest, 6 * MiB, { start: MiB, end: 2 * MiB - 1 });
    // Readers of the copies being made, not copies nor streams of their own.
    expect(whole && "read" in whole && !(whole instanceof Readable)).toBe(true);
    expect(part && "read" in part && !(part instanceof Readable)).toBe(true);
    const got = [readAll(whole), readAll(part, undefined, MiB)];
    letThrough();
    await Promise.all(fetching);
    const [gotWhole, gotPart] = await Promise.all(got);
    expect(gotWhole!.equals(b!.bytes)).toBe(true);
    expect(gotPart!.equals(c!.bytes.subarray(MiB, 2 * MiB))).toBe(true);
    expect([reads(b!.digest), reads(c!.digest)]).toEqual([1, 1]);
    expect(cache.has(b!.digest) && cache.has(c!.digest)).toBe(true);
    expect(readFileSync(copyPath(b!.digest)).equals(b!.bytes)).toBe(true);
  });

  it("fails a download following a fetch whose bytes are not the blob's before its last byte, and keeps no copy", async () => {
    const [b] = await pushBlobs(1, 3 * MiB);
    const hex = b!.digest.slice(7);
    const stored = path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const altered = Buffer.from(b!.bytes);
    altered[4321] ^= 0x01;
    chmodSync(stored, 0o644);
    writeFileSync(stored, altered);
    const d = driver(64 * MiB);
    const reader = await d.cache.openDownload(b!.digest, b!.bytes.length, { start: 0, end: b!.bytes.length - 1 });
    let sent = 0;
    await expect(
      readAll(reader, (n) => {
        sent += n;
      }),
    ).rejects.toThrow(/corrupt/);
    expect(sent).toBeLessThan(b!.bytes.length);
    await waitFor(() => !d.cache.filling(b!.digest));
    expect(d.cache.has(b!.digest)).toBe(false);
    expect(existsSync(copyPath(b!.digest))).toBe(false);
    writeFileSync(stored, b!.bytes);
  });

  it("lets a download whose fetch stalls read the rest from the registry, intact, without waiting for the fetch", async () => {
    const [b] = await pushBlobs(1, 8 * MiB);
    const d = driver(64 * MiB);
    const key = `sha256/${b!.digest.slice(7, 9)}/${b!.digest.slice(7)}`;
    // A fetch (a registry connection, a disk: either makes no progress) that stops after 3 MiB
    // until released.
    let letThrough!: () => void;
    const resumed = new Promise<void>((resolve) => (letThrough = resolve));
    let passed = 0;
    const stalling = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        passed += chunk.length;
        if (passed <= 3 * MiB) return cb(null, chunk);
        void resumed.then(() => cb(null, chunk));
      },
    });
    const cache = new BlobCache(
      new FsDriver(root),
      64 * MiB,
      async () => ({ stream: (await d.open(key)).pipe(stalling), size: b!.bytes.length }),
      { openRange: (_digest, range) => d.open(key, range), followStallMs: 200 },
    );
    const got = await readAll(await cache.openDownload(b!.digest, b!.bytes.length, { start: 0, end: b!.bytes.length - 1 }));
    // The client got every byte while the fetch was stalled: the registry sent the rest again.
    expect(got.equals(b!.bytes)).toBe(true);
    expect(cache.filling(b!.digest)).toBe(true);
    expect(proxy.records.filter((r) => r.method === "GET" && r.status === 206 && r.url.endsWith(`/blobs/${b!.digest}`)).length).toBe(1);
    // Once the fetch goes on, it completes and its copy is published.
    letThrough();
    await waitFor(() => cache.has(b!.digest));
    expect(readFileSync(copyPath(b!.digest)).equals(b!.bytes)).toBe(true);
  });

  it("lets a download whose fetch fails midway (a connection cut) read the rest from the registry, intact, and keeps no copy", async () => {
    const [b] = await pushBlobs(1, 8 * MiB);
    const d = driver(64 * MiB);
    const key = `sha256/${b!.digest.slice(7, 9)}/${b!.digest.slice(7)}`;
    let passed = 0;
    const cut = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        passed += chunk.length;
        if (passed <= 3 * MiB) cb(null, chunk);
        else cb(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      },
    });
    const cache = new BlobCache(new FsDriver(root), 64 * MiB, async () => ({ stream: (await d.open(key)).pipe(cut), size: b!.bytes.length }), {
      openRange: (_digest, range) => d.open(key, range),
    });
    const got = await readAll(await cache.openDownload(b!.digest, b!.bytes.length, { start: 0, end: b!.bytes.length - 1 }));
    expect(got.equals(b!.bytes)).toBe(true);
    expect(proxy.records.filter((r) => r.method === "GET" && r.status === 206 && r.url.endsWith(`/blobs/${b!.digest}`)).length).toBe(1);
    await waitFor(() => !cache.filling(b!.digest));
    expect(cache.has(b!.digest)).toBe(false);
    expect(readdirSync(path.join(root, "tmp"))).toEqual([]);
  });

  it("keeps what the process writes as its copy: read back without the registry", async () => {
    const d = driver(64 * MiB);
    const store = new BlobStore(d);
    const bytes = randomBytes(2 * MiB);
    const { digest } = await store.put(bytes);
    expect(d.cache.has(digest)).toBe(true);
    const hex = digest.slice(7);
    expect(readFileSync(path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data")).equals(bytes)).toBe(true);
    expect((await readAll(store.open(digest))).equals(bytes)).toBe(true);
    expect((await readAll(store.open(digest, { start: 10, end: 19 }))).equals(bytes.subarray(10, 20))).toBe(true);
    expect(reads(digest)).toBe(0);
    expect(proxy.records.filter((r) => r.method === "GET" && r.url.endsWith(`/blobs/${digest}`) && r.status === 206).length).toBe(0);
  });

  it("publishes a staged blob even if a collector deleted it from the registry between staging and publication", async () => {
    const d = driver(0);
    const store = new BlobStore(d);
    const w = store.ingest();
    const bytes = randomBytes(MiB);
    w.end(bytes);
    const { digest } = await w.seal();
    await w.stage();
    expect(await d.client.blobSize(d.repository, digest)).toBe(bytes.length);
    await d.client.deleteBlob(d.repository, digest);
    expect(await d.client.blobSize(d.repository, digest)).toBeUndefined();
    await w.publish();
    expect(await d.client.blobSize(d.repository, digest)).toBe(bytes.length);
    expect((await readAll(store.openVerified(digest, bytes.length))).equals(bytes)).toBe(true);
  });

  it("forgets a blob deleted from the store, after its last reader", async () => {
    const [b] = await pushBlobs(1, MiB);
    const d = driver(8 * MiB);
    const store = new BlobStore(d);
    const held = await store.localCopy(b!.digest);
    await store.delete(b!.digest);
    expect(readFileSync(held.path).equals(b!.bytes)).toBe(true);
    held.release();
    await waitFor(() => !existsSync(held.path));
    expect(d.cache.size).toBe(0);
  });
});

/** Every byte of a download's source: a stream, a local copy (released), or a reader (closed). */
async function readAll(source: Readable | LocalCopy | ByteReader | undefined, onRead?: (n: number) => void, start = 0): Promise<Buffer> {
  if (source === undefined) throw new Error("nothing to read");
  if (source instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const c of source) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  if (!("read" in source)) {
    try {
      return readFileSync(source.path);
    } finally {
      source.release();
    }
  }
  const chunks: Buffer[] = [];
  try {
    for (let pos = start; ; ) {
      const buf = Buffer.alloc(MiB);
      const { bytesRead } = await source.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      onRead?.(bytesRead);
      chunks.push(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await source.close();
  }
  return Buffer.concat(chunks);
}

/** Waits for a state (never for a time): the suite's timeout bounds it. */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe("KILN_BLOB_CACHE_SIZE", () => {
  it("takes the sizes' units, defaults to 10 GiB, and names itself when it is not a size", async () => {
    const { loadConfig } = await import("../../src/server/config.js");
    const env = { KILN_DATA_DIR: path.join(tmpdir(), "kiln-config-unused") };
    expect(loadConfig(env).blobCacheSize).toBe(10 * 1024 ** 3);
    expect(loadConfig({ ...env, KILN_BLOB_CACHE_SIZE: "512MiB" }).blobCacheSize).toBe(512 * MiB);
    expect(loadConfig({ ...env, KILN_BLOB_CACHE_SIZE: "0" }).blobCacheSize).toBe(0);
    expect(() => loadConfig({ ...env, KILN_BLOB_CACHE_SIZE: "lots" })).toThrow(/KILN_BLOB_CACHE_SIZE: "lots" is not a size/);
  });
});

describe("KILN_PREFETCH_IMAGES", () => {
  it("is on by default, takes true or false, and names itself when it is neither", async () => {
    const { loadConfig } = await import("../../src/server/config.js");
    const env = { KILN_DATA_DIR: path.join(tmpdir(), "kiln-config-unused") };
    expect(loadConfig(env).prefetchImages).toBe(true);
    expect(loadConfig({ ...env, KILN_PREFETCH_IMAGES: "false" }).prefetchImages).toBe(false);
    expect(loadConfig({ ...env, KILN_PREFETCH_IMAGES: "no" }).prefetchImages).toBe(false);
    expect(loadConfig({ ...env, KILN_PREFETCH_IMAGES: "TRUE" }).prefetchImages).toBe(true);
    expect(() => loadConfig({ ...env, KILN_PREFETCH_IMAGES: "sometimes" })).toThrow(/KILN_PREFETCH_IMAGES must be true or false, got "sometimes"/);
  });
});
