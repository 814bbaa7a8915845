#!/usr/bin/env node
// CPU and output size of the layer gzip on one tar file: Node's zlib (one stream, as layers were
// written before libdeflate) against Kiln's gzip writer (libdeflate, 1 MiB members, 4 at once),
// level by level. CPU is the whole process's (the thread pool included).
//
//   npm run build && node bench/gzip-levels.mjs FILE.tar
import { readFileSync } from "node:fs";
import { gzip } from "node:zlib";
import { GZIP_MEMBER_SIZE, gzipFormat, gzipMembers } from "../dist/oci/gzip.js";
if (!process.argv[2]) throw new Error("usage: node bench/gzip-levels.mjs FILE.tar");
const data = readFileSync(process.argv[2]);
async function* chunks() {
  for (let o = 0; o < data.length; o += GZIP_MEMBER_SIZE) yield data.subarray(o, o + GZIP_MEMBER_SIZE);
}
async function measure(name, produce) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const size = await produce();
  const c = process.cpuUsage(c0);
  console.log(`${name.padEnd(44)} cpu ${((c.user + c.system) / 1e6).toFixed(2)} s  wall ${((performance.now() - t0) / 1e3).toFixed(2)} s  ${(size / 1e6).toFixed(2)} MB`);
}
console.log(`${(data.length / 1e6).toFixed(1)} MB of input`);
for (const level of [1, 4, 6]) {
  await measure(`zlib ${process.versions.zlib} level ${level}, one stream`, () => new Promise((resolve, reject) => gzip(data, { level, chunkSize: 256 << 10 }, (e, r) => (e ? reject(e) : resolve(r.length)))));
}
for (const level of [1, 2, 3, 4, 6]) {
  await measure(gzipFormat(level), async () => {
    let size = 0;
    for await (const m of gzipMembers(chunks(), { level })) size += m.length;
    return size;
  });
}
