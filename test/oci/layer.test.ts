import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { GZIP_MEMBER_SIZE } from "../../src/oci/gzip.js";
import { assembleImage } from "../../src/oci/image.js";
import { DEFAULT_GZIP_LEVEL, GZIP_OS_BYTE, layerFormat, writeLayer } from "../../src/oci/layer.js";
import { writeOciLayout } from "../../src/oci/layout.js";
import { tarChunks } from "../../src/oci/tar.js";
import { bufferContent, type FsEntry } from "../../src/rootfs/types.js";
import { collect, lyingContent, patternBytes, repeatingFile, run, sampleEntries, scratch, sha256, shuffled, stallingFile } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
let work: Awaited<ReturnType<typeof scratch>>;

beforeAll(async () => {
  work = await scratch();
});
afterAll(async () => work.cleanup());

async function tmpFiles(): Promise<string[]> {
  return readdir(path.join(work.dir, "store", "tmp")).catch(() => []);
}

describe("writeLayer", () => {
  test("digest, diffId and sizes are what sha256sum, gzip and wc say of the stored blob", async () => {
    const layer = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "sample" });
    const file = work.blobs.path(layer.digest);
    const { stdout: blobSum } = await run("sha256sum", [file]);
    const { stdout: tarSum } = await run("bash", ["-c", `gzip -dc '${file}' | sha256sum`]);
    const { stdout: tarSize } = await run("bash", ["-c", `gzip -dc '${file}' | wc -c`]);
    expect(`sha256:${blobSum.split(" ")[0]}`).toBe(layer.digest);
    expect(`sha256:${tarSum.split(" ")[0]}`).toBe(layer.diffId);
    expect(Number(tarSize)).toBe(layer.uncompressedSize);
    expect((await readFile(file)).length).toBe(layer.size);
    expect(layer.createdBy).toBe("sample");
    // The tar inside is exactly what the tar writer produces.
    expect(sha256(await collect(tarChunks(sampleEntries(), { clock })))).toBe(layer.diffId);
    // The Layer's stream gives the blob.
    expect(sha256(await collect(layer.open()))).toBe(layer.digest);
  });

  test("the gzip header is fixed: no mtime, no file name, OS byte 255", async () => {
    const layer = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x" });
    const head = (await readFile(work.blobs.path(layer.digest))).subarray(0, 10);
    expect(head.subarray(0, 3).toString("hex")).toBe("1f8b08");
    expect(head[3]).toBe(0); // FLG: no FNAME, FCOMMENT, FEXTRA
    expect(head.readUInt32LE(4)).toBe(0); // MTIME
    expect(head[9]).toBe(GZIP_OS_BYTE);
    const { stdout } = await run("gzip", ["-lv", work.blobs.path(layer.digest)]);
    expect(stdout).toMatch(/defla/);
  });

  test("same entries give the same layer, whatever their order; another clock gives another layer", async () => {
    const a = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x" });
    const b = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x" });
    const c = await writeLayer(shuffled(sampleEntries(), 11), work.blobs, { clock, createdBy: "x" });
    const d = await writeLayer(sampleEntries(), work.blobs, { clock: new Date("2024-03-02T00:00:00Z"), createdBy: "x" });
    expect([b.digest, b.diffId]).toEqual([a.digest, a.diffId]);
    expect([c.digest, c.diffId]).toEqual([a.digest, a.diffId]);
    expect(d.digest).not.toBe(a.digest);
    expect(d.diffId).not.toBe(a.diffId);
    // Another gzip level: same tar, other compressed bytes.
    const e = await writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x", gzipLevel: (DEFAULT_GZIP_LEVEL as number) === 9 ? 1 : 9 });
    expect(e.diffId).toBe(a.diffId);
    expect(e.digest).not.toBe(a.digest);
    expect(layerFormat(1)).not.toBe(layerFormat(9));
  });

  test("layers written concurrently are the same as written one by one", async () => {
    const sets = [sampleEntries(), sampleEntries().filter((e) => !e.path.startsWith("usr")), sampleEntries().filter((e) => !e.path.startsWith("home"))];
    const one: string[] = [];
    for (const s of sets) one.push((await writeLayer(s, work.blobs, { clock, createdBy: "x" })).digest);
    const all = await Promise.all(sets.map((s) => writeLayer(s, work.blobs, { clock, createdBy: "x" })));
    expect(all.map((l) => l.digest)).toEqual(one);
    expect(new Set(one).size).toBe(3);
  });

  test("a content stream that delivers fewer bytes than declared fails, naming the path, and leaves nothing in the store", async () => {
    const before = await work.blobs.list();
    const entries: FsEntry[] = [...sampleEntries(), { path: "etc/short", type: "file", mode: 0o644, uid: 0, gid: 0, content: lyingContent(100_000, 99_999) }];
    const err = await writeLayer(entries, work.blobs, { clock, createdBy: "x" }).catch((e: unknown) => e);
    expect(isKilnError(err, "buildFailed")).toBe(true);
    expect((err as Error).message).toContain('"etc/short"');
    expect(await work.blobs.list()).toEqual(before);
    expect(await tmpFiles()).toEqual([]);
  });

  test("an abort stops a stalled write, rejects as cancelled and removes the temp blob", async () => {
    const before = await work.blobs.list();
    const controller = new AbortController();
    // A stream that delivers part of its content, then stalls forever.
    const { entry: stalled, opened } = stallingFile("etc/stalled", Buffer.alloc(3 << 20, 1));
    const pending = writeLayer([...sampleEntries(), stalled], work.blobs, { clock, createdBy: "x", signal: controller.signal });
    const settled = pending.catch((e: unknown) => e);
    try {
      // Stalled mid-layer: the content is open and the temp blob exists (its creation is async, so poll).
      const deadline = Date.now() + 10_000;
      while (!(opened() && (await tmpFiles()).length === 1)) {
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
  });

  test("an already aborted signal writes nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(writeLayer(sampleEntries(), work.blobs, { clock, createdBy: "x", signal: controller.signal })).rejects.toThrow(/cancelled/);
    expect(await tmpFiles()).toEqual([]);
  });
});

/** The gzip members of a file: offset and header of each, read by Python's zlib (an independent inflater). */
async function gzipMembersOf(file: string): Promise<{ count: number; inflated: number; headers: string[] }> {
  const script = [
    "import sys, zlib",
    "d = open(sys.argv[1], 'rb').read()",
    "heads, total = [], 0",
    "while d:",
    "  heads.append(d[:10].hex())",
    "  o = zlib.decompressobj(31)",
    "  total += len(o.decompress(d))",
    "  assert o.eof, 'truncated member'",
    "  d = o.unused_data",
    "print(len(heads), total, ' '.join(heads))",
  ].join("\n");
  const { stdout } = await run("python3", ["-c", script, file]);
  const [count, inflated, ...headers] = stdout.trim().split(" ");
  return { count: Number(count), inflated: Number(inflated), headers };
}

describe("writeLayer: gzip members", () => {
  // Sample tree plus 3.5 MiB of content: a tar of 4 members, the last one partial.
  const bigEntries = (): FsEntry[] => [...sampleEntries(), { path: "opt/big.bin", type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent(patternBytes(3.5 * 1024 * 1024, 5)) }];

  test("a layer is fixed-size gzip members, each with the fixed header, the same bytes whatever the parallelism", async () => {
    const a = await writeLayer(bigEntries(), work.blobs, { clock, createdBy: "big" });
    const b = await writeLayer(bigEntries(), work.blobs, { clock, createdBy: "big" });
    const one = await writeLayer(bigEntries(), work.blobs, { clock, createdBy: "big", gzipParallelism: 1 });
    const two = await writeLayer(bigEntries(), work.blobs, { clock, createdBy: "big", gzipParallelism: 2 });
    expect([b.digest, one.digest, two.digest]).toEqual([a.digest, a.digest, a.digest]);
    const file = work.blobs.path(a.digest);
    await run("gzip", ["-t", file]);
    const { stdout: tarSum } = await run("bash", ["-c", `gzip -dc '${file}' | sha256sum`]);
    expect(`sha256:${tarSum.split(" ")[0]}`).toBe(a.diffId);
    expect(sha256(await collect(tarChunks(bigEntries(), { clock })))).toBe(a.diffId);
    const members = await gzipMembersOf(file);
    expect(members.count).toBe(Math.ceil(a.uncompressedSize / GZIP_MEMBER_SIZE));
    expect(members.count).toBeGreaterThan(3);
    expect(members.inflated).toBe(a.uncompressedSize);
    // ID1 ID2 CM=8, FLG 0, MTIME 0, XFL (any), OS 255 — in every member.
    for (const h of members.headers) expect(h).toMatch(/^1f8b080000000000..ff$/);
  });

  test("Go's gzip readers take the members: skopeo copies the image to a docker-archive (inflating each layer against its diffId), umoci unpacks it", async () => {
    const layer = await writeLayer(bigEntries(), work.blobs, { clock, createdBy: "big" });
    const image = await assembleImage([layer], { architecture: "amd64", config: {}, clock, blobs: work.blobs });
    const layout = path.join(work.dir, "members-layout");
    await writeOciLayout(layout, image, work.blobs, { tag: "v1" });
    const archive = path.join(work.dir, "members.tar");
    await run("skopeo", ["copy", `oci:${layout}:v1`, `docker-archive:${archive}:kiln/members:v1`]);
    const { stdout: listing } = await run("tar", ["-tf", archive]);
    // skopeo stores the layer inflated, named by the sha256 of what it inflated: our diffId.
    expect(listing.split("\n")).toContain(`${layer.diffId.slice(7)}.tar`);
    const bundle = path.join(work.dir, "members-bundle");
    await run("umoci", ["unpack", "--image", `${layout}:v1`, bundle]);
    expect(sha256(await readFile(path.join(bundle, "rootfs/opt/big.bin")))).toBe(sha256(patternBytes(3.5 * 1024 * 1024, 5)));
  });
});

describe("writeLayer memory", () => {
  // Flat memory on both sides of gzip: the tar is 1 GiB and the blob still more than the allowed
  // growth (one random byte in 16 keeps the gzip near 12% while compressing fast).
  test("writing a 1 GiB layer grows the RSS by a constant, far below the layer's size", async () => {
    const size = 1 << 30;
    const block = Buffer.alloc(1 << 20, 0x61);
    const noise = randomBytes(block.length);
    for (let i = 0; i < block.length; i += 16) block[i] = noise[i]!;
    const generated = repeatingFile("huge.bin", size, block);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const t0 = performance.now();
    try {
      const layer = await writeLayer([generated], work.blobs, { clock, createdBy: "huge", gzipLevel: 1 });
      expect(layer.uncompressedSize).toBe(512 + size + 1024);
      expect(layer.size).toBeGreaterThan(100e6);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`1 GiB layer: ${(performance.now() - t0).toFixed(0)} ms, RSS growth ${((peak - before) / 1e6).toFixed(1)} MB`);
    // Buffers in flight and garbage V8 has not collected yet (it waits for its external-memory soft
    // limit, longer on a busy machine): tens of MB. A writer that held the layer would grow by 1 GB.
    expect(peak - before).toBeLessThan(200e6);
  });
});
