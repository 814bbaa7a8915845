/**
 * The real thing: every package of bookworm's minbase from the local mirror, unpacked into one
 * merged-/usr tree, checked entry by entry against `dpkg-deb --fsys-tarfile | tar -tv` and the
 * packages' own md5sums, then rebuilt from the manifest cache alone.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MERGED_USR_DIRS, Rootfs, ROOTFS_OWNER } from "../../src/rootfs/rootfs.js";
import { unpackPackages, type PackageSource, type UnpackedPackage } from "../../src/rootfs/unpack.js";
import type { ContentRef } from "../../src/rootfs/types.js";
import { MIRROR_DIR, ROOT } from "../helpers/global-setup.js";
import { removeDir, tempDir } from "../fixtures/debs.js";
import { snapshot } from "./helpers.js";

interface Listed {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  name: string;
  link?: string;
}

const PERM_BITS = [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1];

/** `rwsr-xr-x` → 0o4755. */
function parsePerms(p: string): number {
  let mode = 0;
  for (let i = 0; i < 9; i++) if (p[i] !== "-" && p[i] !== "S" && p[i] !== "T") mode |= PERM_BITS[i]!;
  if (p[2] === "s" || p[2] === "S") mode |= 0o4000;
  if (p[5] === "s" || p[5] === "S") mode |= 0o2000;
  if (p[8] === "t" || p[8] === "T") mode |= 0o1000;
  return mode;
}

/** GNU tar's verbose listing of the package's data, with numeric owners. */
function listing(deb: string): Listed[] {
  const tarBytes = execFileSync("dpkg-deb", ["--fsys-tarfile", deb], { maxBuffer: 1 << 30 });
  const out = execFileSync("tar", ["-tv", "--numeric-owner", "-f", "-"], { input: tarBytes, encoding: "utf8", maxBuffer: 1 << 28 });
  return out
    .trimEnd()
    .split("\n")
    .map((line) => {
      const m = /^(\S)(\S{9})\s+(\d+)\/(\d+)\s+(\S+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
      if (!m) throw new Error(`cannot parse tar listing line: ${line}`);
      let name = m[6]!;
      let link: string | undefined;
      if (m[1] === "l") [name, link] = name.split(" -> ") as [string, string];
      if (m[1] === "h") [name, link] = name.split(" link to ") as [string, string];
      return { type: m[1]!, mode: parsePerms(m[2]!), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]), name, ...(link !== undefined ? { link } : {}) };
    });
}

/** `./usr/bin/` → `/usr/bin`, `./` → `/.` (dpkg's .list spelling). */
function listName(name: string): string {
  const p = name.replace(/^\.\//, "").replace(/\/$/, "");
  return p === "" ? "/." : `/${p}`;
}

/** Where the merged-/usr tree stores a shipped path. */
function stored(name: string): string {
  const p = name.replace(/^\.\//, "").replace(/\/$/, "");
  const first = p.split("/")[0]!;
  return MERGED_USR_DIRS.includes(first) ? `usr/${p}` : p;
}

async function md5Of(content: ContentRef): Promise<string> {
  const h = createHash("md5");
  for await (const chunk of content.open()) h.update(chunk as Buffer);
  return h.digest("hex");
}

const names = readFileSync(path.join(ROOT, "tools/minbase-bookworm.txt"), "utf8").split("\n").filter(Boolean);
const pool = path.join(MIRROR_DIR, "pool");

let work: string;
let debs: Array<{ name: string; deb: string }>;
let fs: Rootfs;
let unpacked: UnpackedPackage[];
let coldMs = 0;

beforeAll(async () => {
  work = tempDir("kiln-minbase-");
  const files = readdirSync(pool);
  debs = names.map((name) => {
    const file = files.find((f) => f.startsWith(`${name}_`) && f.endsWith(".deb"));
    if (!file) throw new Error(`${name} is missing from the local mirror ${pool}`);
    return { name, deb: path.join(pool, file) };
  });
  fs = new Rootfs({ usrMerge: MERGED_USR_DIRS });
  const t = performance.now();
  unpacked = await unpackPackages(fs, debs.map(({ deb }) => ({ deb })), { cacheDir: path.join(work, "cache"), concurrency: 2 });
  coldMs = performance.now() - t;
});
afterAll(() => removeDir(work));

describe("bookworm minbase", () => {
  it("unpacks all 88 packages without a conflict", () => {
    expect(names).toHaveLength(88);
    expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(names);
    expect(unpacked.every((u) => !u.fromCache)).toBe(true);
    expect(fs.warnings).toEqual([]);
    console.log(`minbase: 88 packages, ${fs.size} nodes, unpacked cold in ${coldMs.toFixed(0)} ms`);
  });

  it("lists, stores and owns every entry as dpkg-deb shows it", { timeout: 120_000 }, () => {
    const installed = new Map(fs.installedPackages().map((p) => [p.pkg.name, p]));
    const firstDirMode = new Map<string, number>();
    let nonDirs = 0;
    for (const { name, deb } of debs) {
      const entries = listing(deb);
      expect(installed.get(name)!.files, name).toEqual(entries.map((e) => listName(e.name)));
      for (const e of entries) {
        const where = stored(e.name);
        if (e.type === "d") {
          if (!firstDirMode.has(where)) firstDirMode.set(where, e.mode);
          if (where === "") continue;
          const node = fs.lstat(where);
          expect(node?.type, `${name} ${e.name}`).toBe("dir");
          // dpkg keeps the first package's directory metadata (the tree's own /usr dirs aside).
          if (fs.owner(where) !== ROOTFS_OWNER) expect(node!.mode, `${name} ${e.name}`).toBe(firstDirMode.get(where));
          continue;
        }
        nonDirs++;
        const node = fs.lstat(where);
        expect(node, `${name} ${e.name}`).toBeDefined();
        expect(fs.owner(where), e.name).toBe(name);
        expect({ mode: node!.mode, uid: node!.uid, gid: node!.gid }, `${name} ${e.name}`).toEqual({ mode: e.mode, uid: e.uid, gid: e.gid });
        if (e.type === "-") expect([node!.type, node!.content?.size], e.name).toEqual(["file", e.size]);
        else if (e.type === "l") expect([node!.type, node!.linkname], e.name).toEqual(["symlink", e.link]);
        else if (e.type === "h") expect([node!.type, node!.linkname], e.name).toEqual(["hardlink", stored(e.link!)]);
        else throw new Error(`unexpected entry type ${e.type} in ${name}`);
      }
    }
    expect(fs.entries().filter((e) => e.type !== "dir" && fs.owner(e.path) !== ROOTFS_OWNER)).toHaveLength(nonDirs);
  });

  it("stores the bytes the packages' md5sums promise", { timeout: 120_000 }, async () => {
    let checked = 0;
    for (const p of fs.installedPackages()) {
      const sums = p.controlFiles.get("md5sums")?.toString("utf8") ?? "";
      for (const line of sums.split("\n").filter(Boolean)) {
        const [sum, rel] = [line.slice(0, 32), line.slice(34)];
        // A hard link shares its target's bytes: stat() follows it.
        const entry = fs.stat(stored(rel))!;
        expect(entry.type, rel).toBe("file");
        expect(entry.content!.md5, rel).toBe(sum);
        expect(await md5Of(entry.content!), rel).toBe(sum);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });

  it("rebuilds the same tree from the manifests alone, much faster", async () => {
    // No .deb is opened: the paths do not exist, only the sha256 keys do.
    const sources: PackageSource[] = unpacked.map((u, i) => ({ deb: path.join(work, "absent", `${names[i]}.deb`), sha256: u.sha256 }));
    const again = new Rootfs({ usrMerge: MERGED_USR_DIRS });
    const t = performance.now();
    const second = await unpackPackages(again, sources, { cacheDir: path.join(work, "cache") });
    const warmMs = performance.now() - t;
    console.log(`minbase: rebuilt from manifests in ${warmMs.toFixed(0)} ms (cold ${coldMs.toFixed(0)} ms)`);
    expect(second.filter((u) => u.fromCache)).toHaveLength(88);
    expect(snapshot(again)).toEqual(snapshot(fs));
    expect(again.installedPackages().map((p) => p.files)).toEqual(fs.installedPackages().map((p) => p.files));
    expect(warmMs).toBeLessThan(coldMs);
  });
});
