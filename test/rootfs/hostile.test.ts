/**
 * Hostile archives, made in code: each is refused with `unsafeArchive`, names the package and
 * the entry, and leaves no trace — neither in the tree nor in the unpack cache.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { MERGED_USR_DIRS, Rootfs } from "../../src/rootfs/rootfs.js";
import { unpackPackages } from "../../src/rootfs/unpack.js";
import { buildRawDeb, makeTar, removeDir, tempDir, type RawTarEntry } from "../fixtures/debs.js";
import { snapshot, thrown } from "./helpers.js";

let dir: string;
let cacheDir: string;
beforeAll(() => {
  dir = tempDir("kiln-hostile-");
  cacheDir = path.join(dir, "cache");
});
afterAll(() => removeDir(dir));

const base: RawTarEntry[] = [
  { name: "./", type: "directory" },
  { name: "./etc/", type: "directory" },
  { name: "./etc/passwd", content: "root:x:0:0::/root:/bin/sh\n" },
  { name: "./opt/", type: "directory" },
  // Stored as given: a link may point anywhere, it just may not be written through.
  { name: "./opt/up", type: "symlink", linkname: "../../../.." },
];

let n = 0;
async function rawDeb(name: string, entries: RawTarEntry[]): Promise<string> {
  return buildRawDeb({ control: { name }, entries }, path.join(dir, `${name}-${n++}.deb`));
}

/** A tree with the base package installed. */
async function baseTree(): Promise<Rootfs> {
  const fs = new Rootfs({ usrMerge: MERGED_USR_DIRS });
  await unpackPackages(fs, [{ deb: await rawDeb("base", base) }], { cacheDir });
  return fs;
}

function sha256(file: string): string {
  return execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0]!;
}

interface Case {
  title: string;
  entries: RawTarEntry[];
  message: RegExp;
}

const dirs: RawTarEntry[] = [{ name: "./", type: "directory" }, { name: "./usr/", type: "directory" }];

const cases: Case[] = [
  { title: "a '..' that climbs out", entries: [...dirs, { name: "../etc/passwd", content: "x" }], message: /^evil: entry "\.\.\/etc\/passwd" has a '\.\.' component$/ },
  { title: "a '..' in the middle", entries: [...dirs, { name: "./usr/../../x", content: "x" }], message: /entry "\.\/usr\/\.\.\/\.\.\/x" has a '\.\.' component/ },
  { title: "a '..' that would stay inside", entries: [...dirs, { name: "./usr/../etc/x", content: "x" }], message: /has a '\.\.' component/ },
  { title: "an absolute name", entries: [...dirs, { name: "/etc/passwd", content: "x" }], message: /entry "\/etc\/passwd" is an absolute path/ },
  { title: "a NUL in a name", entries: [...dirs, { name: "./usr/a\0b", content: "x", pax: true }], message: /contains a NUL byte/ },
  { title: "a NUL in a symlink target", entries: [...dirs, { name: "./usr/l", type: "symlink", linkname: "a\0b", pax: true }], message: /symlink target with a NUL byte/ },
  {
    title: "a symlink to / then a file through it",
    entries: [...dirs, { name: "./evil", type: "symlink", linkname: "/" }, { name: "./evil/etc/passwd", content: "pwned" }],
    message: /^evil: entry "\/evil\/etc\/passwd" goes through symlink \/evil -> \/, which leads to the root$/,
  },
  {
    title: "a symlink climbing out then a file through it",
    entries: [...dirs, { name: "./evil", type: "symlink", linkname: "../../.." }, { name: "./evil/tmp/x", content: "x" }],
    message: /entry "\/evil\/tmp\/x" climbs out of the root/,
  },
  {
    title: "a /. symlink then a file through it",
    entries: [...dirs, { name: "./usr/dot", type: "symlink", linkname: "/." }, { name: "./usr/dot/etc/shadow", content: "x" }],
    message: /goes through symlink \/usr\/dot -> \/\., which leads to the root/,
  },
  {
    title: "a symlink to . at the top then a file through it",
    entries: [...dirs, { name: "./here", type: "symlink", linkname: "." }, { name: "./here/etc/passwd", content: "x" }],
    message: /goes through symlink \/here -> \., which leads to the root/,
  },
  { title: "a symlink named ./. (the root itself)", entries: [...dirs, { name: "./.", type: "symlink", linkname: "/" }], message: /entry "\/\." would replace the root directory/ },
  {
    title: "a chain of innocent-looking links that ends outside",
    entries: [
      ...dirs,
      { name: "./x/", type: "directory" },
      { name: "./x/a", type: "symlink", linkname: "." },
      { name: "./x/a/b", type: "symlink", linkname: "." },
      { name: "./x/a/b/c", type: "symlink", linkname: "../.." },
      { name: "./x/a/b/c/escaped", content: "x" },
    ],
    message: /entry "\/x\/a\/b\/c\/escaped" climbs out of the root/,
  },
  { title: "writing through another package's link out of the root", entries: [...dirs, { name: "./opt/up/etc/x", content: "x" }], message: /entry "\/opt\/up\/etc\/x" climbs out of the root/ },
  { title: "a file under a missing-parent file", entries: [...dirs, { name: "./usr/f", content: "f" }, { name: "./usr/f/g", content: "g" }], message: /entry "\/usr\/f\/g" needs \/usr\/f to be a directory, but it is a file/ },
  { title: "a hard link out of the root", entries: [...dirs, { name: "./usr/x", type: "link", linkname: "../../etc/shadow" }], message: /entry "\.\/usr\/x" is a hard link whose target has a '\.\.' component/ },
  { title: "a hard link to an absolute path", entries: [...dirs, { name: "./usr/x", type: "link", linkname: "/etc/shadow" }], message: /is a hard link whose target is an absolute path/ },
  {
    title: "a hard link to a path the package does not ship (but the tree has)",
    entries: [...dirs, { name: "./usr/x", type: "link", linkname: "./etc/passwd" }],
    message: /entry "\.\/usr\/x" is a hard link to "\.\/etc\/passwd", which is not earlier in the package/,
  },
  {
    title: "a hard link to a later entry",
    entries: [...dirs, { name: "./usr/x", type: "link", linkname: "./usr/y" }, { name: "./usr/y", content: "y" }],
    message: /which is not earlier in the package/,
  },
  {
    title: "a hard link to a directory",
    entries: [...dirs, { name: "./usr/x", type: "link", linkname: "./usr/" }],
    message: /is a hard link to "\.\/usr\/", which is not a regular file/,
  },
];

/** Rewrites one byte of a tar header's name field (in place) and fixes the header checksum. */
function patchTarName(tarBytes: Buffer, name: string, index: number, byte: number): Buffer {
  for (let h = 0; h + 512 <= tarBytes.length; h += 512) {
    if (tarBytes.toString("latin1", h, h + name.length) !== name || tarBytes[h + name.length] !== 0) continue;
    tarBytes[h + index] = byte;
    tarBytes.fill(0x20, h + 148, h + 156);
    let sum = 0;
    for (let i = h; i < h + 512; i++) sum += tarBytes[i]!;
    tarBytes.write(`${sum.toString(8).padStart(6, "0")}\0 `, h + 148, "latin1");
    return tarBytes;
  }
  throw new Error(`no header named ${name}`);
}

describe("hostile archives", () => {
  it("refuses a name that is not valid UTF-8", async () => {
    const fs = await baseTree();
    const before = snapshot(fs);
    const name = "./usr/aXb";
    const data = patchTarName(await makeTar([...dirs, { name, content: "x" }]), name, 7, 0xff);
    const file = await buildRawDeb(
      { control: { name: "evil" }, entries: [], members: (m) => [m[0]!, m[1]!, { name: "data.tar", data }] },
      path.join(dir, "latin.deb"),
    );
    const err = await thrown(() => unpackPackages(fs, [{ deb: file }], { cacheDir }));
    expect(isKilnError(err, "unsafeArchive"), String(err)).toBe(true);
    expect(err.message).toMatch(/^evil: entry ".*" has a name or link target that is not valid UTF-8$/);
    expect(snapshot(fs)).toEqual(before);
  });

  for (const c of cases) {
    it(`refuses ${c.title}`, async () => {
      const fs = await baseTree();
      const before = snapshot(fs);
      const file = await rawDeb("evil", c.entries);
      const err = await thrown(() => unpackPackages(fs, [{ deb: file }], { cacheDir }));
      expect(isKilnError(err, "unsafeArchive"), String(err)).toBe(true);
      expect(err.message).toMatch(/^evil: entry /);
      expect(err.message).toMatch(c.message);
      // Nothing half-recorded: the tree and the package list are as before.
      expect(snapshot(fs)).toEqual(before);
      expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(["base"]);
      expect(fs.readdir("")).not.toContain("evil");
      // And no temporary file is left in the cache.
      const pkgDir = path.join(cacheDir, "unpacked", sha256(file));
      const left = existsSync(pkgDir) ? readdirSync(pkgDir) : [];
      expect(left.filter((f) => f.includes(".tmp-"))).toEqual([]);
    });
  }

  it("accepts links that point anywhere as long as nothing is written through them", async () => {
    const fs = await baseTree();
    const file = await rawDeb("linky", [
      ...dirs,
      { name: "./usr/abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "./usr/far", type: "symlink", linkname: "../../../../../../etc/passwd" },
      { name: "./usr/root", type: "symlink", linkname: "/" },
      { name: "./usr/lib/", type: "directory" },
      { name: "./usr/lib/real/", type: "directory" },
      { name: "./usr/lib/alias", type: "symlink", linkname: "real" },
      { name: "./usr/lib/alias/inside", content: "ok" },
    ]);
    await unpackPackages(fs, [{ deb: file }], { cacheDir });
    expect(fs.lstat("usr/far")).toMatchObject({ type: "symlink", linkname: "../../../../../../etc/passwd" });
    expect(fs.lstat("usr/lib/real/inside")).toMatchObject({ type: "file" });
    expect((await fs.readFile("usr/abs")).toString()).toMatch(/^root:/);
  });
});
