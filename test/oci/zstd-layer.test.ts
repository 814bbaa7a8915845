/**
 * zstd layers (`--compression zstd`): written through the host's `zstd` program, checked with the
 * real `zstd`, `skopeo` and Debian's `docker-registry`; refused where a consumer reads gzip only.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { writeDockerArchive } from "../../src/oci/docker-archive.js";
import { assembleImage, assembleIndex } from "../../src/oci/image.js";
import { layerFormat, writeLayer } from "../../src/oci/layer.js";
import { loadImage } from "../../src/oci/load.js";
import { MediaTypes } from "../../src/oci/types.js";
import { ZSTD_LEVEL } from "../../src/oci/zstd.js";
import { pushImage } from "../../src/registry/push.js";
import { run, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { collect, repeatingFile, sampleEntries, scratch, sha256, stallingFile } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
let work: Awaited<ReturnType<typeof scratch>>;
let registry: TestRegistry;

beforeAll(async () => {
  work = await scratch();
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
  await work?.cleanup();
});

async function tmpFiles(): Promise<string[]> {
  return readdir(path.join(work.dir, "store", "tmp")).catch(() => []);
}

/** The `zstd` processes this test process started and that are still alive. */
function zstdChildren(): string[] {
  try {
    return execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
      .split("\n")
      .filter((l) => /\bzstd$/.test(l.trim()));
  } catch {
    return []; // ps exits 1 when there is no child at all
  }
}

describe("writeLayer with compression zstd", () => {
  test("one zstd frame holding the same tar as the gzip layer: digest, diffId and sizes as sha256sum, zstd and wc say", async () => {
    const z = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "sample", compression: "zstd" });
    const g = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "sample" });
    expect(z.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect(g.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    const file = work.blobs.path(z.digest);
    const bytes = await readFile(file);
    expect(bytes.subarray(0, 4).toString("hex")).toBe("28b52ffd"); // zstd frame magic
    expect(sha256(bytes)).toBe(z.digest);
    expect(bytes.length).toBe(z.size);
    const tar = execFileSync("zstd", ["-dc", file]);
    expect(sha256(tar)).toBe(z.diffId);
    expect(tar.length).toBe(z.uncompressedSize);
    // The diffId is the tar's: the same as the gzip layer's, only the compressed digest differs.
    expect([z.diffId, z.uncompressedSize]).toEqual([g.diffId, g.uncompressedSize]);
    expect(z.digest).not.toBe(g.digest);
    expect(sha256(await collect(z.open()))).toBe(z.digest);
    // The frame checksum is written (zstd -t checks it).
    expect(execFileSync("zstd", ["-lv", file], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })).toMatch(/Check:\s+XXH64/);
  });

  test("is reproducible, and its format (part of the cache key) names level, mode and zstd version", async () => {
    const a = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x", compression: "zstd" });
    const b = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x", compression: "zstd" });
    expect([b.digest, b.size]).toEqual([a.digest, a.size]);
    // The bytes are those of the zstd program with the named settings on the same tar.
    const tar = execFileSync("zstd", ["-dc", work.blobs.path(a.digest)]);
    expect(sha256(execFileSync("zstd", ["-q", "-c", `-${ZSTD_LEVEL}`, "-T1"], { input: tar }))).toBe(a.digest);
    const version = /v(\d+\.\d+\.\d+)/.exec(execFileSync("zstd", ["--version"], { encoding: "utf8" }))![1];
    expect(layerFormat(undefined, "zstd")).toBe(`kiln-tar/1 zstd/${ZSTD_LEVEL} T1 zstd-cli/${version}`);
    expect(layerFormat(undefined, "zstd")).not.toBe(layerFormat());
    expect(layerFormat(undefined, "gzip")).toBe(layerFormat());
  });

  test("an abort mid-layer rejects as cancelled, removes the temp blob and leaves no zstd process", async () => {
    const before = await work.blobs.list();
    const controller = new AbortController();
    const { entry: stalled, opened } = stallingFile("etc/stalled", randomBytes(3 << 20));
    const pending = writeLayer([...sampleEntries(), stalled], work.blobs, { clock, createdBy: "x", compression: "zstd", signal: controller.signal });
    const settled = pending.catch((e: unknown) => e);
    try {
      const deadline = Date.now() + 20_000;
      while (!(opened() && (await tmpFiles()).length === 1 && zstdChildren().length === 1)) {
        if (Date.now() > deadline) throw new Error("the write never reached the stalled entry");
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      controller.abort(new Error("user cancelled"));
    }
    const err = await settled;
    expect(isKilnError(err, "cancelled")).toBe(true);
    expect(await tmpFiles()).toEqual([]);
    expect(await work.blobs.list()).toEqual(before);
    // The program is killed, then reaped: wait for it to be gone.
    const deadline = Date.now() + 10_000;
    while (zstdChildren().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(zstdChildren()).toEqual([]);
  });

  test("writing a 1 GiB layer grows the RSS by a constant, far below the layer's size", async () => {
    const size = 1 << 30;
    const block = randomBytes(1 << 20); // repeated: zstd's window finds it, so the program stays fast
    const generated = repeatingFile("huge.bin", size, block);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const layer = await writeLayer([generated], work.blobs, { clock, createdBy: "huge", compression: "zstd" });
      expect(layer.uncompressedSize).toBe(512 + size + 1024);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(peak - before).toBeLessThan(200e6);
  });
});

describe("an image of zstd layers", () => {
  const zstdImage = async (architecture = "amd64", variant?: string) => {
    const layer = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "sample", compression: "zstd" });
    return assembleImage([layer], { architecture, ...(variant ? { variant } : {}), config: { Cmd: ["/bin/sh"] }, clock, blobs: work.blobs });
  };

  test("has an OCI manifest naming the zstd media type and no Docker manifest (schema 2 has no zstd type)", async () => {
    const image = await zstdImage();
    const manifest = JSON.parse(image.manifest.toString("utf8")) as { layers: Array<{ mediaType: string }> };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayerZstd]);
    expect(image.dockerManifest).toBeUndefined();
    expect(image.dockerManifestDigest).toBeUndefined();
  });

  test("is refused by the docker-archive writer with a message naming the layer's media type", async () => {
    const image = await zstdImage();
    const sink = new PassThrough();
    sink.resume();
    const err = await writeDockerArchive(sink, image, work.blobs).catch((e: unknown) => e);
    expect(isKilnError(err, "unsupportedMediaType")).toBe(true);
    expect((err as Error).message).toMatch(/docker-archive is written from gzip layers only; layer sha256:[0-9a-f]{64} is application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/);
  });

  test("is refused, naming the media type, where a stored image is read back as gzip (loadImage)", async () => {
    const image = await zstdImage();
    const err = await loadImage(work.blobs, image.manifestDigest).catch((e: unknown) => e);
    expect(isKilnError(err, "unsupportedMediaType")).toBe(true);
    expect((err as Error).message).toBe(`layer ${image.layers[0]!.digest} has media type ${MediaTypes.ociLayerZstd}; only gzip layers are supported`);
  });

  test("is pushed to docker-registry with its OCI manifest; skopeo reads the zstd layers and copies them unchanged", async () => {
    const image = await zstdImage();
    const result = await pushImage(image, work.blobs, { registry: registry.url, repository: "kiln/zstd", tag: "v1" }, {});
    expect(result.manifestDigest).toBe(image.manifestDigest);
    const { stdout: raw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/kiln/zstd:v1`]);
    expect(Buffer.from(raw)).toEqual(image.manifest);
    const doc = JSON.parse(raw) as { mediaType: string; layers: Array<{ mediaType: string; digest: string }> };
    expect(doc.mediaType).toBe(MediaTypes.ociManifest);
    expect(doc.layers).toEqual([expect.objectContaining({ mediaType: MediaTypes.ociLayerZstd, digest: image.layers[0]!.digest })]);
    const { stdout: inspected } = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/zstd:v1`]);
    expect(JSON.parse(inspected) as unknown).toMatchObject({ Architecture: "amd64", Layers: [image.layers[0]!.digest] });
    // skopeo copies it back to an OCI layout with the same zstd blob, which still decompresses to the diffId.
    const layout = path.join(work.dir, "copied");
    await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${registry.host}/kiln/zstd:v1`, `oci:${layout}:v1`]);
    const blob = path.join(layout, "blobs/sha256", image.layers[0]!.digest.slice(7));
    expect(sha256(await readFile(blob))).toBe(image.layers[0]!.digest);
    expect(sha256(execFileSync("zstd", ["-dc", blob]))).toBe(image.layers[0]!.diffId);
  });

  test("a multi-architecture image of zstd layers is pushed as an OCI image index", async () => {
    const index = await assembleIndex([await zstdImage("amd64"), await zstdImage("arm64", "v8")], work.blobs);
    expect(index.dockerList).toBeUndefined();
    const result = await pushImage(index, work.blobs, { registry: registry.url, repository: "kiln/zstd-multi", tag: "v1" }, {});
    expect(result.manifestDigest).toBe(index.indexDigest);
    const { stdout: raw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/kiln/zstd-multi:v1`]);
    const doc = JSON.parse(raw) as { mediaType: string; manifests: Array<{ mediaType: string; platform: { architecture: string } }> };
    expect(doc.mediaType).toBe(MediaTypes.ociIndex);
    expect(doc.manifests.map((m) => [m.mediaType, m.platform.architecture])).toEqual([
      [MediaTypes.ociManifest, "amd64"],
      [MediaTypes.ociManifest, "arm64"],
    ]);
    const { stdout: armImage } = await run("skopeo", ["inspect", "--override-arch", "arm64", "--override-variant", "v8", "--tls-verify=false", `docker://${registry.host}/kiln/zstd-multi:v1`]);
    expect(JSON.parse(armImage) as unknown).toMatchObject({ Architecture: "arm64", Layers: [index.images[1]!.layers[0]!.digest] });
    const armDigest = index.images[1]!.manifestDigest;
    const { stdout: armRaw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/kiln/zstd-multi@${armDigest}`]);
    expect((JSON.parse(armRaw) as { layers: Array<{ mediaType: string }> }).layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayerZstd]);
  });
});
