import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, truncateSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { bufferContent } from "../../src/rootfs/types.js";
import { MERGED_USR_DIRS, Rootfs, type RootfsOptions } from "../../src/rootfs/rootfs.js";
import { describeUnpacked, extractPackage, unpackPackage, unpackPackages, type UnpackOptions } from "../../src/rootfs/unpack.js";
import { buildDeb, removeDir, tempDir, type DebSpec } from "../fixtures/debs.js";
import { fileLists, snapshot, thrown } from "./helpers.js";

let dir: string;
let opts: UnpackOptions;
beforeAll(() => {
  dir = tempDir("kiln-rootfs-");
  opts = { cacheDir: path.join(dir, "cache") };
});
afterAll(() => removeDir(dir));

let counter = 0;
/** Builds a package (unique file name per call, so tests never share a cache entry by accident). */
function deb(spec: DebSpec): string {
  const out = path.join(dir, `b${counter++}`);
  mkdirSync(out);
  return buildDeb(spec, out);
}

function md5(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

function merged(extra: RootfsOptions = {}): Rootfs {
  return new Rootfs({ usrMerge: MERGED_USR_DIRS, ...extra });
}

async function install(fs: Rootfs, ...debs: string[]): Promise<void> {
  await unpackPackages(
    fs,
    debs.map((d) => ({ deb: d })),
    opts,
  );
}

const text = (fs: Rootfs, p: string): Promise<string> => fs.readFile(p).then((b) => b.toString("utf8"));

describe("unpacking one package", () => {
  it("records types, modes, owners, links and content", async () => {
    const file = deb({
      name: "demo",
      files: [
        { path: "usr/bin/su-like", content: "setuid", mode: 0o4755 },
        { path: "usr/bin/sg-like", content: "setgid", mode: 0o2711 },
        { path: "var/spool/drop", type: "dir", mode: 0o1733 },
        { path: "srv/owned", content: "mine", uid: 1234, gid: 4321, mode: 0o600 },
        { path: "usr/share/demo/readme", content: "read me\n" },
        { path: "usr/share/demo/abs-link", type: "symlink", target: "/etc/os-release" },
        { path: "usr/share/demo/rel-link", type: "symlink", target: "../../../../../outside" },
        { path: "usr/share/demo/hard", type: "hardlink", target: "usr/share/demo/readme" },
        { path: `usr/share/demo/${"long-name-".repeat(15)}end`, content: "long" },
      ],
    });
    const fs = merged();
    const [pkg] = await unpackPackages(fs, [{ deb: file }], opts);
    expect(pkg!.fromCache).toBe(false);

    expect(fs.lstat("usr/bin/su-like")).toMatchObject({ type: "file", mode: 0o4755, uid: 0, gid: 0 });
    expect(fs.lstat("usr/bin/sg-like")).toMatchObject({ type: "file", mode: 0o2711 });
    expect(fs.lstat("var/spool/drop")).toMatchObject({ type: "dir", mode: 0o1733 });
    expect(fs.lstat("srv/owned")).toMatchObject({ type: "file", mode: 0o600, uid: 1234, gid: 4321 });
    expect(await text(fs, "srv/owned")).toBe("mine");
    // Symlinks are stored verbatim, wherever they point.
    expect(fs.lstat("usr/share/demo/abs-link")).toMatchObject({ type: "symlink", linkname: "/etc/os-release" });
    expect(fs.lstat("usr/share/demo/rel-link")).toMatchObject({ type: "symlink", linkname: "../../../../../outside" });
    // One of the two names is the file, the other a hard link to it (tar picks the order).
    const a = fs.lstat("usr/share/demo/readme")!;
    const b = fs.lstat("usr/share/demo/hard")!;
    const [link, target] = a.type === "hardlink" ? [a, b] : [b, a];
    expect(link.type).toBe("hardlink");
    expect(link.linkname).toBe(target.path);
    expect(target.content!.md5).toBe(md5("read me\n"));
    expect(await text(fs, "usr/share/demo/hard")).toBe("read me\n");
    expect(await text(fs, "usr/share/demo/readme")).toBe("read me\n");
    expect(fs.stat(link.path)).toMatchObject({ type: "file", path: link.path });
    // Past tar's 100-byte name field (dpkg-deb writes a GNU long name).
    expect(await text(fs, `usr/share/demo/${"long-name-".repeat(15)}end`)).toBe("long");

    const listed = fs.installedPackages()[0]!;
    expect(listed.pkg).toMatchObject({ name: "demo", version: "1.0", architecture: "amd64" });
    expect(listed.files).toContain("/.");
    expect(listed.files).toContain("/usr/share/demo/hard");
    expect(listed.files).toContain("/var/spool/drop");
    expect(fs.owner("usr/bin/su-like")).toBe("demo");
  });

  it("stores merged-/usr paths under usr/ and lists them as shipped", async () => {
    const file = deb({
      name: "usrmerged",
      files: [
        { path: "bin/tool", content: "tool" },
        { path: "sbin/admin", content: "admin", mode: 0o700 },
        { path: "lib/x86_64-linux-gnu/libx.so.1", content: "lib" },
        { path: "lib64/ld-x.so", type: "symlink", target: "/lib/x86_64-linux-gnu/libx.so.1" },
        { path: "usr/bin/other", content: "other" },
      ],
    });
    const fs = merged();
    await install(fs, file);
    expect(fs.lstat("bin")).toMatchObject({ type: "symlink", linkname: "usr/bin" });
    expect(fs.lstat("usr/bin/tool")).toMatchObject({ type: "file" });
    expect(fs.realpath("bin/tool")).toBe("usr/bin/tool");
    expect(await text(fs, "/bin/tool")).toBe("tool");
    expect(fs.realpath("lib64/ld-x.so")).toBe("usr/lib/x86_64-linux-gnu/libx.so.1");
    expect(fs.readdir("bin")).toEqual(["other", "tool"]);
    const paths = fs.entries().map((e) => e.path);
    expect(paths).toContain("usr/sbin/admin");
    expect(paths).not.toContain("sbin/admin");
    expect(fs.installedPackages()[0]!.files).toEqual(expect.arrayContaining(["/bin", "/bin/tool", "/sbin/admin", "/lib64/ld-x.so", "/usr/bin/other"]));
    expect(fs.installedPackages()[0]!.files).not.toContain("/usr/bin/tool");

    // Without merged /usr the same package makes real directories.
    const plain = new Rootfs();
    await install(plain, file);
    expect(plain.lstat("bin")).toMatchObject({ type: "dir" });
    expect(plain.lstat("bin/tool")).toMatchObject({ type: "file", path: "bin/tool" });
    expect(plain.lstat("usr/bin/tool")).toBeUndefined();
  });

  it("accepts a package that ships the merged-/usr link itself, and refuses one that ships a file there", async () => {
    const fs = merged();
    await install(fs, deb({ name: "links", files: [{ path: "bin", type: "symlink", target: "usr/bin" }] }));
    expect(fs.installedPackages()[0]!.files).toContain("/bin");
    const err = await thrown(() => install(fs, deb({ name: "clobber", files: [{ path: "lib64", content: "not a dir" }] })));
    expect(isKilnError(err, "buildFailed")).toBe(true);
    expect(err.message).toMatch(/clobber: ships \/lib64 as a file, but in this merged-\/usr tree \/lib64 is a link to \/usr\/lib64/);
  });

  it("follows relative symlinks inside the root when writing, like a real unpack", async () => {
    const fs = merged();
    await install(
      fs,
      deb({
        name: "alias",
        files: [
          { path: "usr/lib/real", type: "dir" },
          { path: "usr/lib/alias", type: "symlink", target: "real" },
        ],
      }),
    );
    // A later package writes through the earlier one's link; the file lands in the real directory.
    await install(fs, deb({ name: "through", files: [{ path: "usr/lib/alias/file", content: "x" }] }));
    expect(fs.lstat("usr/lib/real/file")).toMatchObject({ type: "file" });
    expect(fs.lstat("usr/lib/alias")).toMatchObject({ type: "symlink" });
    expect(fileLists(fs).through).toContain("/usr/lib/alias/file");
  });
});

describe("overwrites between packages", () => {
  const tool = (name: string, content: string, extra: Partial<DebSpec> = {}): string =>
    deb({ name, ...extra, files: [{ path: "usr/bin/tool", content }, { path: `usr/share/${name}/own`, content: name }] });

  it("refuses a file another package owns, without Replaces, and leaves the tree as it was", async () => {
    const fs = merged();
    await install(fs, tool("a", "from a"));
    const before = snapshot(fs);
    const err = await thrown(() => install(fs, tool("b", "from b")));
    expect(isKilnError(err, "buildFailed")).toBe(true);
    expect(err.message).toBe("b: trying to overwrite '/usr/bin/tool', which is also in package a 1.0 (no Replaces)");
    expect(snapshot(fs)).toEqual(before);
    expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(["a"]);
    expect(await text(fs, "usr/bin/tool")).toBe("from a");
  });

  it("lets the later package win with a warning under fileConflicts: overwrite", async () => {
    const fs = merged({ fileConflicts: "overwrite" });
    await install(fs, tool("a", "from a"), tool("b", "from b"));
    expect(await text(fs, "usr/bin/tool")).toBe("from b");
    expect(fs.owner("usr/bin/tool")).toBe("b");
    expect(fs.warnings).toEqual(["b: overwrote '/usr/bin/tool', which is also in package a 1.0 without Replaces"]);
    expect(fileLists(fs).a).not.toContain("/usr/bin/tool");
    expect(fileLists(fs).a).toContain("/usr/share/a/own");
    expect(fileLists(fs).b).toContain("/usr/bin/tool");
  });

  it("honours Replaces with a satisfied version relation", async () => {
    const fs = merged();
    await install(fs, tool("a", "from a", { version: "1.5" }), tool("b", "from b", { replaces: "a (<< 2)" }));
    expect(await text(fs, "usr/bin/tool")).toBe("from b");
    expect(fs.warnings).toEqual([]);
    expect(fileLists(fs).a).not.toContain("/usr/bin/tool");
    expect(fileLists(fs).b).toContain("/usr/bin/tool");
  });

  it("does not honour Replaces whose version relation the installed package fails", async () => {
    const fs = merged();
    await install(fs, tool("a", "from a", { version: "2.0" }));
    const err = await thrown(() => install(fs, tool("b", "from b", { replaces: "a (<< 2)" })));
    expect(err.message).toMatch(/trying to overwrite '\/usr\/bin\/tool', which is also in package a 2\.0/);
  });

  it("keeps the installed file when the installed package Replaces the newcomer", async () => {
    const fs = merged();
    await install(fs, tool("a", "from a", { replaces: "b" }), tool("b", "from b"));
    expect(await text(fs, "usr/bin/tool")).toBe("from a");
    expect(fs.owner("usr/bin/tool")).toBe("a");
    expect(fileLists(fs).a).toContain("/usr/bin/tool");
    expect(fileLists(fs).b).not.toContain("/usr/bin/tool");
    expect(fileLists(fs).b).toContain("/usr/share/b/own");
  });

  it("keeps the first package's metadata for a shared directory, and lists it in both", async () => {
    const fs = merged();
    await install(
      fs,
      deb({ name: "first", files: [{ path: "opt/shared", type: "dir", mode: 0o750, uid: 7, gid: 8 }] }),
      deb({ name: "second", files: [{ path: "opt/shared", type: "dir", mode: 0o777 }, { path: "opt/shared/file", content: "f" }] }),
    );
    expect(fs.lstat("opt/shared")).toMatchObject({ type: "dir", mode: 0o750, uid: 7, gid: 8 });
    expect(fs.owner("opt/shared")).toBe("first");
    expect(fileLists(fs).first).toContain("/opt/shared");
    expect(fileLists(fs).second).toContain("/opt/shared");
    // A layer of "second" alone still carries the directories its file needs, with their metadata.
    const layer = snapshot(fs, (o) => o === "second");
    expect(layer.map((e) => e.path)).toEqual(["opt", "opt/shared", "opt/shared/file"]);
    expect(layer[1]).toMatchObject({ mode: 0o750, uid: 7, gid: 8, owner: "first" });
  });

  it("refuses a directory over a file and a file over a directory, even with Replaces", async () => {
    const fs = merged();
    await install(fs, deb({ name: "hasfile", files: [{ path: "opt/x", content: "file" }, { path: "opt/y/inside", content: "i" }] }));
    const before = snapshot(fs);
    // dpkg-deb archives the directory before its child, so the clash shows on the directory.
    const e1 = await thrown(() => install(fs, deb({ name: "wantsdir", replaces: "hasfile", files: [{ path: "opt/x/child", content: "c" }] })));
    expect(isKilnError(e1, "buildFailed")).toBe(true);
    expect(e1.message).toBe("wantsdir: trying to overwrite file '/opt/x' in package hasfile with a directory");
    const e2 = await thrown(() => install(fs, deb({ name: "wantsdir2", files: [{ path: "opt/x", type: "dir" }] })));
    expect(e2.message).toBe("wantsdir2: trying to overwrite file '/opt/x' in package hasfile with a directory");
    const e3 = await thrown(() => install(fs, deb({ name: "wantsfile", replaces: "hasfile", files: [{ path: "opt/y", content: "f" }] })));
    expect(e3.message).toBe("wantsfile: trying to overwrite directory '/opt/y' in package hasfile with nondirectory");
    expect(snapshot(fs)).toEqual(before);
    expect(fs.installedPackages()).toHaveLength(1);
  });

  it("keeps hard links' old content when their target is replaced", async () => {
    const fs = merged();
    await install(
      fs,
      deb({ name: "old", files: [{ path: "usr/bin/x", content: "old" }, { path: "usr/bin/y", type: "hardlink", target: "usr/bin/x" }, { path: "usr/bin/z", type: "hardlink", target: "usr/bin/x" }] }),
    );
    const target = ["usr/bin/x", "usr/bin/y", "usr/bin/z"].find((p) => fs.lstat(p)!.type === "file")!;
    await install(fs, deb({ name: "new", replaces: "old", files: [{ path: target, content: "new" }] }));
    expect(await text(fs, target)).toBe("new");
    const others = ["usr/bin/x", "usr/bin/y", "usr/bin/z"].filter((p) => p !== target);
    for (const p of others) expect(await text(fs, p)).toBe("old");
    // One survivor became the file, the other links to it; both still belong to "old".
    expect(others.map((p) => fs.lstat(p)!.type).sort()).toEqual(["file", "hardlink"]);
    const link = others.find((p) => fs.lstat(p)!.type === "hardlink")!;
    expect(fs.lstat(link)!.linkname).toBe(others.find((p) => p !== link));
    expect(others.map((p) => fs.owner(p))).toEqual(["old", "old"]);
  });

  it("refuses the same package twice", async () => {
    const fs = merged();
    const file = deb({ name: "twice", files: [{ path: "opt/t", content: "t" }] });
    await install(fs, file);
    const err = await thrown(() => install(fs, file));
    expect(err.message).toBe("twice is unpacked twice");
  });
});

describe("many packages at once", () => {
  it("records in install order whatever finishes decompressing first", async () => {
    const big = Array.from({ length: 40000 }, (_, i) => `${i} ${Math.sin(i)}\n`).join("");
    // The first package is much slower to decompress; the later ones take its file over in turn.
    const debs = [
      deb({ name: "p0", files: [{ path: "etc/winner", content: "p0" }, { path: "usr/share/big", content: big }] }),
      deb({ name: "p1", replaces: "p0", files: [{ path: "etc/winner", content: "p1" }] }),
      deb({ name: "p2", replaces: "p0, p1", files: [{ path: "etc/winner", content: "p2" }] }),
    ];
    const fs = merged();
    const done = await unpackPackages(
      fs,
      debs.map((d) => ({ deb: d })),
      { ...opts, concurrency: 3, noCache: true },
    );
    expect(done.map((u) => u.control.get("Package"))).toEqual(["p0", "p1", "p2"]);
    expect(await text(fs, "etc/winner")).toBe("p2");
    expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(["p0", "p1", "p2"]);
    expect(fileLists(fs).p0).not.toContain("/etc/winner");
    expect(fileLists(fs).p1).not.toContain("/etc/winner");
  });

  it("stops when cancelled, after the package being recorded", async () => {
    const fs = merged();
    const debs = ["c1", "c2", "c3"].map((name) => deb({ name, files: [{ path: `opt/${name}`, content: name }] }));
    const abort = new AbortController();
    const err = await thrown(() =>
      unpackPackages(
        fs,
        debs.map((d) => ({ deb: d })),
        { ...opts, signal: abort.signal, onInstalled: () => abort.abort() },
      ),
    );
    expect(isKilnError(err, "cancelled")).toBe(true);
    expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(["c1"]);
  });

  it("stops at the first failure, keeping what was recorded before it", async () => {
    const fs = merged();
    const debs = [
      deb({ name: "ok1", files: [{ path: "opt/one", content: "1" }] }),
      deb({ name: "bad", files: [{ path: "opt/one", content: "clash" }] }),
      deb({ name: "ok2", files: [{ path: "opt/two", content: "2" }] }),
    ];
    const err = await thrown(() => unpackPackages(fs, debs.map((d) => ({ deb: d })), opts));
    expect(err.message).toMatch(/^bad: trying to overwrite '\/opt\/one'/);
    expect(fs.installedPackages().map((p) => p.pkg.name)).toEqual(["ok1"]);
    expect(fs.lstat("opt/two")).toBeUndefined();
  });
});

describe("the manifest cache", () => {
  it("rebuilds the same tree from the manifest without the .deb", async () => {
    const file = deb({
      name: "cached",
      files: [
        { path: "usr/bin/c", content: "c", mode: 0o4755 },
        { path: "usr/share/cached/a", content: "aaa" },
        { path: "usr/share/cached/b", type: "hardlink", target: "usr/share/cached/a" },
        { path: "bin/s", type: "symlink", target: "../usr/bin/c" },
        { path: "etc/x", content: "conf" },
      ],
      controlFiles: { conffiles: "/etc/x\n", postinst: "#!/bin/sh\n" },
    });
    const cacheDir = path.join(dir, "cache-reuse");
    const first = merged();
    const u1 = await extractPackage({ deb: file }, { cacheDir });
    first.install(u1, describeUnpacked(u1));
    expect(u1.fromCache).toBe(false);

    const second = merged();
    // The .deb is not even there: only the manifest and content can have produced the tree.
    const gone = path.join(dir, "no-such.deb");
    const installed = await unpackPackage(second, { deb: gone, sha256: u1.sha256 }, { cacheDir });
    expect(snapshot(second)).toEqual(snapshot(first));
    expect(installed.files).toEqual(first.installedPackages()[0]!.files);
    expect(installed.controlFiles.get("postinst")!.toString()).toBe("#!/bin/sh\n");
    expect(installed.pkg.sha256).toBe(u1.sha256);
    expect(await text(second, "usr/share/cached/b")).toBe("aaa");

    // noCache decompresses again.
    const u3 = await extractPackage({ deb: file }, { cacheDir, noCache: true });
    expect(u3.fromCache).toBe(false);
    const u4 = await extractPackage({ deb: file }, { cacheDir });
    expect(u4.fromCache).toBe(true);
    expect(u4.date.getTime()).toBe(u1.date.getTime());

    // A damaged content file is noticed and the package unpacked again.
    truncateSync(path.join(cacheDir, "unpacked", u1.sha256, "content"), 2);
    const u5 = await extractPackage({ deb: file }, { cacheDir });
    expect(u5.fromCache).toBe(false);
    const third = merged();
    third.install(u5, describeUnpacked(u5));
    expect(snapshot(third)).toEqual(snapshot(first));
    expect(readdirSync(path.join(cacheDir, "unpacked", u1.sha256)).sort()).toEqual(["content", "manifest.json"]);
  });
});

describe("fix-ups applied to the tree", () => {
  it("adds and removes with the fix-up as owner, all or nothing", async () => {
    const fs = merged();
    await install(fs, deb({ name: "docs", files: [{ path: "usr/share/doc/docs/copyright", content: "c" }, { path: "etc/motd", content: "hi" }] }));
    fs.applyFixup("passwd", {
      entries: [
        { path: "etc/passwd", type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent("root:x:0:0:root:/root:/bin/sh\n") },
        { path: "/run/lock", type: "dir", mode: 0o1777, uid: 0, gid: 0 },
        { path: "etc/motd", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "/run/motd" },
      ],
      remove: ["usr/share/doc"],
    });
    expect(await text(fs, "etc/passwd")).toMatch(/^root:/);
    expect(fs.owner("etc/passwd")).toBe("<fixup:passwd>");
    expect(fs.owner("etc/motd")).toBe("<fixup:passwd>");
    expect(fs.lstat("usr/share/doc")).toBeUndefined();
    expect(fs.owner("run")).toBe("<fixup:passwd>");
    const layer = snapshot(fs, (o) => o === "<fixup:passwd>").map((e) => e.path);
    expect(layer).toEqual(["etc", "etc/motd", "etc/passwd", "run", "run/lock"]);
    // The package still shipped what a fix-up removed, as dpkg keeps excluded paths listed.
    expect(fileLists(fs).docs).toContain("/usr/share/doc/docs/copyright");

    const before = snapshot(fs);
    expect(() =>
      fs.applyFixup("broken", {
        entries: [
          { path: "etc/new", type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent("n") },
          { path: "usr", type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent("clobber") },
        ],
        remove: ["etc/passwd"],
      }),
    ).toThrow(/cannot replace the non-empty directory usr with a file/);
    expect(snapshot(fs)).toEqual(before);
  });
});

describe("reading the tree", () => {
  it("resolves symlinks within the root, with a loop limit", async () => {
    const fs = merged();
    await install(
      fs,
      deb({
        name: "links",
        files: [
          { path: "usr/bin/mawk", content: "awk" },
          { path: "etc/alternatives/awk", type: "symlink", target: "/usr/bin/mawk" },
          { path: "usr/bin/awk", type: "symlink", target: "/etc/alternatives/awk" },
          { path: "usr/lib/loop1", type: "symlink", target: "loop2" },
          { path: "usr/lib/loop2", type: "symlink", target: "loop1" },
          { path: "usr/lib/up", type: "symlink", target: "../../../../../usr/bin" },
        ],
      }),
    );
    expect(fs.realpath("bin/awk")).toBe("usr/bin/mawk");
    expect(fs.stat("usr/bin/awk")).toMatchObject({ type: "file", path: "usr/bin/mawk" });
    expect(fs.lstat("usr/bin/awk")).toMatchObject({ type: "symlink", linkname: "/etc/alternatives/awk" });
    expect(await text(fs, "/usr/bin/awk")).toBe("awk");
    expect(fs.stat("usr/lib/loop1")).toBeUndefined();
    expect(fs.realpath("usr/lib/loop1/x")).toBeUndefined();
    // Reading clamps ".." at the root, like a chroot.
    expect(fs.realpath("usr/lib/up/mawk")).toBe("usr/bin/mawk");
    expect(fs.readdir("usr/lib/up")).toContain("mawk");
    expect(fs.readdir("nope")).toEqual([]);
    await expect(fs.readFile("usr/bin")).rejects.toThrow(/not a regular file/);
    await expect(fs.readFile("usr/bin/nope")).rejects.toThrow(/does not exist/);
  });
});
