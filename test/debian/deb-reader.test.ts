import { execFileSync } from "node:child_process";
import { readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDeb, type DebDataEntry, type DebPackage } from "../../src/debian/deb.js";
import { isKilnError } from "../../src/domain/errors.js";
import { buildDeb, buildRawDeb, makeAr, removeDir, tempDir, type RawTarEntry } from "../fixtures/debs.js";

let dir: string;
beforeAll(() => {
  dir = tempDir();
});
afterAll(() => removeDir(dir));

interface Seen {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname?: string;
  body?: string;
}

async function readAll(deb: DebPackage, xz?: "native" | "program"): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const e of deb.dataEntries(xz ? { xz } : {})) {
    const seen: Seen = { name: e.name, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid };
    if (e.linkname) seen.linkname = e.linkname;
    if (e.type === "file") seen.body = await bodyText(e);
    out.push(seen);
  }
  return out;
}

async function bodyText(e: DebDataEntry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of e.body) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

/** What `dpkg-deb --contents` lists: names in archive order. */
function dpkgContents(file: string): string[] {
  return execFileSync("dpkg-deb", ["--contents", file], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.replace(/^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+/, "").replace(/ -> .*$/, "").replace(/ link to .*$/, ""));
}

async function expectMalformed(file: string, pattern: RegExp, stage: "open" | "data" = "open"): Promise<void> {
  const run = async (): Promise<void> => {
    const deb = await openDeb(file);
    if (stage === "data") await readAll(deb);
  };
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${file} should be refused`).toBeDefined();
  expect(isKilnError(err, "badRequest"), String(err)).toBe(true);
  expect((err as Error).message).toContain(file);
  expect((err as Error).message, (err as Error).message).toMatch(pattern);
}

const bigText = Array.from({ length: 20000 }, (_, i) => `line ${i} of a file big enough to span many chunks\n`).join("");

describe("openDeb on packages built by dpkg-deb", () => {
  for (const compression of ["xz", "gzip", "zstd", "none"] as const) {
    it(`reads control and streams data (${compression})`, async () => {
      const file = buildDeb(
        {
          name: `demo-${compression}`,
          version: "2:1.2-3",
          depends: "libc6 (>= 2.36)",
          compression,
          sourceDateEpoch: 1_650_000_000,
          controlFiles: { conffiles: "/etc/demo.conf\n", postinst: "#!/bin/sh\nexit 0\n", triggers: "activate-noawait ldconfig\n" },
          files: [
            { path: "etc/demo.conf", content: "key=value\n" },
            { path: "usr/bin/demo", content: "#!/bin/sh\necho demo\n", mode: 0o4755 },
            { path: "usr/bin/demo-group", content: "g", mode: 0o2755 },
            { path: "var/tmp-demo", type: "dir", mode: 0o1777 },
            { path: "usr/share/demo/big.txt", content: bigText },
            { path: "usr/bin/demo-link", type: "symlink", target: "demo" },
            { path: "usr/bin/demo-hard", type: "hardlink", target: "usr/bin/demo" },
          ],
        },
        dir,
      );
      const deb = await openDeb(file);
      expect(deb.formatVersion).toBe("2.0");
      expect(deb.control.get("package")).toBe(`demo-${compression}`);
      expect(deb.control.get("Version")).toBe("2:1.2-3");
      expect(deb.control.get("Description")).toBe(`test package demo-${compression}\nit exists for a test`);
      expect([...deb.controlFiles.keys()].sort()).toEqual(["conffiles", "postinst", "triggers"]);
      expect(deb.controlFiles.get("postinst")!.toString()).toBe("#!/bin/sh\nexit 0\n");
      // dpkg-deb stamps the ar members with SOURCE_DATE_EPOCH.
      expect(deb.date.getTime()).toBe(1_650_000_000_000);
      expect(deb.dataMember.compression).toBe(compression);
      expect(deb.dataMember.name).toBe(compression === "none" ? "data.tar" : `data.tar.${{ xz: "xz", gzip: "gz", zstd: "zst" }[compression]}`);

      const entries = await readAll(deb);
      expect(entries.map((e) => e.name)).toEqual(dpkgContents(file));
      const by = new Map(entries.map((e) => [e.name, e]));
      expect(by.get("./usr/bin/demo")).toMatchObject({ type: "file", mode: 0o4755, uid: 0, gid: 0, body: "#!/bin/sh\necho demo\n" });
      expect(by.get("./usr/bin/demo-group")).toMatchObject({ type: "file", mode: 0o2755 });
      expect(by.get("./var/tmp-demo/")).toMatchObject({ type: "dir", mode: 0o1777 });
      expect(by.get("./usr/share/demo/big.txt")!.body).toBe(bigText);
      expect(by.get("./usr/bin/demo-link")).toMatchObject({ type: "symlink", linkname: "demo" });
      // tar stores the second name of an inode as a hard link to the first one archived.
      const hard = [by.get("./usr/bin/demo-hard")!, by.get("./usr/bin/demo")!];
      expect(hard.filter((e) => e.type === "hardlink")).toHaveLength(1);
      expect(hard.find((e) => e.type === "hardlink")!.linkname).toMatch(/^\.\/usr\/bin\/demo(-hard)?$/);
    });
  }

  it("keeps explicit owners when the package is not built with --root-owner-group", async () => {
    const file = buildDeb(
      {
        name: "owned",
        files: [
          { path: "srv/app", type: "dir", uid: 1000, gid: 1000, mode: 0o750 },
          { path: "srv/app/data", content: "x", uid: 1000, gid: 50, mode: 0o640 },
          { path: "usr/bin/tool", content: "t", mode: 0o2755, gid: 5 },
        ],
      },
      dir,
    );
    const by = new Map((await readAll(await openDeb(file))).map((e) => [e.name, e]));
    expect(by.get("./srv/app/")).toMatchObject({ uid: 1000, gid: 1000, mode: 0o750 });
    expect(by.get("./srv/app/data")).toMatchObject({ uid: 1000, gid: 50, mode: 0o640 });
    expect(by.get("./usr/bin/tool")).toMatchObject({ uid: 0, gid: 5, mode: 0o2755 });
  });

  it("decodes xz the same in-process and with the xz program", async () => {
    const file = buildDeb({ name: "xzboth", files: [{ path: "usr/share/a.txt", content: bigText }, { path: "usr/share/b", content: "b" }] }, dir);
    const deb = await openDeb(file);
    const native = await readAll(deb, "native");
    const program = await readAll(deb, "program");
    expect(native.find((e) => e.name === "./usr/share/a.txt")!.body).toBe(bigText);
    expect(program).toEqual(native);
  });

  it("streams the data member as a tar that GNU tar reads", async () => {
    const file = buildDeb({ name: "astar", files: [{ path: "opt/x", content: "hello" }] }, dir);
    const deb = await openDeb(file);
    const chunks: Buffer[] = [];
    for await (const c of deb.openDataTar()) chunks.push(c as Buffer);
    const listing = execFileSync("tar", ["-t"], { input: Buffer.concat(chunks), encoding: "utf8" });
    expect(listing.trim().split("\n")).toEqual(dpkgContents(file));
  });

  it("computes the sha256 of the file", async () => {
    const file = buildDeb({ name: "hashme", files: [{ path: "opt/y", content: "y" }] }, dir);
    const expected = execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0];
    expect(await (await openDeb(file)).sha256()).toBe(expected);
  });
});

describe("openDeb on packages assembled in code", () => {
  const entries: RawTarEntry[] = [
    { name: "./", type: "directory" },
    { name: "./usr/", type: "directory" },
    { name: "./usr/lib/", type: "directory" },
    { name: "./usr/lib/thing", content: "thing\n", mode: 0o755, uid: 123, gid: 456, uname: "app", gname: "app" },
    { name: "./usr/lib/pipe", type: "fifo", mode: 0o600 },
    { name: "./usr/lib/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
  ];

  it("reads a bzip2 data member (which dpkg-deb no longer writes)", async () => {
    const file = await buildRawDeb({ control: { name: "bz" }, entries, dataCompression: "bzip2" }, path.join(dir, "bz.deb"));
    const deb = await openDeb(file);
    expect(deb.dataMember).toMatchObject({ name: "data.tar.bz2", compression: "bzip2" });
    const seen: DebDataEntry[] = [];
    let body = "";
    for await (const e of deb.dataEntries()) {
      seen.push(e);
      if (e.name === "./usr/lib/thing") body = await bodyText(e);
    }
    expect(body).toBe("thing\n");
    expect(seen.map((e) => [e.name, e.type])).toEqual([
      ["./", "dir"],
      ["./usr/", "dir"],
      ["./usr/lib/", "dir"],
      ["./usr/lib/thing", "file"],
      ["./usr/lib/pipe", "fifo"],
      ["./usr/lib/null", "char"],
    ]);
    expect(seen[3]).toMatchObject({ uid: 123, gid: 456, uname: "app", gname: "app", mode: 0o755 });
    expect(seen[5]).toMatchObject({ devmajor: 1, devminor: 3 });
    // dpkg-deb agrees the package is well formed.
    expect(dpkgContents(file)).toEqual(seen.map((e) => e.name));
  });

  for (const style of ["gnu", "bsd"] as const) {
    it(`reads ${style.toUpperCase()}-style ar member names, skipping _ members`, async () => {
      const file = await buildRawDeb(
        {
          control: { name: `ar-${style}` },
          entries,
          dataCompression: "gzip",
          controlCompression: "gzip",
          arStyle: style,
          // An odd-sized member before data.tar checks the padding byte is skipped.
          extraMembers: [{ name: "_gpgorigin-with-a-long-name", data: Buffer.from("odd") }],
        },
        path.join(dir, `ar-${style}.deb`),
      );
      const deb = await openDeb(file);
      expect(deb.control.get("Package")).toBe(`ar-${style}`);
      expect((await readAll(deb)).map((e) => e.name)).toEqual(entries.map((e) => e.name));
    });
  }

  it("skips unread bodies", async () => {
    const file = await buildRawDeb({ control: { name: "skip" }, entries: [{ name: "./a", content: bigText }, { name: "./b", content: "b" }] }, path.join(dir, "skip.deb"));
    const names: string[] = [];
    let b = "";
    for await (const e of (await openDeb(file)).dataEntries()) {
      names.push(e.name);
      if (e.name === "./b") b = await bodyText(e);
    }
    expect(names).toEqual(["./a", "./b"]);
    expect(b).toBe("b");
  });
});

describe("malformed packages are refused with the file named", () => {
  it("not an ar archive", async () => {
    const file = path.join(dir, "junk.deb");
    writeFileSync(file, "this is not a package at all, just text\n".repeat(10));
    await expectMalformed(file, /not an ar archive/);
  });

  it("an empty file", async () => {
    const file = path.join(dir, "empty.deb");
    writeFileSync(file, "");
    await expectMalformed(file, /not an ar archive/);
  });

  it("a format version other than 2.x", async () => {
    const file = await buildRawDeb({ control: { name: "v3" }, entries: [], debianBinary: "3.0\n" }, path.join(dir, "v3.deb"));
    await expectMalformed(file, /format version "3\.0"/);
  });

  it("debian-binary not first", async () => {
    const file = await buildRawDeb({ control: { name: "order" }, entries: [], members: (m) => [m[1]!, m[0]!, m[2]!] }, path.join(dir, "order.deb"));
    await expectMalformed(file, /first member/);
  });

  it("no data member", async () => {
    const file = await buildRawDeb({ control: { name: "nodata" }, entries: [], members: (m) => m.slice(0, 2) }, path.join(dir, "nodata.deb"));
    await expectMalformed(file, /no data\.tar/);
  });

  it("an unknown member before data.tar", async () => {
    const file = await buildRawDeb({ control: { name: "extra" }, entries: [], extraMembers: [{ name: "surprise", data: Buffer.from("x") }] }, path.join(dir, "extra.deb"));
    await expectMalformed(file, /found "surprise"/);
  });

  it("an unsupported compression", async () => {
    const file = await buildRawDeb(
      { control: { name: "lz" }, entries: [], members: (m) => [m[0]!, m[1]!, { ...m[2]!, name: "data.tar.lzma" }] },
      path.join(dir, "lz.deb"),
    );
    await expectMalformed(file, /unsupported compression for member data\.tar\.lzma/);
  });

  it("an empty control file", async () => {
    const file = await buildRawDeb({ control: "", entries: [] }, path.join(dir, "emptyctl.deb"));
    await expectMalformed(file, /bad control file: expected one control paragraph, found 0/);
  });

  it("only debian-binary", async () => {
    const file = path.join(dir, "lonely.deb");
    writeFileSync(file, makeAr([{ name: "debian-binary", data: Buffer.from("2.0\n") }]));
    await expectMalformed(file, /no control\.tar member/);
  });

  it("a header that claims more bytes than the file has", async () => {
    const file = buildDeb({ name: "trunc", files: [{ path: "usr/share/t.txt", content: bigText }] }, dir);
    truncateSync(file, statSync(file).size - 100);
    await expectMalformed(file, /claims \d+ bytes but the file ends first/);
  });

  for (const compression of ["xz", "gzip", "zstd"] as const) {
    it(`a ${compression} control.tar that unpacks to more than any control archive holds`, async () => {
      const file = await buildRawDeb(
        { control: { name: "ctlbomb" }, controlFiles: { postinst: Buffer.alloc(40 << 20) }, entries: [], controlCompression: compression },
        path.join(dir, `ctlbomb-${compression}.deb`),
      );
      await expectMalformed(file, /control\.tar\.\w+ unpacks to more than 16777216 bytes/);
    });
  }

  for (const compression of ["xz", "gzip", "zstd", "bzip2"] as const) {
    it(`corrupt ${compression} data fails while streaming`, async () => {
      const file = await buildRawDeb({ control: { name: `bad-${compression}` }, entries: [{ name: "./big", content: bigText }], dataCompression: compression }, path.join(dir, `bad-${compression}.deb`));
      const bytes = readFileSync(file);
      const deb = await openDeb(file);
      // Flip bytes in the middle of the compressed data member.
      const mid = deb.dataMember.offset + Math.floor(deb.dataMember.size / 2);
      for (let i = 0; i < 64; i++) bytes[mid + i] = bytes[mid + i]! ^ 0x5a;
      writeFileSync(file, bytes);
      await expectMalformed(file, /data\.tar\.\w+ is corrupt/, "data");
    });
  }

  it("a data member cut short", async () => {
    const raw = await buildRawDeb({ control: { name: "short" }, entries: [{ name: "./big", content: bigText }], dataCompression: "none" }, path.join(dir, "short-src.deb"));
    const deb = await openDeb(raw);
    const bytes = readFileSync(raw);
    // Rewrite the data member header to a shorter, still consistent size: the tar inside ends early.
    const cut = 4096;
    const headerAt = deb.dataMember.offset - 60;
    bytes.write(String(cut).padEnd(10), headerAt + 48, "latin1");
    const file = path.join(dir, "short.deb");
    writeFileSync(file, bytes.subarray(0, deb.dataMember.offset + cut));
    await expectMalformed(file, /data\.tar is corrupt: Unexpected end of data/, "data");
  });
});
