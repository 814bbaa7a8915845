/**
 * Unpacking streams: a package with a 384 MiB file goes through decompression, md5 and the
 * content file, and back out through its ContentRef, while the process's memory (sampled every
 * few milliseconds) grows by far less than the file.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Rootfs } from "../../src/rootfs/rootfs.js";
import { unpackPackages } from "../../src/rootfs/unpack.js";
import { buildDeb, controlText, removeDir, tempDir } from "../fixtures/debs.js";

const SIZE = 384 << 20;
/**
 * Buffers in flight and garbage not yet collected: a constant, whatever the file size, but not a
 * small one. Decoded chunks live outside V8's heap, and V8 only forces a collection for them past
 * its external-memory soft limit (64 MiB), later still when the machine is busy; so a streaming
 * unpacker peaks somewhere around that, and one that held the file would pass 384 MiB.
 */
const GROWTH_LIMIT = 128 << 20;

let work: string;
beforeAll(async () => {
  work = tempDir("kiln-memory-");
  // Warm up (modules, decoders, the first fs handles) so the peaks below are the streaming alone.
  const small = buildDeb({ name: "warm", compression: "xz", files: [{ path: "usr/share/warm", content: "w".repeat(100_000) }] }, work);
  await unpackPackages(new Rootfs(), [{ deb: small }], { cacheDir: path.join(work, "cache") });
});
afterAll(() => removeDir(work));

// Each compression once: zeros are the worst case for decoders that ignore backpressure, since a
// few KiB of input expand to hundreds of MiB.
for (const compression of ["zstd", "gzip", "xz"] as const) {
it(`keeps memory flat while a large file streams through (${compression})`, { timeout: 120_000 }, async () => {
  const stage = path.join(work, `stage-${compression}`);
  mkdirSync(path.join(stage, "DEBIAN"), { recursive: true });
  mkdirSync(path.join(stage, "usr/share/big"), { recursive: true });
  writeFileSync(path.join(stage, "DEBIAN/control"), controlText({ name: "big" }));
  // A sparse file: nothing to write for the test, but every byte still streams through the unpacker.
  execFileSync("truncate", ["-s", String(SIZE), path.join(stage, "usr/share/big/zeros")]);
  const deb = path.join(work, `big-${compression}.deb`);
  execFileSync("dpkg-deb", ["--build", "--root-owner-group", `-Z${compression}`, "-z1", stage, deb], { stdio: "ignore" });

  const fs = new Rootfs();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  await unpackPackages(fs, [{ deb }], { cacheDir: path.join(work, "cache") });
  const entry = fs.lstat("usr/share/big/zeros")!;
  expect(entry.content!.size).toBe(SIZE);
  const zerosMd5 = createHash("md5");
  const zero = Buffer.alloc(1 << 20);
  for (let i = 0; i < SIZE >> 20; i++) zerosMd5.update(zero);
  expect(entry.content!.md5).toBe(zerosMd5.digest("hex"));
  let read = 0;
  for await (const chunk of entry.content!.open()) {
    const c = chunk as Buffer;
    if (!c.equals(zero.subarray(0, c.length))) throw new Error("content is not what was packed");
    read += c.length;
  }
  expect(read).toBe(SIZE);
  clearInterval(sampler);
  const growth = Math.max(peak, process.memoryUsage().rss) - before;
  console.log(`memory (${compression}): ${SIZE >> 20} MiB unpacked and read back, peak RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
  expect(growth).toBeLessThan(GROWTH_LIMIT);
});
}
