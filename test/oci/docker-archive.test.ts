import { createReadStream, createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { writeDockerArchive, writeDockerArchiveGzip, normaliseRepoTag, GZIP_MEMBER_SIZE } from "../../src/oci/docker-archive.js";
import { assembleImage } from "../../src/oci/image.js";
import { writeLayer } from "../../src/oci/layer.js";
import { writeOciLayout } from "../../src/oci/layout.js";
import type { BuiltImage } from "../../src/oci/types.js";
import type { FsEntry } from "../../src/rootfs/types.js";
import { bufferContent } from "../../src/rootfs/types.js";
import { patternBytes, run, sampleEntries, scratch, sha256 } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
let work: Awaited<ReturnType<typeof scratch>>;
let image: BuiltImage;
/** An image big enough (≈ 14 MB of tar) to span several gzip members. */
let bigImage: BuiltImage;

beforeAll(async () => {
  work = await scratch();
  const base = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "base" });
  const extra = await writeLayer([{ path: "srv", type: "dir", mode: 0o755, uid: 0, gid: 0 }, { path: "srv/data", type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent("data\n") }], work.blobs, { clock, createdBy: "extra" });
  image = await assembleImage([base, extra], { architecture: "amd64", config: { Entrypoint: ["/bin/sh"] }, clock, blobs: work.blobs });
  const bigEntries: FsEntry[] = [{ path: "data", type: "dir", mode: 0o755, uid: 0, gid: 0 }];
  for (let i = 0; i < 14; i++) bigEntries.push({ path: `data/part-${i}`, type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent(patternBytes(1_000_000, i + 10)) });
  const big = await writeLayer(bigEntries, work.blobs, { clock, createdBy: "big" });
  bigImage = await assembleImage([base, big], { architecture: "amd64", config: {}, clock, blobs: work.blobs });
});
afterAll(async () => work.cleanup());

async function archiveFile(name: string, img: BuiltImage, repoTags = ["kiln/test:v1"]): Promise<string> {
  const file = path.join(work.dir, name);
  await writeDockerArchive(createWriteStream(file), img, work.blobs, { repoTags });
  return file;
}

interface SkopeoInfo {
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
}

describe("docker-archive", () => {
  test("has manifest.json, the config and each layer uncompressed, sorted, with fixed mtimes", async () => {
    const file = await archiveFile("image.tar", image);
    const { stdout } = await run("tar", ["--numeric-owner", "--full-time", "-tvf", file]);
    const lines = stdout.trim().split("\n");
    const names = lines.map((l) => l.split(/\s+/).pop()!);
    expect(names).toEqual([`${image.configDigest.slice(7)}.json`, ...image.layers.map((l) => `${l.diffId.slice(7)}.tar`)].sort().concat(["manifest.json"]).sort());
    for (const l of lines) expect(l).toMatch(/^-rw-r--r-- 0\/0 .* 2024-03-01 12:00:00 /);

    const out = path.join(work.dir, "unpacked");
    await run("mkdir", ["-p", out]);
    await run("tar", ["-xf", file, "-C", out]);
    const manifest = JSON.parse(await readFile(path.join(out, "manifest.json"), "utf8")) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest).toEqual([{ Config: `${image.configDigest.slice(7)}.json`, RepoTags: ["kiln/test:v1"], Layers: image.layers.map((l) => `${l.diffId.slice(7)}.tar`) }]);
    expect((await readFile(path.join(out, manifest[0]!.Config))).equals(image.config)).toBe(true);
    for (const l of image.layers) {
      const { stdout: sum } = await run("sha256sum", [path.join(out, `${l.diffId.slice(7)}.tar`)]);
      expect(`sha256:${sum.split(" ")[0]}`).toBe(l.diffId);
    }
  });

  test("skopeo reads it, and the same image and tags give the same bytes", async () => {
    const file = await archiveFile("image-a.tar", image);
    const again = await archiveFile("image-b.tar", image);
    expect(sha256(await readFile(again))).toBe(sha256(await readFile(file)));
    // Selecting the image by its tag proves skopeo found our RepoTags (its inspect lists none for archives).
    const info = JSON.parse((await run("skopeo", ["inspect", `docker-archive:${file}:kiln/test:v1`])).stdout) as SkopeoInfo;
    expect([info.Architecture, info.Os]).toEqual(["amd64", "linux"]);
    await expect(run("skopeo", ["inspect", `docker-archive:${file}:kiln/other:v1`])).rejects.toThrow();
    // skopeo describes a docker-archive by its uncompressed layers.
    expect(info.Layers).toEqual(image.layers.map((l) => l.diffId));
  });

  test("skopeo copies it back into an OCI layout with the same config and layer contents", async () => {
    const file = await archiveFile("image-rt.tar", image);
    const layout = path.join(work.dir, "roundtrip");
    await run("skopeo", ["copy", `docker-archive:${file}`, `oci:${layout}:back`]);
    // skopeo re-serialises the config when it converts Docker to OCI: compare content, not bytes.
    const { stdout: cfg } = await run("skopeo", ["inspect", "--config", "--raw", `oci:${layout}:back`]);
    expect(JSON.parse(cfg)).toEqual(JSON.parse(image.config.toString("utf8")));
  });

  test("skopeo copy oci:… docker-archive:… of our layout is read back with the same layers", async () => {
    const layout = path.join(work.dir, "layout");
    await writeOciLayout(layout, image, work.blobs, { tag: "v1" });
    const file = path.join(work.dir, "from-oci.tar");
    await run("skopeo", ["copy", `oci:${layout}:v1`, `docker-archive:${file}:kiln/copied:v1`]);
    const info = JSON.parse((await run("skopeo", ["inspect", `docker-archive:${file}:kiln/copied:v1`])).stdout) as SkopeoInfo;
    expect(info.Layers).toEqual(image.layers.map((l) => l.diffId));
    const { stdout: cfg } = await run("skopeo", ["inspect", "--config", "--raw", `docker-archive:${file}`]);
    expect(JSON.parse(cfg)).toEqual(JSON.parse(image.config.toString("utf8")));
  });

  test("a layer blob that does not inflate to its diffId fails the archive", async () => {
    const lying: BuiltImage = { ...image, layers: [{ ...image.layers[0]!, diffId: image.layers[1]!.diffId }] };
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const err = await writeDockerArchive(sink, lying, work.blobs).catch((e: unknown) => e);
    expect(isKilnError(err, "integrityFailed")).toBe(true);
    expect((err as Error).message).toMatch(/\(inflated\) (is corrupt|has \d+ bytes)/);
    expect(sink.destroyed).toBe(true);
  });

  test("tags are validated and given :latest like docker does", () => {
    expect(normaliseRepoTag("kiln/test")).toBe("kiln/test:latest");
    expect(normaliseRepoTag("localhost:5000/kiln/test:1.0")).toBe("localhost:5000/kiln/test:1.0");
    expect(normaliseRepoTag("localhost:5000/kiln")).toBe("localhost:5000/kiln:latest");
    expect(() => normaliseRepoTag("Kiln/Upper")).toThrow(/not a valid image name/);
    expect(() => normaliseRepoTag("kiln/test:bad tag")).toThrow(/not a valid image name/);
  });
});

describe("gzip-compressed docker-archive", () => {
  test("members compressed 4 or 1 at a time are the same bytes and inflate to the uncompressed archive", async () => {
    const plain = await readFile(await archiveFile("big.tar", bigImage));
    expect(plain.length).toBeGreaterThan(3 * GZIP_MEMBER_SIZE);
    for (const [name, parallelism] of [["big-par.tar.gz", 4], ["big-one.tar.gz", 1]] as const) {
      const file = path.join(work.dir, name);
      await writeDockerArchiveGzip(createWriteStream(file), bigImage, work.blobs, { repoTags: ["kiln/test:v1"], parallelism });
      await run("gzip", ["-t", file]);
      const { stdout } = await run("bash", ["-c", `gzip -dc '${file}' | sha256sum`]);
      expect(`sha256:${stdout.split(" ")[0]}`, name).toBe(sha256(plain));
    }
    // Several members in the parallel file (each starts with the gzip magic and our fixed header).
    const par = await readFile(path.join(work.dir, "big-par.tar.gz"));
    const { stdout: members } = await run("python3", ["-c", "import gzip,sys,zlib\nd=open(sys.argv[1],'rb').read()\nn=0\nwhile d:\n  o=zlib.decompressobj(31); o.decompress(d); d=o.unused_data; n+=1\nprint(n, len(gzip.decompress(open(sys.argv[1],'rb').read())))", path.join(work.dir, "big-par.tar.gz")]);
    const [count, size] = members.trim().split(" ").map(Number);
    expect(count).toBe(Math.ceil(plain.length / GZIP_MEMBER_SIZE));
    expect(size).toBe(plain.length);
    expect(par.subarray(0, 4).toString("hex")).toBe("1f8b0800");
    // The parallelism does not change the bytes.
    expect(sha256(await readFile(path.join(work.dir, "big-one.tar.gz")))).toBe(sha256(par));
    // Deterministic: written again, the same bytes.
    const again = path.join(work.dir, "big-par-2.tar.gz");
    await writeDockerArchiveGzip(createWriteStream(again), bigImage, work.blobs, { repoTags: ["kiln/test:v1"] });
    expect(sha256(await readFile(again))).toBe(sha256(par));
  });

  test("skopeo reads the .tar.gz after gunzip; directly, skopeo 1.9 takes it for a plain tar and fails", async () => {
    const gz = path.join(work.dir, "image.tar.gz");
    await writeDockerArchiveGzip(createWriteStream(gz), bigImage, work.blobs, { repoTags: ["kiln/test:v2"] });
    const plain = path.join(work.dir, "image-gunzipped.tar");
    await pipeline(createReadStream(gz), createGunzip(), createWriteStream(plain));
    const viaGunzip = JSON.parse((await run("skopeo", ["inspect", `docker-archive:${plain}`])).stdout) as SkopeoInfo;
    expect(viaGunzip.Layers).toEqual(bigImage.layers.map((l) => l.diffId));
    // skopeo 1.9.3 (Debian bookworm) opens a docker-archive file as a plain tar: a .tar.gz, single
    // or multi-member, fails with "archive/tar: invalid tar header" (or "unexpected EOF"). Should a
    // later skopeo inflate it, it must then see the same image.
    const direct = await run("skopeo", ["inspect", `docker-archive:${gz}`]).then(
      (r) => JSON.parse(r.stdout) as SkopeoInfo,
      (err: Error) => err,
    );
    if (direct instanceof Error) expect(direct.message).toMatch(/invalid tar header|unexpected EOF/);
    else expect(direct.Layers).toEqual(viaGunzip.Layers);
  });
});
