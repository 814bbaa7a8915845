/**
 * Pushing to Debian's docker-registry without authentication: what a user checks with skopeo and
 * umoci, what is sent again (nothing) for a second tag, cross-repository mounts, chunked uploads,
 * the digest check of the manifest, and progress.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { isKilnError } from "../../src/domain/errors.js";
import type { BuiltImage } from "../../src/oci/types.js";
import { RegistryClient } from "../../src/registry/client.js";
import { pushImage, type PushProgress } from "../../src/registry/push.js";
import { fixtureText, imageBytes, makeImage } from "../fixtures/images.js";
import { run, startProxy, startRegistry, type TestRegistry } from "../helpers/registry.js";

let work: string;
let blobs: BlobStore;
let registry: TestRegistry;
let small: BuiltImage;
let big: BuiltImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-push-"));
  blobs = BlobStore.open(path.join(work, "blobs"));
  registry = await startRegistry();
  small = await makeImage(blobs, { seed: "small" });
  big = await makeImage(blobs, { seed: "big", bigLayerBytes: 3 << 20 });
});
afterAll(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Request bodies the proxy forwarded to blob endpoints (uploads), in bytes. */
function blobBytesThrough(records: { url: string; bytesForwarded: number }[]): number {
  return records.filter((r) => r.url.includes("/blobs/")).reduce((n, r) => n + r.bytesForwarded, 0);
}

describe("pushImage to a registry without authentication", () => {
  test("skopeo inspects the pushed image, copies it back, and umoci unpacks the fixture's file", async () => {
    const progress: PushProgress[] = [];
    const result = await pushImage(small, blobs, { registry: registry.url, repository: "kiln/fixture", tag: "v1" }, {}, { onProgress: (p) => progress.push(p) });

    expect(result.manifestDigest).toBe(small.dockerManifestDigest);
    expect(result.cloudId).toBe(`${registry.host}/kiln/fixture@${small.dockerManifestDigest}`);
    expect(result.registeringName).toBe(`${registry.host}/kiln/fixture:v1`);
    expect(result.blobsUploaded).toBe(1 + small.layers.length);
    expect(result.bytesUploaded).toBe(imageBytes(small));

    const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/fixture:v1`]);
    const inspected = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string; Labels: Record<string, string> };
    expect(inspected.Digest).toBe(small.dockerManifestDigest);
    expect(inspected.Layers).toEqual(small.layers.map((l) => l.digest));
    expect(inspected.Architecture).toBe("amd64");
    expect(inspected.Labels["org.example.seed"]).toBe("small");

    const { stdout: raw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/kiln/fixture:v1`]);
    expect(sha256(Buffer.from(raw))).toBe(small.dockerManifestDigest);
    expect((JSON.parse(raw) as { mediaType: string }).mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");

    const layout = path.join(work, "copy-layout");
    await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${registry.host}/kiln/fixture:v1`, `oci:${layout}:v1`]);
    const bundle = path.join(work, "copy-bundle");
    await run("umoci", ["unpack", "--image", `${layout}:v1`, bundle]);
    expect(await readFile(path.join(bundle, "rootfs/etc/kiln-fixture"), "utf8")).toBe(fixtureText("small"));

    // Progress: from 0 to the total, never going down, phases in order.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.every((p) => p.bytesTotal === imageBytes(small))).toBe(true);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytesLoaded).toBeGreaterThanOrEqual(progress[i - 1]!.bytesLoaded);
    expect(progress.at(-1)).toEqual({ phase: "done", bytesLoaded: imageBytes(small), bytesTotal: imageBytes(small) });
    expect(progress.map((p) => p.phase).filter((p, i, a) => p !== a[i - 1])).toEqual(["blobs", "manifest", "done"]);
  });

  test("a second tag of the same image uploads no blob byte (client counter and recording proxy agree)", async () => {
    const proxy = await startProxy(registry.port);
    try {
      const first = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/twice", tag: "one" }, {});
      expect(first.bytesUploaded).toBe(imageBytes(small));
      expect(blobBytesThrough(proxy.records)).toBe(imageBytes(small));

      const before = proxy.records.length;
      const second = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/twice", tag: "two" }, {});
      const during = proxy.records.slice(before);
      expect(second.bytesUploaded).toBe(0);
      expect(second.blobsSkipped).toBe(1 + small.layers.length);
      expect(second.blobsUploaded).toBe(0);
      expect(blobBytesThrough(during)).toBe(0);
      // Only HEADs for blobs, then the manifest.
      expect(during.filter((r) => r.url.includes("/blobs/")).every((r) => r.method === "HEAD")).toBe(true);
      expect(during.filter((r) => r.method === "PUT").map((r) => r.url)).toEqual(["/v2/kiln/twice/manifests/two"]);
      expect(second.manifestDigest).toBe(first.manifestDigest);

      const client = new RegistryClient(registry.url);
      expect((await client.tags("kiln/twice")).sort()).toEqual(["one", "two"]);
      client.close();
    } finally {
      await proxy.stop();
    }
  });

  test("a blob the account pushed to another repository is mounted, not uploaded", async () => {
    const proxy = await startProxy(registry.port);
    try {
      await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/origin", tag: "v1" }, {});
      const before = proxy.records.length;
      const result = await pushImage(small, blobs, { registry: proxy.url, repository: "other/copy", tag: "v1" }, {}, { mountFrom: ["kiln/nowhere", "kiln/origin"] });
      const during = proxy.records.slice(before);
      expect(result.blobsMounted).toBe(1 + small.layers.length);
      expect(result.bytesUploaded).toBe(0);
      expect(blobBytesThrough(during)).toBe(0);
      const mounts = during.filter((r) => r.method === "POST" && r.url.includes("mount="));
      expect(mounts.some((r) => r.url.includes("from=kiln%2Forigin") && r.status === 201)).toBe(true);
      // A declined mount (nothing in kiln/nowhere) left no session open: it was deleted.
      expect(during.filter((r) => r.method === "DELETE" && r.url.includes("/blobs/uploads/")).length).toBe(mounts.filter((r) => r.status === 202).length);

      const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/other/copy:v1`]);
      expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(small.dockerManifestDigest);
    } finally {
      await proxy.stop();
    }
  });

  test("a mount the registry declines falls back to an upload through the session it opened", async () => {
    const proxy = await startProxy(registry.port);
    try {
      const result = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/fallback", tag: "v1" }, {}, { mountFrom: ["kiln/empty"] });
      expect(result.blobsMounted).toBe(0);
      expect(result.blobsUploaded).toBe(1 + small.layers.length);
      // No separate POST to open an upload: the declined mount's session was used.
      const posts = proxy.records.filter((r) => r.method === "POST");
      expect(posts.every((r) => r.url.includes("mount=") && r.status === 202)).toBe(true);
      await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/fallback:v1`]);
    } finally {
      await proxy.stop();
    }
  });

  test("large blobs go up in PATCH chunks of the configured size, honouring OCI-Chunk-Min-Length", async () => {
    const proxy = await startProxy(registry.port, {
      rewriteHeaders: (r, headers) => {
        if (r.method === "POST" && r.status === 202) headers["oci-chunk-min-length"] = String(600 << 10);
      },
    });
    try {
      const result = await pushImage(
        big,
        blobs,
        { registry: proxy.url, repository: "kiln/chunked", tag: "v1" },
        {},
        { clientOptions: { monolithicMaxBytes: 64 << 10, chunkBytes: 256 << 10 } },
      );
      const bigLayer = big.layers.at(-1)!;
      expect(bigLayer.size).toBeGreaterThan(3 << 20);
      const patches = proxy.records.filter((r) => r.method === "PATCH");
      const expectedChunks = Math.ceil(bigLayer.size / (600 << 10));
      expect(patches.length).toBe(expectedChunks);
      expect(patches.slice(0, -1).every((r) => r.bytesForwarded === 600 << 10)).toBe(true);
      expect(patches.reduce((n, r) => n + r.bytesForwarded, 0)).toBe(bigLayer.size);
      expect(result.bytesUploaded).toBe(imageBytes(big));

      const layout = path.join(work, "chunked-layout");
      await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${registry.host}/kiln/chunked:v1`, `oci:${layout}:v1`]);
      const copied = await readFile(path.join(layout, "blobs/sha256", bigLayer.digest.slice(7)));
      expect(sha256(copied)).toBe(bigLayer.digest);
    } finally {
      await proxy.stop();
    }
  });

  test("a chunk refused with 503 resumes the same upload session from the registry's offset", async () => {
    let patches = 0;
    const proxy = await startProxy(registry.port, {
      fault: (r) => (r.method === "PATCH" && ++patches === 3 ? { status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}' } : undefined),
    });
    const retries: number[] = [];
    try {
      const result = await pushImage(
        big,
        blobs,
        { registry: proxy.url, repository: "kiln/resumed", tag: "v1" },
        {},
        { clientOptions: { monolithicMaxBytes: 64 << 10, chunkBytes: 1 << 20, retry: { baseDelayMs: 20 }, onRetry: (e) => retries.push(e.status ?? 0) } },
      );
      const bigLayer = big.layers.at(-1)!;
      expect(retries).toEqual([503]);
      // The session was asked where it stood, and only the refused chunk was sent again.
      expect(proxy.records.some((r) => r.method === "GET" && r.url.includes("/blobs/uploads/"))).toBe(true);
      expect(proxy.records.filter((r) => r.method === "POST").length).toBe(1 + big.layers.length);
      expect(proxy.records.filter((r) => r.method === "PATCH" && !r.fault).reduce((n, r) => n + r.bytesForwarded, 0)).toBe(bigLayer.size);
      expect(result.bytesUploaded).toBe(imageBytes(big) + (1 << 20));
      await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/resumed:v1`]);
    } finally {
      await proxy.stop();
    }
  });

  test("blobs go up three at a time by default, one at a time when asked", async () => {
    const blobCount = 1 + big.layers.length;
    /** The most blob pushes (first HEAD to final PUT) the proxy saw overlapping. */
    const overlap = (records: { method: string; url: string; at: number; index: number }[]): number => {
      let open = 0;
      let most = 0;
      for (const r of records) {
        if (r.method === "HEAD" && r.url.includes("/blobs/")) most = Math.max(most, ++open);
        if (r.method === "PUT" && r.url.includes("/blobs/uploads/")) open--;
      }
      return most;
    };
    for (const [concurrency, expected] of [
      [undefined, 3],
      [1, 1],
    ] as const) {
      const proxy = await startProxy(registry.port);
      try {
        await pushImage(big, blobs, { registry: proxy.url, repository: `kiln/parallel-${concurrency ?? "default"}`, tag: "v1" }, {}, concurrency ? { concurrency } : {});
        expect(proxy.records.filter((r) => r.method === "HEAD")).toHaveLength(blobCount);
        expect(overlap(proxy.records)).toBe(expected);
      } finally {
        await proxy.stop();
      }
    }
  });

  test("a registry that answers another digest for the manifest fails the push", async () => {
    const wrong = `sha256:${"0".repeat(64)}`;
    const proxy = await startProxy(registry.port, {
      rewriteHeaders: (r, headers) => {
        if (r.method === "PUT" && r.url.includes("/manifests/")) headers["docker-content-digest"] = wrong;
      },
    });
    try {
      const err = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/lying", tag: "v1" }, {}).catch((e: unknown) => e);
      expect(isKilnError(err, "registryFailed")).toBe(true);
      expect((err as Error).message).toContain(`stored the manifest as ${wrong}`);
      expect((err as Error).message).toContain(small.dockerManifestDigest);
      // Not retried: a registry that stores something else will do it again.
      expect(proxy.records.filter((r) => r.method === "PUT" && r.url.includes("/manifests/")).length).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  test("names are checked before anything is sent", async () => {
    const proxy = await startProxy(registry.port);
    try {
      for (const target of [
        { registry: proxy.url, repository: "Kiln/Upper", tag: "v1" },
        { registry: proxy.url, repository: "kiln/ok", tag: "-bad" },
        { registry: `${proxy.url}/some/path`, repository: "kiln/ok", tag: "v1" },
      ]) {
        const err = await pushImage(small, blobs, target, {}).catch((e: unknown) => e);
        expect(isKilnError(err, "invalidField")).toBe(true);
      }
      expect(proxy.records).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});
