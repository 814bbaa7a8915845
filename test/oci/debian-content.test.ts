/**
 * Real Debian content through the writer: the data of a few bookworm packages from the local
 * mirror (hard links in perl-base, thousands of symlinks in tzdata, setuid-free binaries) becomes
 * one layer, which umoci must unpack into exactly the tree `dpkg-deb -x` makes of the same
 * packages (types, modes, owners, sizes, link targets and bytes; mtimes excepted, ours are the clock).
 */
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { spawn } from "node:child_process";
import { extract } from "tar-stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { assembleImage } from "../../src/oci/image.js";
import { writeLayer } from "../../src/oci/layer.js";
import { writeOciLayout } from "../../src/oci/layout.js";
import { bufferContent, type FsEntry, type NodeType } from "../../src/rootfs/types.js";
import { run, scratch } from "./fixtures.js";

const PACKAGES = ["base-files", "dash", "coreutils", "perl-base", "tzdata"];
let work: Awaited<ReturnType<typeof scratch>>;

beforeAll(async () => {
  work = await scratch();
});
afterAll(async () => work.cleanup());

async function debFile(name: string): Promise<string> {
  const pool = path.join(MIRROR_DIR, "pool");
  const file = (await readdir(pool)).find((f) => f.startsWith(`${name}_`) && f.endsWith(".deb"));
  if (!file) throw new Error(`${name} is not in the local mirror`);
  return path.join(pool, file);
}

/** The entries of a package's data.tar, read with tar-stream (contents in memory: test-sized packages only). */
async function debEntries(deb: string): Promise<FsEntry[]> {
  const child = spawn("dpkg-deb", ["--fsys-tarfile", deb], { stdio: ["ignore", "pipe", "inherit"] });
  const ex = extract();
  child.stdout.pipe(ex);
  const out: FsEntry[] = [];
  const types: Record<string, NodeType> = { file: "file", directory: "dir", symlink: "symlink", link: "hardlink" };
  const norm = (p: string): string => p.replace(/^\.\//, "").replace(/\/$/, "");
  for await (const entry of ex) {
    const h = entry.header;
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const p = norm(h.name);
    if (p === "" || p === ".") continue;
    const type = types[h.type];
    if (!type) throw new Error(`unexpected ${h.type} ${h.name}`);
    out.push({
      path: p,
      type,
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      ...(type === "symlink" ? { linkname: h.linkname! } : type === "hardlink" ? { linkname: norm(h.linkname!) } : {}),
      ...(type === "file" ? { content: bufferContent(Buffer.concat(chunks)) } : {}),
    });
  }
  return out;
}

/** `find` listing without mtimes, for comparing two trees. */
async function listing(root: string): Promise<string[]> {
  const { stdout } = await run("find", [".", "-mindepth", "1", "-printf", "%y %m %U:%G %s %n %p -> %l\n"], { cwd: root, maxBuffer: 64 << 20 });
  return stdout.trim().split("\n").map((l) => l.replace(/^d (\S+ \S+) \d+/, "d $1 -")).sort();
}

describe("real Debian packages", () => {
  test("umoci unpacks our layer into the tree dpkg-deb -x makes", async () => {
    const reference = path.join(work.dir, "reference");
    await mkdir(reference);
    const merged = new Map<string, FsEntry>();
    for (const name of PACKAGES) {
      const deb = await debFile(name);
      await run("dpkg-deb", ["-x", deb, reference]);
      for (const e of await debEntries(deb)) if (!merged.has(e.path)) merged.set(e.path, e);
    }
    const entries = [...merged.values()];
    expect(entries.filter((e) => e.type === "hardlink").length).toBeGreaterThan(0);
    expect(entries.filter((e) => e.type === "symlink").length).toBeGreaterThan(100);

    const clock = new Date("2024-06-01T00:00:00Z");
    const layer = await writeLayer(entries, work.blobs, { clock, createdBy: `packages: ${PACKAGES.join(", ")}` });
    const image = await assembleImage([layer], { architecture: "amd64", config: { Entrypoint: ["/bin/dash"] }, clock, blobs: work.blobs });
    const layout = path.join(work.dir, "layout");
    await writeOciLayout(layout, image, work.blobs, { tag: "debian" });
    const bundle = path.join(work.dir, "bundle");
    await run("umoci", ["unpack", "--image", `${layout}:debian`, bundle]);
    const rootfs = path.join(bundle, "rootfs");

    expect(await listing(rootfs)).toEqual(await listing(reference));
    await run("diff", ["-r", "--no-dereference", reference, rootfs], { maxBuffer: 16 << 20 });
  });
});
