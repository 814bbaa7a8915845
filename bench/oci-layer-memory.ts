/**
 * Writes one big generated layer (default 1 GiB, `SIZE_MIB=...`) and reports time and RSS growth.
 * `NOISE=1` makes the content incompressible (deflate then runs ~10x slower: the worst case).
 *
 *   npx tsc -p tsconfig.test.json --noEmit false --outDir .cache/bench-js && node .cache/bench-js/bench/oci-layer-memory.js
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BlobStore } from "../src/blobs/blob-store.js";
import { writeLayer } from "../src/oci/layer.js";
import { repeatingFile } from "../test/oci/fixtures.js";

const size = Number(process.env.SIZE_MIB ?? 1024) * (1 << 20);
const level = Number(process.env.LEVEL ?? 1);
const block = Buffer.alloc(1 << 20, 0x61);
const noise = randomBytes(block.length);
const every = process.env.NOISE ? 1 : 16;
for (let i = 0; i < block.length; i += every) block[i] = noise[i]!;

const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-bench-mem-"));
try {
  const blobs = BlobStore.open(dir);
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const layer = await writeLayer(
    [repeatingFile("huge.bin", size, block)],
    blobs,
    { clock: new Date(0), createdBy: "bench", gzipLevel: level },
  );
  clearInterval(timer);
  const cpu = process.cpuUsage();
  console.log(
    `${size >> 20} MiB layer at gzip ${level}: ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU, ` +
      `blob ${(layer.size / 1e6).toFixed(1)} MB, RSS growth ${((peak - before) / 1e6).toFixed(1)} MB`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
