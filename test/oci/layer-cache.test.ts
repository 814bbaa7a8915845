import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LayerCache } from "../../src/oci/layer-cache.js";
import { layerFormat, writeLayer } from "../../src/oci/layer.js";
import type { Layer } from "../../src/oci/types.js";
import { collect, sampleEntries, scratch, sha256 } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
let work: Awaited<ReturnType<typeof scratch>>;
let layer: Layer;

beforeAll(async () => {
  work = await scratch();
  layer = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "packages: sample" });
});
afterAll(async () => work.cleanup());

const strip = (l: Layer): Omit<Layer, "open"> => ({ mediaType: l.mediaType, digest: l.digest, diffId: l.diffId, size: l.size, uncompressedSize: l.uncompressedSize, createdBy: l.createdBy });

describe("LayerCache", () => {
  test("a put layer is found by its key, in another cache instance too, and streams its blob", async () => {
    const dir = path.join(work.dir, "cache1");
    const key = `packages=a,b clock=${clock.toISOString()} ${layerFormat()}`;
    await new LayerCache(dir, work.blobs).put(key, layer);
    const got = await new LayerCache(dir, work.blobs).get(key);
    expect(got && strip(got)).toEqual(strip(layer));
    expect(sha256(await collect(got!.open()))).toBe(layer.digest);
    expect(await new LayerCache(dir, work.blobs).get(`${key} `)).toBeUndefined();
    // Published by rename: no temp files left behind.
    expect((await readdir(dir)).every((f) => f.endsWith(".json"))).toBe(true);
  });

  test("a record whose blob left the store is a miss", async () => {
    const dir = path.join(work.dir, "cache2");
    const other = await writeLayer(sampleEntries().slice(0, 3), work.blobs, { clock, createdBy: "doomed" });
    const cache = new LayerCache(dir, work.blobs);
    await cache.put("k", other);
    expect(await cache.get("k")).toBeDefined();
    await work.blobs.delete(other.digest);
    expect(await cache.get("k")).toBeUndefined();
  });

  test("a damaged record is a miss; a new put replaces it; delete forgets", async () => {
    const dir = path.join(work.dir, "cache3");
    const cache = new LayerCache(dir, work.blobs);
    await cache.put("k", layer);
    const [file] = await readdir(dir);
    await writeFile(path.join(dir, file!), '{"digest": "sha256:nope"');
    expect(await cache.get("k")).toBeUndefined();
    await cache.put("k", layer);
    expect((await cache.get("k"))?.digest).toBe(layer.digest);
    await cache.delete("k");
    expect(await cache.get("k")).toBeUndefined();
  });
});
