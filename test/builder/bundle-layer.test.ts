/**
 * The bundle's layer over a merged-/usr tree, from real archives in a real blob store: install
 * locations through `/bin`, `/lib`, `/sbin` land in `/usr` and never replace the links; a file
 * may not take a link's place; archives lose setuid/setgid bits unless the artifact's rights ask
 * for them; a zip entry that would climb out is named like a tar one.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { planBundle, refuseDeviceNodes } from "../../src/builder/bundle-layer.js";
import { KilnError } from "../../src/domain/errors.js";
import { MERGED_USR_DIRS, Rootfs } from "../../src/rootfs/rootfs.js";
import type { FsEntry } from "../../src/rootfs/types.js";
import { extractPackage } from "../../src/rootfs/unpack.js";
import type { ArtifactRow, BundleRow } from "../../src/store/types.js";
import { buildRawDeb, makeTar } from "../fixtures/debs.js";
import { makeZip } from "../fixtures/zips.js";

let work: string;
let blobs: BlobStore;
let nextId = 1;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "kiln-bundle-layer-"));
  blobs = BlobStore.open(path.join(work, "blobs"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const bundle: BundleRow = {
  id: 1,
  userId: 1,
  name: "app",
  version: "1",
  description: null,
  release: null,
  tag: null,
  license: null,
  defaultInstallLocation: null,
  restrictionId: 1,
  restrictionRule: null,
  imported: false,
  revision: 1,
  created: new Date(0),
  lastModified: new Date(0),
};

/** An artifact row with its bytes in the blob store. */
async function artifact(name: string, bytes: Buffer | undefined, over: Partial<ArtifactRow> = {}): Promise<ArtifactRow> {
  const blob = bytes ? await blobs.put(bytes) : undefined;
  const id = nextId++;
  return {
    id,
    bundleId: 1,
    parentId: null,
    position: id,
    kind: bytes ? "file" : "folder",
    tag: "softwarefile",
    name,
    fullName: null,
    origName: name,
    installLocation: null,
    extract: false,
    install: false,
    params: null,
    version: null,
    release: null,
    arch: null,
    mimeType: null,
    blobDigest: blob?.digest ?? null,
    size: blob?.size ?? null,
    md5: null,
    uploadedTime: null,
    bootOrder: null,
    bootType: null,
    created: new Date(0),
    lastModified: new Date(0),
    ...over,
  };
}

/** The layer's entries over a fresh merged-/usr tree, by path. */
async function layer(artifacts: ArtifactRow[], options: { workDir?: string; maxContentSize?: number } = {}): Promise<Map<string, FsEntry>> {
  const tree = new Rootfs({ usrMerge: MERGED_USR_DIRS });
  const plan = planBundle({ bundle, artifacts, blobs, workDir: work, groupWritable: false, ...options });
  const entries = await plan.layer!.entries(tree);
  return new Map(entries.map((e) => [e.path, e]));
}

async function failure(artifacts: ArtifactRow[], options: { workDir?: string; maxContentSize?: number } = {}): Promise<KilnError> {
  const err = await layer(artifacts, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KilnError);
  return err as KilnError;
}

describe("install locations through merged-/usr links", () => {
  it("land in /usr and leave /bin, /sbin and /lib the links they are", async () => {
    const tool = await artifact("tool", Buffer.from("#!/bin/sh\n"), { installLocation: "/bin", params: "rights=0755;symlink=/sbin/tool" });
    const conf = await artifact("conf", undefined, { installLocation: "/lib" });
    const inside = await artifact("inside.txt", Buffer.from("x"), { parentId: conf.id });
    const archive = await artifact(
      "root.tar.gz",
      gzipSync(await makeTar([{ name: "bin/", type: "directory" }, { name: "bin/helper", content: "h", mode: 0o755 }, { name: "lib/app/data", content: "d" }, { name: "opt/app/run", content: "r" }])),
      { installLocation: "/", extract: true },
    );
    const entries = await layer([tool, conf, inside, archive]);
    for (const link of ["bin", "sbin", "lib"]) expect(entries.has(link), link).toBe(false);
    expect(entries.get("usr/bin/tool")).toMatchObject({ type: "file", mode: 0o755 });
    expect(entries.get("usr/sbin/tool")).toMatchObject({ type: "symlink", linkname: "/usr/bin/tool" });
    expect(entries.get("usr/lib/conf")?.type).toBe("dir");
    expect(entries.get("usr/lib/conf/inside.txt")?.type).toBe("file");
    expect(entries.get("usr/bin/helper")?.type).toBe("file");
    expect(entries.get("usr/lib/app/data")?.type).toBe("file");
    expect(entries.get("opt/app/run")?.type).toBe("file");
  });

  it("refuses a file that would take the place of a directory link, saying where to put it", async () => {
    const err = await failure([await artifact("lib", Buffer.from("x"), { installLocation: "/" })]);
    expect(err.message).toBe("lib would replace /lib, the image's link to the directory usr/lib: install it elsewhere, or into /usr/lib");
    const fromArchive = await failure([await artifact("a.tar", await makeTar([{ name: "sbin", type: "symlink", linkname: "usr/local/sbin" }]), { installLocation: "/", extract: true })]);
    expect(fromArchive.message).toMatch(/^archive a\.tar: entry sbin would replace \/sbin, the image's link to the directory usr\/sbin/);
  });
});

describe("setuid and setgid bits from archives", () => {
  const tarWith = (): Promise<Buffer> =>
    makeTar([
      { name: "su-like", content: "x", mode: 0o4755 },
      { name: "sg-like", content: "x", mode: 0o2755 },
      { name: "shared/", type: "directory", mode: 0o3775 },
    ]);
  const zipWith = (): Buffer => makeZip([{ name: "zsu", content: "x", mode: 0o104755 }, { name: "zsg", content: "x", mode: 0o102711 }]);

  it("are dropped (the sticky bit stays)", async () => {
    const entries = await layer([await artifact("a.tar", await tarWith(), { extract: true, installLocation: "/opt/a" }), await artifact("z.zip", zipWith(), { extract: true, installLocation: "/opt/z" })]);
    expect(entries.get("opt/a/su-like")?.mode).toBe(0o755);
    expect(entries.get("opt/a/sg-like")?.mode).toBe(0o755);
    expect(entries.get("opt/a/shared")?.mode).toBe(0o1775);
    expect(entries.get("opt/z/zsu")?.mode).toBe(0o755);
    expect(entries.get("opt/z/zsg")?.mode).toBe(0o711);
  });

  it("are kept where the artifact's rights ask for them: 4xxx setuid, 2xxx setgid", async () => {
    const entries = await layer([
      await artifact("a.tar", await tarWith(), { extract: true, installLocation: "/opt/a", params: "rights=4755" }),
      await artifact("z.zip", zipWith(), { extract: true, installLocation: "/opt/z", params: "rights=6755" }),
    ]);
    expect(entries.get("opt/a/su-like")?.mode).toBe(0o4755);
    expect(entries.get("opt/a/sg-like")?.mode).toBe(0o755);
    expect(entries.get("opt/z/zsu")?.mode).toBe(0o4755);
    expect(entries.get("opt/z/zsg")?.mode).toBe(0o2711);
  });
});

describe("zip entries that would escape", () => {
  it("are refused naming the archive and the entry, like tar entries", async () => {
    for (const [name, why] of [
      ["../../etc/cron.d/evil", "has a '..' component"],
      ["/etc/passwd", "is an absolute path"],
    ] as const) {
      const err = await failure([await artifact("evil.zip", makeZip([{ name: "ok.txt", content: "fine" }, { name, content: "x" }]), { extract: true, installLocation: "/opt/e" })]);
      expect(err.kind).toBe("unsafeArchive");
      expect(err.status).toBe(400);
      expect(err.message).toBe(`archive evil.zip: entry ${name} ${why}; refusing to unpack it`);
    }
  });
});

describe("device nodes in a bundle's packages", () => {
  it("are refused, naming the package and the entry", async () => {
    const deb = await buildRawDeb(
      {
        control: { name: "mem-copy", version: "1", arch: "all" },
        entries: [
          { name: "./", type: "directory" },
          { name: "./dev/", type: "directory" },
          { name: "./dev/mem", type: "character-device", devmajor: 1, devminor: 1, mode: 0o666 },
        ],
      },
      path.join(work, "mem-copy.deb"),
    );
    const unpacked = await extractPackage({ deb }, { cacheDir: path.join(work, "cache") });
    expect(() => refuseDeviceNodes("mem-copy.deb", unpacked)).toThrow("mem-copy.deb: entry /dev/mem is a character device node; packages from outside the distribution may not create device nodes");
  });
});

describe("decompression bombs (KILN_MAX_IMAGE_SIZE)", () => {
  const limit = 1 << 20;
  const zeros = Buffer.alloc(64 << 20);

  /** Bytes the unpacking wrote to its scratch directory before it stopped. */
  function written(dir: string): number {
    return readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
  }

  it.each([
    ["bomb.zip", () => makeZip([{ name: "zeros.bin", content: zeros, deflate: true }])],
    ["bomb.tar.gz", async () => gzipSync(await makeTar([{ name: "zeros.bin", content: zeros }]))],
    ["bomb.gz", () => gzipSync(zeros)],
  ])("stop unpacking %s as soon as the count passes the limit, naming both", async (name, make) => {
    const bytes = await make();
    expect(bytes.length).toBeLessThan(limit); // small packed, 64 MiB unpacked
    const scratch = mkdtempSync(path.join(work, "scratch-"));
    const err = await failure([await artifact(name, bytes, { extract: true, installLocation: "/opt/bomb" })], { workDir: scratch, maxContentSize: limit });
    expect(err.status).toBe(413);
    expect(err.message).toContain(`artifact ${name}`);
    expect(err.message).toContain("KILN_MAX_IMAGE_SIZE (1 MiB)");
    // Stopped at the limit, give or take a chunk: not after unpacking the 64 MiB.
    expect(written(scratch)).toBeLessThanOrEqual(limit + (1 << 20));
  });

  it("counts plain files too, and lets content under the limit through", async () => {
    const big = await artifact("big.bin", Buffer.alloc(limit + 1), { installLocation: "/opt/big" });
    expect((await failure([big], { maxContentSize: limit })).message).toContain("artifact big.bin");
    const small = await layer([await artifact("small.tar.gz", gzipSync(await makeTar([{ name: "half", content: Buffer.alloc(limit / 2) }])), { extract: true, installLocation: "/opt/s" })], { maxContentSize: limit });
    expect(small.get("opt/s/half")?.type).toBe("file");
  });
});
