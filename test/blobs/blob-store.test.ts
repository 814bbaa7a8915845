/**
 * The blob store's contract, run against every storage driver: the filesystem, and a real
 * registry (Debian's docker-registry on loopback) as the blob store of several processes.
 * Content addressing, verification on the way in and out, and nothing left behind by a write
 * that did not complete.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { FsDriver } from "../../src/blobs/driver.js";
import { OciDriver } from "../../src/blobs/oci-driver.js";
import { KilnError } from "../../src/domain/errors.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startRegistry({ auth: "htpasswd", users: { kiln: "blob-store-pw" } });
});
afterAll(async () => registry?.stop());

interface DriverCase {
  name: string;
  make: (root: string) => FsDriver | OciDriver;
  /** Replaces the stored bytes of a blob behind the store's back. */
  corrupt: (store: BlobStore, digest: `sha256:${string}`, bytes: string) => Promise<void> | void;
}

const drivers: DriverCase[] = [
  {
    name: "filesystem",
    make: (root) => new FsDriver(root),
    corrupt: (store, digest, bytes) => {
      const file = store.path(digest);
      chmodSync(file, 0o644);
      writeFileSync(file, bytes);
    },
  },
  {
    name: "registry",
    // A repository prefix of its own for each test: stores do not see each other's blobs.
    make: (root) => new OciDriver({ registry: registry.url, prefix: `kiln/${path.basename(root).toLowerCase().replace(/[^a-z0-9]/g, "")}`, credentials: { username: "kiln", password: "blob-store-pw" }, localDir: root }),
    corrupt: async (store, digest, bytes) => {
      // Read from the registry: the copy the writing process kept is dropped.
      await (store.driver as OciDriver).cache.remove(digest);
      const hex = digest.slice(7);
      const file = path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      chmodSync(file, 0o644);
      writeFileSync(file, bytes);
    },
  },
];

const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe.each(drivers)("BlobStore on the $name driver", ({ make, corrupt }) => {
  let root: string;
  let store: BlobStore;
  const leftovers = (): string[] => {
    try {
      return readdirSync(path.join(root, "tmp"));
    } catch {
      return [];
    }
  };
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "kiln-blobs-"));
    store = new BlobStore(make(root));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("stores a stream under its sha256 and computes md5 on the way", async () => {
    const data = Buffer.from("hello blobs\n".repeat(10_000));
    const info = await store.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
    expect(info.digest).toBe(sha(data));
    expect(info.size).toBe(data.length);
    expect(info.md5).toBe(createHash("md5").update(data).digest("hex"));
    expect(await store.stat(info.digest)).toEqual({ digest: info.digest, size: data.length });
    expect(await text(store.open(info.digest))).toBe(data.toString());
    expect(await text(store.open(info.digest, { start: 6, end: 10 }))).toBe("blobs");
    expect(await text(await store.openStream(info.digest, { start: 6, end: 10 }))).toBe("blobs");
    expect(await text(await store.openStream(info.digest))).toBe(data.toString());
    expect(await text(store.open(info.digest, { start: data.length - 3, end: data.length - 1 }))).toBe("bs\n");
    expect(await store.has(sha("not stored"))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("stores the same content once", async () => {
    const [a, b] = await Promise.all([store.put("same"), store.put(Buffer.from("same"))]);
    expect(a.digest).toBe(b.digest);
    expect(await text(store.open(a.digest))).toBe("same");
    expect(leftovers()).toEqual([]);
  });

  it("refuses bytes that do not match the expected digest or size, and keeps nothing", async () => {
    await expect(store.put("abc", { digest: sha("abd") })).rejects.toThrow(/digest mismatch/);
    await expect(store.put("abc", { size: 4 })).rejects.toThrow(/size mismatch/);
    expect(await store.has(sha("abc"))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("turns an input above maxSize into a 413 and keeps nothing", async () => {
    const err = await store.put(Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), {}, { maxSize: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).status).toBe(413);
    expect(await store.has(sha(Buffer.alloc(1200)))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("leaves nothing behind when the source fails mid-way", async () => {
    const source = new Readable({
      read() {
        this.push(Buffer.alloc(64 * 1024, 1));
        setTimeout(() => this.destroy(new Error("connection reset")), 5);
      },
    });
    await expect(store.put(source)).rejects.toThrow(/connection reset/);
    expect(await store.has(sha(Buffer.alloc(64 * 1024, 1)))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("lets cancel() run twice and after commit()", async () => {
    const w = store.ingest();
    w.end("x");
    const info = await w.commit();
    await w.cancel();
    await w.cancel();
    expect(await store.has(info.digest)).toBe(true);
    const w2 = store.ingest();
    w2.write("partial");
    await w2.cancel();
    await w2.cancel();
    expect(leftovers()).toEqual([]);
  });

  it("detects a blob corrupted in storage when reading it verified", async () => {
    const info = await store.put("trustworthy");
    await corrupt(store, info.digest, "tampered!!!");
    await expect(text(store.openVerified(info.digest, info.size))).rejects.toThrow(/corrupt/);
  });

  it("deletes a blob, serves it as a local file, and answers a missing blob's read with an error", async () => {
    const info = await store.put("to be removed");
    const copy = await store.localCopy(info.digest);
    expect(readFileSync(copy.path, "utf8")).toBe("to be removed");
    copy.release();
    await store.delete(info.digest);
    expect(await store.has(info.digest)).toBe(false);
    await expect(text(store.open(info.digest))).rejects.toThrow();
    expect(leftovers()).toEqual([]);
  });

  it("stores and reads back a blob larger than one upload request, by ranges too", async () => {
    const big = Buffer.alloc(20 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const info = await store.put(big);
    expect(info.digest).toBe(sha(big));
    const part = Buffer.concat(await (store.open(info.digest, { start: (17 << 20) + 5, end: (18 << 20) + 4 }).toArray() as Promise<Buffer[]>));
    expect(part.equals(big.subarray((17 << 20) + 5, (18 << 20) + 5))).toBe(true);
    expect(await text(store.openVerified(info.digest, info.size)).then((t) => t.length)).toBeGreaterThan(0);
    expect(leftovers()).toEqual([]);
  });
});
