import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { DEFAULT_PATH_ENV, assembleImage } from "../../src/oci/image.js";
import { writeLayer } from "../../src/oci/layer.js";
import { writeOciLayout } from "../../src/oci/layout.js";
import { loadImage } from "../../src/oci/load.js";
import { MediaTypes, type BuiltImage, type ContainerConfig, type Layer } from "../../src/oci/types.js";
import type { FsEntry } from "../../src/rootfs/types.js";
import { LONG_FILE, DEEP_FILE, UNICODE_FILE, collect, run, sampleEntries, scratch, sha256 } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
const config: ContainerConfig = { Entrypoint: ["/usr/bin/tool"], Cmd: ["--help"], Env: ["LANG=C.UTF-8"], WorkingDir: "/home/user", User: "1000:1000", Labels: { "org.example.b": "2", "org.example.a": "1" } };
let work: Awaited<ReturnType<typeof scratch>>;

interface ConfigDoc {
  architecture: string;
  os: string;
  created: string;
  config: { Env: string[]; Entrypoint: string[]; Cmd: string[]; User: string; Labels: Record<string, string> };
  rootfs: unknown;
  history: unknown[];
}
interface ManifestDoc {
  mediaType: string;
  schemaVersion: number;
  config: unknown;
  layers: unknown[];
}
let layers: Layer[];
let image: BuiltImage;

/** Two layers: the tree without home/, then home/ (its parent resolved from the full tree). */
async function buildLayers(at: Date): Promise<Layer[]> {
  const all = sampleEntries();
  const byPath = new Map(all.map((e) => [e.path, e]));
  const base = all.filter((e) => !e.path.startsWith("home"));
  const top: FsEntry[] = all.filter((e) => e.path.startsWith("home/user/"));
  return [
    await writeLayer(base, work.blobs, { clock: at, createdBy: "base: sample tree" }),
    await writeLayer(top, work.blobs, { clock: at, createdBy: "home: user files", ancestors: (p) => byPath.get(p) }),
  ];
}

beforeAll(async () => {
  work = await scratch();
  layers = await buildLayers(clock);
  image = await assembleImage(layers, { architecture: "amd64", config, clock, blobs: work.blobs });
});
afterAll(async () => work.cleanup());

describe("assembleImage", () => {
  test("the config holds architecture, os, created, PATH, entrypoint, diff_ids and one history entry per layer", async () => {
    const doc = JSON.parse(image.config.toString("utf8")) as ConfigDoc;
    expect(doc.architecture).toBe("amd64");
    expect(doc.os).toBe("linux");
    expect(doc.created).toBe("2024-03-01T12:00:00Z");
    expect(doc.config.Env).toEqual([DEFAULT_PATH_ENV, "LANG=C.UTF-8"]);
    expect(doc.config.Entrypoint).toEqual(["/usr/bin/tool"]);
    expect(doc.config.Cmd).toEqual(["--help"]);
    expect(doc.config.User).toBe("1000:1000");
    expect(doc.config.Labels).toEqual({ "org.example.a": "1", "org.example.b": "2" });
    expect(doc.rootfs).toEqual({ type: "layers", diff_ids: layers.map((l) => l.diffId) });
    expect(doc.history).toEqual([
      { created: "2024-03-01T12:00:00Z", created_by: "base: sample tree" },
      { created: "2024-03-01T12:00:00Z", created_by: "home: user files" },
    ]);
    // Canonical: sorted keys, no whitespace.
    expect(image.config.toString("utf8")).not.toMatch(/\s(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    expect(Object.keys(doc)).toEqual([...Object.keys(doc)].sort());
    expect(image.configDigest).toBe(sha256(image.config));
  });

  test("an Env that sets PATH keeps it", async () => {
    const other = await assembleImage(layers, { architecture: "arm64", variant: "v8", config: { Env: ["PATH=/opt/bin"] }, clock, blobs: work.blobs });
    const doc = JSON.parse(other.config.toString("utf8")) as { config: { Env: string[] }; variant: string };
    expect(doc.config.Env).toEqual(["PATH=/opt/bin"]);
    expect(doc.variant).toBe("v8");
  });

  test("both manifests reference the same stored config and layers, with their own media types", async () => {
    const oci = JSON.parse(image.manifest.toString("utf8")) as ManifestDoc;
    const docker = JSON.parse(image.dockerManifest!.toString("utf8")) as ManifestDoc;
    expect(oci.mediaType).toBe(MediaTypes.ociManifest);
    expect(oci.schemaVersion).toBe(2);
    expect(oci.config).toEqual({ mediaType: MediaTypes.ociConfig, digest: image.configDigest, size: image.config.length });
    expect(oci.layers).toEqual(layers.map((l) => ({ mediaType: MediaTypes.ociLayerGzip, digest: l.digest, size: l.size })));
    expect(docker.mediaType).toBe(MediaTypes.dockerManifest);
    expect(docker.config).toEqual({ mediaType: MediaTypes.dockerConfig, digest: image.configDigest, size: image.config.length });
    expect(docker.layers).toEqual(layers.map((l) => ({ mediaType: MediaTypes.dockerLayerGzip, digest: l.digest, size: l.size })));
    expect(image.manifestDigest).toBe(sha256(image.manifest));
    expect(image.dockerManifestDigest).toBe(sha256(image.dockerManifest!));
    for (const d of [image.manifestDigest, image.dockerManifestDigest!, image.configDigest]) {
      expect(sha256(await collect(work.blobs.open(d)))).toBe(d);
    }
  });

  test("the same inputs give the same manifest digest; another clock another one", async () => {
    const again = await assembleImage(await buildLayers(clock), { architecture: "amd64", config: { ...config, Labels: { "org.example.a": "1", "org.example.b": "2" } }, clock, blobs: work.blobs });
    expect(again.manifestDigest).toBe(image.manifestDigest);
    expect(again.dockerManifestDigest).toBe(image.dockerManifestDigest);
    const later = new Date("2024-03-01T12:00:05Z");
    const other = await assembleImage(await buildLayers(later), { architecture: "amd64", config, clock: later, blobs: work.blobs });
    expect(other.manifestDigest).not.toBe(image.manifestDigest);
  });

  test("refuses a history that does not match the layers, and a layer missing from the store", async () => {
    await expect(assembleImage(layers, { architecture: "amd64", config, clock, blobs: work.blobs, history: [{ createdBy: "one" }] })).rejects.toThrow(/history lists 1 layers, the image has 2/);
    const ghost: Layer = { ...layers[0]!, digest: `sha256:${"0".repeat(64)}` };
    await expect(assembleImage([ghost], { architecture: "amd64", config, clock, blobs: work.blobs })).rejects.toThrow(/not in the blob store/);
  });
});

describe("OCI layout", () => {
  test("skopeo inspects it by tag, and umoci unpacks files with their modes, owners and link targets", async () => {
    const layout = path.join(work.dir, "layout");
    await writeOciLayout(layout, image, work.blobs, { tag: "v1" });
    const { stdout } = await run("skopeo", ["inspect", `oci:${layout}:v1`]);
    const info = JSON.parse(stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[]; Env: string[]; Labels: Record<string, string> };
    expect(info.Digest).toBe(image.manifestDigest);
    expect([info.Architecture, info.Os]).toEqual(["amd64", "linux"]);
    expect(info.Layers).toEqual(layers.map((l) => l.digest));
    expect(info.Env).toContain(DEFAULT_PATH_ENV);
    const { stdout: cfg } = await run("skopeo", ["inspect", "--config", "--raw", `oci:${layout}:v1`]);
    expect(cfg).toBe(image.config.toString("utf8"));

    const bundle = path.join(work.dir, "bundle");
    await run("umoci", ["unpack", "--image", `${layout}:v1`, bundle]);
    const rootfs = path.join(bundle, "rootfs");
    for (const e of sampleEntries()) {
      const st = await lstat(path.join(rootfs, e.path));
      if (e.type !== "symlink") expect((st.mode & 0o7777).toString(8), `mode of ${e.path}`).toBe(e.mode.toString(8));
      expect([st.uid, st.gid], `owner of ${e.path}`).toEqual([e.uid, e.gid]);
      if (e.type === "symlink") expect(await readlink(path.join(rootfs, e.path))).toBe(e.linkname);
      if (e.type === "file") expect(sha256(await readFile(path.join(rootfs, e.path))), e.path).toBe(sha256(await collect(e.content!.open())));
      if (e.type === "char") expect(st.isCharacterDevice()).toBe(true);
      if (e.type === "fifo") expect(st.isFIFO()).toBe(true);
    }
    expect((await lstat(path.join(rootfs, "usr/bin/passwd"))).mode & 0o7777).toBe(0o4755);
    expect((await lstat(path.join(rootfs, "usr/bin/tool"))).ino).toBe((await lstat(path.join(rootfs, "usr/bin/aa-alias"))).ino);
    for (const p of [LONG_FILE, DEEP_FILE, UNICODE_FILE]) expect((await lstat(path.join(rootfs, p))).isFile()).toBe(true);
    const runtime = JSON.parse(await readFile(path.join(bundle, "config.json"), "utf8")) as { process: { args: string[]; cwd: string; user: { uid: number } } };
    expect(runtime.process.args).toEqual(["/usr/bin/tool", "--help"]);
    expect(runtime.process.cwd).toBe("/home/user");
    expect(runtime.process.user.uid).toBe(1000);
  });

  test("a second image and tag keep the first; a reused tag moves", async () => {
    const layout = path.join(work.dir, "layout2");
    const later = new Date("2024-04-01T00:00:00Z");
    const second = await assembleImage(await buildLayers(later), { architecture: "amd64", config, clock: later, blobs: work.blobs });
    await writeOciLayout(layout, image, work.blobs, { tag: "v1" });
    await writeOciLayout(layout, second, work.blobs, { tag: "v2" });
    const digestOf = async (tag: string): Promise<string> => (JSON.parse((await run("skopeo", ["inspect", `oci:${layout}:${tag}`])).stdout) as { Digest: string }).Digest;
    expect(await digestOf("v1")).toBe(image.manifestDigest);
    expect(await digestOf("v2")).toBe(second.manifestDigest);
    await writeOciLayout(layout, second, work.blobs, { tag: "v1" });
    expect(await digestOf("v1")).toBe(second.manifestDigest);
    const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as { manifests: Array<{ annotations: Record<string, string> }> };
    expect(index.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"])).toEqual(["v2", "v1"]);
    // Layers shared by both images are stored once, as hard links to the blob store.
    const blobFiles = await readdir(path.join(layout, "blobs/sha256"));
    expect(blobFiles.length).toBe(new Set([image, second].flatMap((i) => [i.manifestDigest, i.configDigest, ...i.layers.map((l) => l.digest)])).size);
    expect((await lstat(path.join(layout, "blobs/sha256", layers[0]!.digest.slice(7)))).ino).toBe((await lstat(work.blobs.path(layers[0]!.digest))).ino);
  });

  test("a write that fails on a blob leaves the previous index, which names only present blobs", async () => {
    const layout = path.join(work.dir, "layout3");
    await writeOciLayout(layout, image, work.blobs, { tag: "v1" });
    const before = await readFile(path.join(layout, "index.json"));
    const broken: BuiltImage = { ...image, layers: [...image.layers, { ...image.layers[0]!, digest: `sha256:${"1".repeat(64)}` }] };
    const err = await writeOciLayout(layout, broken, work.blobs, { tag: "v2" }).catch((e: unknown) => e);
    expect(isKilnError(err, "notFound")).toBe(true);
    expect((await readFile(path.join(layout, "index.json"))).equals(before)).toBe(true);
    expect((await readdir(layout)).sort()).toEqual(["blobs", "index.json", "oci-layout"]);
    await expect(writeOciLayout(layout, image, work.blobs, { tag: "../evil" })).rejects.toThrow(/not a valid image reference name/);
  });
});

describe("loadImage", () => {
  test("reconstructs the image from its OCI or Docker manifest digest", async () => {
    for (const digest of [image.manifestDigest, image.dockerManifestDigest!]) {
      const loaded = await loadImage(work.blobs, digest);
      expect(loaded.manifestDigest).toBe(image.manifestDigest);
      expect(loaded.dockerManifestDigest).toBe(image.dockerManifestDigest);
      expect(loaded.config.equals(image.config)).toBe(true);
      expect([loaded.architecture, loaded.os]).toEqual(["amd64", "linux"]);
      expect(loaded.layers.map(({ digest: d, diffId, size, uncompressedSize, createdBy }) => ({ digest: d, diffId, size, uncompressedSize, createdBy }))).toEqual(
        layers.map(({ digest: d, diffId, size, uncompressedSize, createdBy }) => ({ digest: d, diffId, size, uncompressedSize, createdBy })),
      );
      expect(sha256(await collect(loaded.layers[1]!.open()))).toBe(layers[1]!.digest);
    }
    const quick = await loadImage(work.blobs, image.manifestDigest, { verifyLayers: false });
    expect(quick.layers.map((l) => l.uncompressedSize)).toEqual(layers.map((l) => l.uncompressedSize));
  });

  test("refuses a layer whose content does not match the config's diffId", async () => {
    const lying = await assembleImage([{ ...layers[0]!, diffId: layers[1]!.diffId }], { architecture: "amd64", config, clock, blobs: work.blobs });
    const err = await loadImage(work.blobs, lying.manifestDigest).catch((e: unknown) => e);
    expect(isKilnError(err, "integrityFailed")).toBe(true);
    expect((err as Error).message).toMatch(/decompresses to/);
  });

  test("refuses a digest that is not a stored manifest", async () => {
    await expect(loadImage(work.blobs, `sha256:${"2".repeat(64)}`)).rejects.toThrow(/not in the store/);
    await expect(loadImage(work.blobs, image.configDigest)).rejects.toThrow(/not an image manifest|descriptor is malformed/);
  });
});
