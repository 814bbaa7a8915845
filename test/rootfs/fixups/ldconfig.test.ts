/**
 * The ELF reader and /etc/ld.so.cache, with the host's ldconfig (bookworm, glibc 2.36) as the
 * oracle: `ldconfig -r <root> -X -C <file>` on the very tree the fix-up reads must give the same
 * bytes. ldconfig is only ever run by the tests, never by the build.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bufferSource, contentSource, readElf } from "../../../src/rootfs/fixups/elf.js";
import { buildLdSoCache, buildStringTable, libcmp } from "../../../src/rootfs/fixups/ld-so-cache.js";
import { buildTreeLdSoCache, generatorString, ldconfigFixup } from "../../../src/rootfs/fixups/ldconfig.js";
import type { ContentRef } from "../../../src/rootfs/types.js";
import { DirView, entryBytes, entryText, syntheticContext } from "./dir-view.js";
import { buildElf } from "./elf-builder.js";
import { minbaseTree } from "./minbase.js";
import { syntheticPackage, tempTree } from "./synthetic.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

/** The host ldconfig's Debian glibc version (`2.36-9+deb12u14`), to build the same generator string. */
function hostGlibcVersion(): string {
  const first = execFileSync("ldconfig", ["--version"]).toString().split("\n")[0]!;
  const m = /\(Debian GLIBC ([^)]+)\)/.exec(first);
  if (!m) throw new Error(`unexpected ldconfig --version: ${first}`);
  return m[1]!;
}

/** What the host's ldconfig writes for a tree (it creates no links: -X). */
function oracleCache(root: string): Buffer {
  execFileSync("ldconfig", ["-r", root, "-X", "-C", "/kiln-oracle.cache"], { stdio: "ignore" });
  const bytes = readFileSync(path.join(root, "kiln-oracle.cache"));
  rmSync(path.join(root, "kiln-oracle.cache"));
  rmSync(path.join(root, "var/cache/ldconfig"), { recursive: true, force: true });
  return bytes;
}

/** `ldconfig -p` of a cache file (the oracle's reading of our bytes). */
function printCache(root: string, bytes: Buffer): string {
  const file = path.join(root, "kiln-print.cache");
  execFileSync("sh", ["-c", 'cat > "$1"', "sh", file], { input: bytes });
  try {
    return execFileSync("ldconfig", ["-r", root, "-p", "-C", "/kiln-print.cache"]).toString();
  } finally {
    rmSync(file);
  }
}

function countingRef(bytes: Buffer, chunk = 4096): { ref: ContentRef; opens: () => number; delivered: () => number } {
  let opens = 0;
  let delivered = 0;
  const ref: ContentRef = {
    size: bytes.length,
    open: () => {
      opens++;
      return Readable.from(
        (function* () {
          for (let o = 0; o < bytes.length; o += chunk) {
            delivered += Math.min(chunk, bytes.length - o);
            yield bytes.subarray(o, o + chunk);
          }
        })(),
      );
    },
  };
  return { ref, opens: () => opens, delivered: () => delivered };
}

describe("readElf", () => {
  test("64-bit little-endian: soname, needed and interpreter, string table mapped through PT_LOAD", async () => {
    const elf = buildElf({ soname: "libalpha.so.1", needed: ["libc.so.6", "libz.so.1"], interpreter: "/lib64/ld-linux-x86-64.so.2", loadAddress: 0x7000 });
    const info = await readElf(bufferSource(elf));
    expect(info).toEqual({
      elfClass: 64,
      littleEndian: true,
      type: 3,
      machine: 62,
      flags: 0,
      interpreter: "/lib64/ld-linux-x86-64.so.2",
      dynamic: true,
      stringTable: true,
      names: [
        { tag: "needed", value: "libc.so.6" },
        { tag: "needed", value: "libz.so.1" },
        { tag: "soname", value: "libalpha.so.1" },
      ],
    });
  });

  test("32-bit big-endian", async () => {
    const info = await readElf(bufferSource(buildElf({ elfClass: 32, littleEndian: false, machine: 8, soname: "libmips.so.2" })));
    expect(info).toMatchObject({ elfClass: 32, littleEndian: false, machine: 8, names: [{ tag: "soname", value: "libmips.so.2" }] });
  });

  test("not ELF, truncated, or without a dynamic section", async () => {
    expect(await readElf(bufferSource(Buffer.from("GROUP ( libfoo.so.1 )\n".padEnd(80, " "))))).toBeUndefined();
    const elf = buildElf({ soname: "libx.so.1" });
    expect(await readElf(bufferSource(elf.subarray(0, 100)))).toBeUndefined();
    expect(await readElf(bufferSource(buildElf({ noDynamic: true })))).toMatchObject({ dynamic: false, names: [] });
  });

  test("streams a ContentRef: only the needed ranges, at most two passes, no whole-file buffer", async () => {
    // A 4 MiB "library": header and tables at the front, padding after them.
    const elf = buildElf({ soname: "libbig.so.1", needed: ["libc.so.6"], minSize: 4 << 20 });
    const { ref, opens, delivered } = countingRef(elf, 64 << 10);
    const src = contentSource(ref);
    const info = await readElf(src);
    src.close();
    expect(info?.names.map((n) => n.value)).toEqual(["libc.so.6", "libbig.so.1"]);
    expect(opens()).toBeLessThanOrEqual(2);
    expect(delivered()).toBeLessThan(256 << 10);
  });
});

describe("cache format pieces", () => {
  test("libcmp compares digit runs as numbers", () => {
    expect(libcmp("libfoo.so.10", "libfoo.so.9")).toBeGreaterThan(0);
    expect(libcmp("libfoo.so.1", "libfoo.so.1")).toBe(0);
    expect(libcmp("libfoo.so", "libfoo.so.1")).toBeLessThan(0);
    expect(libcmp("liba.so", "libb.so")).toBeLessThan(0);
  });

  test("the string table shares suffixes", () => {
    const t = buildStringTable(["/lib/libc.so.6", "libc.so.6", "libm.so.6"]);
    // Sorted on reversed bytes, descending: "...m.so.6" before "...c.so.6"; libc.so.6 lives inside /lib/libc.so.6.
    expect(t.bytes.toString("latin1")).toBe("libm.so.6\0/lib/libc.so.6\0");
    expect(t.offsets.get("/lib/libc.so.6")).toBe(10);
    expect(t.offsets.get("libc.so.6")).toBe(15);
  });

  test("an empty cache is still a valid cache", () => {
    const root = tempTree({ etc: { dir: true } });
    cleanup.push(root);
    expect(printCache(root, buildLdSoCache([], "ldconfig test"))).toBe("0 libs found in cache `/kiln-print.cache'\nCache generated by: ldconfig test\n");
  });
});

describe("ld.so.cache of a synthetic tree, byte for byte against ldconfig -r", () => {
  let root: string;
  beforeAll(() => {
    root = tempTree({
      "etc/ld.so.conf": "# the usual\ninclude /etc/ld.so.conf.d/*.conf\n",
      "etc/ld.so.conf.d/a.conf": "# comment\n/opt/kiln/lib/   \n/opt/kiln/link\n",
      "etc/ld.so.conf.d/b.conf": "/opt/kiln/lib2=libc6\nhwcap 0 nosegneg\n/opt/missing\n",
      "etc/ld.so.conf.d/.hidden.conf": "/opt/kiln/hidden\n",
      "etc/ld.so.conf.d/c.conf.disabled": "/opt/kiln/hidden\n",
      "opt/kiln/link": { link: "lib" },
      "opt/kiln/hidden/libhidden.so.1": buildElf({ soname: "libhidden.so.1" }),
      "opt/kiln/lib/libalpha.so.1.2.3": buildElf({ soname: "libalpha.so.1", needed: ["libc.so.6"] }),
      "opt/kiln/lib/libalpha.so.1": { link: "libalpha.so.1.2.3" },
      "opt/kiln/lib/libalpha.so": { link: "libalpha.so.1" },
      "opt/kiln/lib/libother.so.3": { link: "libalpha.so.1.2.3" },
      "opt/kiln/lib/libbeta.so.2": buildElf({}),
      "opt/kiln/lib/libgamma.so": "/* GNU ld script */\nGROUP ( /opt/kiln/lib/libgamma.so.0 AS_NEEDED ( libz.so.1 ) )\n",
      "opt/kiln/lib/libdelta.so.5": { link: "libnothere.so.5" },
      "opt/kiln/lib/libexec.so.1": buildElf({ type: 2, soname: "libexec.so.1" }),
      "opt/kiln/lib/libarm.so.1": buildElf({ machine: 183, soname: "libarm.so.1" }),
      "opt/kiln/lib/libi386.so.1": buildElf({ elfClass: 32, machine: 3, soname: "libi386.so.1", needed: ["libc.so.6"] }),
      "opt/kiln/lib/libi386b.so.1": buildElf({ elfClass: 32, machine: 3, soname: "libi386b.so.1" }),
      "opt/kiln/lib/libx32.so.1": buildElf({ elfClass: 32, machine: 62, soname: "libx32.so.1" }),
      "opt/kiln/lib/libnum.so.10": buildElf({ soname: "libnum.so.10" }),
      "opt/kiln/lib/libnum.so.9": buildElf({ soname: "libnum.so.9" }),
      "opt/kiln/lib/libz.so.1.#prelink#.a1b2c3": buildElf({ soname: "libprelinked.so.1" }),
      "opt/kiln/lib/libtiny.so.1": Buffer.from("\x7fELF\x02\x01\x01"),
      "opt/kiln/lib/libsub.so.d": { dir: true },
      "opt/kiln/lib/notalib.so": buildElf({ soname: "notalib.so" }),
      "opt/kiln/lib2/libalpha.so.1": buildElf({ soname: "libalpha.so.1" }),
      "opt/kiln/lib2/libi386c.so.1": buildElf({ elfClass: 32, machine: 3, soname: "libi386c.so.1" }),
      "usr/lib/x86_64-linux-gnu/libsys.so.1": buildElf({ soname: "libsys.so.1" }),
      "lib/x86_64-linux-gnu": { link: "../usr/lib/x86_64-linux-gnu" },
    });
    cleanup.push(root);
  });

  test("same bytes as ldconfig", async () => {
    const ours = await buildTreeLdSoCache(new DirView(root), "amd64", hostGlibcVersion());
    const theirs = oracleCache(root);
    expect(printCache(root, ours!)).toBe(printCache(root, theirs));
    expect(ours!.equals(theirs)).toBe(true);
    const listing = printCache(root, ours!);
    expect(listing).toContain("libi386b.so.1 (ELF) => /opt/kiln/lib/libi386b.so.1");
    expect(listing).toContain("libx32.so.1 (libc6,x32) => /opt/kiln/lib/libx32.so.1");
    expect(listing).toContain("libalpha.so (libc6,x86-64) => /opt/kiln/lib/libalpha.so");
    expect(listing).not.toContain("libhidden");
    expect(listing).not.toContain("libarm");
  });

  test("the fix-up writes it at /etc/ld.so.cache, 0644, generator from libc-bin's version", async () => {
    const r = await ldconfigFixup().apply({ ...syntheticContext([syntheticPackage({ name: "libc-bin", version: hostGlibcVersion() })]), fs: new DirView(root) });
    expect(r.entries.map((e) => [e.path, e.type, e.mode])).toEqual([["etc/ld.so.cache", "file", 0o644]]);
    expect((await entryText(r.entries[0])).endsWith(generatorString(hostGlibcVersion()))).toBe(true);
    const none = await ldconfigFixup().apply({ ...syntheticContext([]), fs: new DirView(root) });
    expect(none.entries).toEqual([]);
  });

  test("other architectures get no cache and a warning", async () => {
    const warnings: string[] = [];
    const r = await ldconfigFixup({ warn: (m) => warnings.push(m) }).apply({ ...syntheticContext([syntheticPackage({ name: "libc6" })]), arch: "riscv64", fs: new DirView(root) });
    expect(r.entries).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining("no ld.so.cache for architecture riscv64")]);
  });
});

describe("ld.so.cache of the real minbase", () => {
  test("same bytes as ldconfig -r on the extracted packages", async () => {
    const { root, packages } = minbaseTree();
    cleanup.push(root);
    const libcBin = packages.find((p) => p.pkg.name === "libc-bin")!;
    const r = await ldconfigFixup().apply({ ...syntheticContext(packages), fs: new DirView(root) });
    const ours = await entryBytes(r.entries[0]);
    expect(ours.subarray(ours.length - 80).toString("latin1").endsWith(generatorString(libcBin.pkg.version))).toBe(true);
    // The oracle names the host's glibc in its generator string: build ours with the same name.
    const comparable = await buildTreeLdSoCache(new DirView(root), "amd64", hostGlibcVersion());
    const theirs = oracleCache(root);
    expect(comparable!.equals(theirs)).toBe(true);
    expect(printCache(root, ours).split("\n").length).toBeGreaterThan(60);
  });
});
