/**
 * The blob store's contract, run against every storage driver (there is one: the filesystem).
 * Content addressing, verification on the way in and out, and nothing left behind by a write
 * that did not complete.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { FsDriver } from "../../src/blobs/driver.js";
import { KilnError } from "../../src/domain/errors.js";

const drivers = [{ name: "filesystem", make: (root: string) => new FsDriver(root) }];

const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe.each(drivers)("BlobStore on the $name driver", ({ make }) => {
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
    expect(await store.list()).toEqual([info.digest]);
    expect(leftovers()).toEqual([]);
  });

  it("stores the same content once", async () => {
    const [a, b] = await Promise.all([store.put("same"), store.put(Buffer.from("same"))]);
    expect(a.digest).toBe(b.digest);
    expect(await store.list()).toHaveLength(1);
    expect(leftovers()).toEqual([]);
  });

  it("refuses bytes that do not match the expected digest or size, and keeps nothing", async () => {
    await expect(store.put("abc", { digest: sha("abd") })).rejects.toThrow(/digest mismatch/);
    await expect(store.put("abc", { size: 4 })).rejects.toThrow(/size mismatch/);
    expect(await store.list()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it("turns an input above maxSize into a 413 and keeps nothing", async () => {
    const err = await store.put(Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), {}, { maxSize: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).status).toBe(413);
    expect(await store.list()).toEqual([]);
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
    expect(await store.list()).toEqual([]);
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

  it("detects a blob corrupted on disk when reading it verified", async () => {
    const info = await store.put("trustworthy");
    const file = store.path(info.digest);
    chmodSync(file, 0o644);
    writeFileSync(file, "tampered!!!");
    await expect(text(store.openVerified(info.digest, info.size))).rejects.toThrow(/corrupt/);
  });
});
