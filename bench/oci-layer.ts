/**
 * Benchmarks the OCI layer writer on realistic content: the files of every `.deb` of the local
 * bookworm mirror (minbase + jq), unpacked with `dpkg-deb -x` into a scratch directory and loaded
 * into memory so that only the writer is measured (reading packages is another module's cost).
 *
 *   npx tsc -p tsconfig.test.json --noEmit false --outDir .cache/bench-js && node .cache/bench-js/bench/oci-layer.js
 *
 * It reports: our tar encoder vs tar-stream's pack (tar only, hashed, no gzip); one layer at
 * several gzip levels, and zstd; the whole tree split into 10 layers written concurrently (the builder's
 * case) at the default level; `tar | gzip` of the same tree as an anchor; and the docker-archive
 * writers (plain, gzip as one stream, gzip as parallel members).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pack } from "tar-stream";
import { BlobStore } from "../src/blobs/blob-store.js";
import { writeDockerArchive, writeDockerArchiveGzip } from "../src/oci/docker-archive.js";
import { assembleImage } from "../src/oci/image.js";
import { DEFAULT_GZIP_LEVEL, writeLayer } from "../src/oci/layer.js";
import { planTar, tarChunks } from "../src/oci/tar.js";
import type { Layer } from "../src/oci/types.js";
import { bufferContent, type FsEntry } from "../src/rootfs/types.js";

const ROOT = process.cwd();
const mirror = process.env.MIRROR_DIR ?? path.join(ROOT, ".cache/mirror");
const scratch = path.join(os.tmpdir(), "kiln-bench-oci");
const tree = path.join(scratch, "rootfs");

function unpack(): void {
  if (existsSync(path.join(tree, ".done"))) return;
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const pool = path.join(mirror, "pool");
  for (const f of readdirSync(pool).filter((f) => f.endsWith(".deb")).sort()) execFileSync("dpkg-deb", ["-x", path.join(pool, f), tree]);
  execFileSync("touch", [path.join(tree, ".done")]);
}

/** The unpacked tree as entries, file contents in memory, hard links detected by inode. */
function load(): FsEntry[] {
  const out: FsEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(tree, rel)).sort()) {
      if (rel === "" && name === ".done") continue;
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(tree, p));
      const base = { path: p, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        out.push({ ...base, type: "dir" });
        walk(p);
      } else if (st.isSymbolicLink()) out.push({ ...base, type: "symlink", linkname: readlinkSync(path.join(tree, p)) });
      else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) out.push({ ...base, type: "hardlink", linkname: first });
        else {
          if (st.nlink > 1) inodes.set(key, p);
          out.push({ ...base, type: "file", content: bufferContent(readFileSync(path.join(tree, p))) });
        }
      }
    }
  };
  walk("");
  return out;
}

const clock = new Date("2024-01-01T00:00:00Z");
const ms = (t: number): string => `${(performance.now() - t).toFixed(0)} ms`;

async function oursTar(entries: FsEntry[]): Promise<number> {
  const h = createHash("sha256");
  let n = 0;
  for await (const c of tarChunks(entries, { clock })) {
    h.update(c);
    n += c.length;
  }
  h.digest();
  return n;
}

async function tarStreamTar(entries: FsEntry[]): Promise<number> {
  const plan = planTar(entries);
  const p = pack();
  const h = createHash("sha256");
  let n = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      h.update(c);
      n += c.length;
      cb();
    },
  });
  const done = pipeline(p, sink);
  const typeMap = { file: "file", dir: "directory", symlink: "symlink", hardlink: "link", char: "character-device", block: "block-device", fifo: "fifo" } as const;
  for (const t of plan) {
    const e = t.entry;
    const header = {
      name: t.type === "dir" ? `${t.path}/` : t.path,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: clock,
      type: typeMap[t.type],
      linkname: t.linkname ?? "",
      size: t.type === "file" ? e.content!.size : 0,
    };
    if (t.type === "file") {
      const chunks: Buffer[] = [];
      for await (const c of e.content!.open()) chunks.push(c as Buffer);
      await new Promise<void>((resolve, reject) => p.entry(header, Buffer.concat(chunks), (err) => (err ? reject(err) : resolve())));
    } else {
      await new Promise<void>((resolve, reject) => p.entry(header, (err) => (err ? reject(err) : resolve())));
    }
  }
  p.finalize();
  await done;
  return n;
}

/** CPU (ms) of this process's reaped children: cutime + cstime of /proc/self/stat, in clock ticks of 10 ms. */
function childCpuMs(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function main(): Promise<void> {
  unpack();
  const entries = load();
  const bytes = entries.reduce((s, e) => s + (e.content?.size ?? 0), 0);
  console.log(`tree: ${entries.length} entries, ${(bytes / 1e6).toFixed(1)} MB of file content; zlib ${process.versions.zlib}; ${os.cpus().length} cpus`);

  for (let round = 0; round < 2; round++) {
    let t = performance.now();
    const a = await oursTar(entries);
    console.log(`tar only, ours:       ${ms(t)} (${(a / 1e6).toFixed(1)} MB)`);
    t = performance.now();
    const b = await tarStreamTar(entries);
    console.log(`tar only, tar-stream: ${ms(t)} (${(b / 1e6).toFixed(1)} MB)`);
  }

  const storeDir = path.join(scratch, "blobs");
  rmSync(storeDir, { recursive: true, force: true });
  const blobs = BlobStore.open(storeDir);
  for (const level of [1, 2, 3, 4, 5, 6, 9]) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    const layer = await writeLayer(entries, blobs, { clock, gzipLevel: level, createdBy: "bench" });
    const cpu = process.cpuUsage(cpu0);
    console.log(`one layer, gzip ${level}: ${ms(t)} wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU, ${(layer.size / 1e6).toFixed(2)} MB from ${(layer.uncompressedSize / 1e6).toFixed(1)} MB`);
  }

  // zstd (--compression zstd): the program's CPU is its own process's, counted once it is reaped.
  for (let round = 0; round < 2; round++) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    const child0 = childCpuMs();
    const layer = await writeLayer(entries, blobs, { clock, compression: "zstd", createdBy: "bench" });
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `one layer, zstd: ${ms(t)} wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU here + ${(childCpuMs() - child0).toFixed(0)} ms in zstd, ${(layer.size / 1e6).toFixed(2)} MB from ${(layer.uncompressedSize / 1e6).toFixed(1)} MB`,
    );
  }

  // The builder's case: 10 layers written at once, each with the parents it needs.
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const groups: FsEntry[][] = Array.from({ length: 10 }, () => []);
  entries.forEach((e, i) => {
    if (e.type !== "dir") groups[e.type === "hardlink" ? 0 : i % 10]!.push(e);
  });
  for (const e of entries) if (e.type === "hardlink") groups[0]!.push(byPath.get(e.linkname!)!);
  const unique = groups.map((g) => [...new Map(g.map((e) => [e.path, e])).values()]);
  let layers: Layer[] = [];
  for (let round = 0; round < 2; round++) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    layers = await Promise.all(unique.map((g, i) => writeLayer(g, blobs, { clock, createdBy: `part ${i}`, ancestors: (p) => byPath.get(p) })));
    const cpu = process.cpuUsage(cpu0);
    const total = layers.reduce((s, l) => s + l.size, 0);
    console.log(`10 layers concurrently, gzip ${DEFAULT_GZIP_LEVEL}: ${ms(t)} wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU, ${(total / 1e6).toFixed(2)} MB`);
  }

  const image = await assembleImage(layers, { architecture: "amd64", config: {}, clock, blobs });
  const counting = (): Writable & { bytes: number } => {
    const w = new Writable({
      write(c: Buffer, _e, cb) {
        w.bytes += c.length;
        cb();
      },
    }) as Writable & { bytes: number };
    w.bytes = 0;
    return w;
  };
  for (const [name, write] of [
    ["docker-archive, plain", (out: Writable) => writeDockerArchive(out, image, blobs, { repoTags: ["kiln/bench:1"] })],
    [`docker-archive .tar.gz, members one at a time`, (out: Writable) => writeDockerArchiveGzip(out, image, blobs, { parallelism: 1 })],
    [`docker-archive .tar.gz, parallel members`, (out: Writable) => writeDockerArchiveGzip(out, image, blobs, {})],
  ] as const) {
    const out = counting();
    const t = performance.now();
    await write(out);
    console.log(`${name}: ${ms(t)}, ${(out.bytes / 1e6).toFixed(2)} MB`);
  }

  const t = performance.now();
  const r = spawnSync("bash", ["-c", `tar -C ${tree} --sort=name -cf - . | gzip -${DEFAULT_GZIP_LEVEL} | wc -c`], { encoding: "utf8" });
  console.log(`anchor: GNU tar | gzip -${DEFAULT_GZIP_LEVEL}: ${ms(t)}, ${(Number(r.stdout) / 1e6).toFixed(2)} MB`);
}

await main();
