/**
 * The dpkg database fix-up against dpkg itself: packages built here with dpkg-deb are installed
 * with `dpkg --root` into one directory (the oracle) and unpacked with dpkg-deb into another, where
 * the fix-up writes the database; both databases must be byte-identical. The minbase case
 * (88 packages, dpkg --verify, dpkg-query) is in bookworm.test.ts.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { dpkgDatabaseFixup, formatList, infoName, triggerInterests } from "../../../src/rootfs/fixups/dpkg-database.js";
import { formatRelations, formatStatusStanza } from "../../../src/rootfs/fixups/dpkg-status.js";
import type { InstalledPackage } from "../../../src/rootfs/types.js";
import { runFixups, syntheticContext } from "./dir-view.js";
import { extractDebs, parseControl } from "./minbase.js";
import { syntheticPackage } from "./synthetic.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});
function tmp(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup.push(d);
  return d;
}

interface DebSpec {
  control: string;
  files: Record<string, string | { text: string; mode: number }>;
  members?: Record<string, string>;
}

/** Builds a .deb with dpkg-deb (root-owned, dpkg-deb's own member order). */
function buildDeb(spec: DebSpec): string {
  const dir = tmp("kiln-debsrc-");
  mkdirSync(path.join(dir, "DEBIAN"));
  writeFileSync(path.join(dir, "DEBIAN/control"), spec.control);
  for (const [name, text] of Object.entries(spec.members ?? {})) {
    writeFileSync(path.join(dir, "DEBIAN", name), text);
    chmodSync(path.join(dir, "DEBIAN", name), ["preinst", "postinst", "prerm", "postrm", "config"].includes(name) ? 0o755 : 0o644);
  }
  for (const [p, f] of Object.entries(spec.files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), typeof f === "string" ? f : f.text);
    chmodSync(path.join(dir, p), typeof f === "string" ? 0o644 : f.mode);
  }
  const out = path.join(tmp("kiln-deb-"), "pkg.deb");
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", dir, out], { stdio: "ignore" });
  return out;
}

const FOO: DebSpec = {
  control: `Package: foo
Version: 1:2.0-1
Architecture: amd64
Maintainer: Kiln Tests <t@example.org>
Installed-Size: 12
Depends: libc6(>=2.34) ,  bar|baz (<< 2), qux:any, old (< 1)
Pre-Depends: dpkg (>= 1.15)
Essential: no
Multi-Arch: same
Homepage: https://example.org/
X-Custom-Field: yes
Section: utils
Priority: optional
Built-Using: gcc-12 (= 12.2.0-14)
Description: a test with a trailing blank\x20
 long description\x20\x20
 .
 more
`,
  files: { "etc/foo.conf": "conf\n", "usr/bin/foo": { text: "#!/bin/sh\necho hi\n", mode: 0o755 }, "usr/share/doc/foo/copyright": "c\n" },
  members: { conffiles: "/etc/foo.conf\n", postinst: "#!/bin/sh\nexit 0\n", triggers: "interest-noawait /usr/share/foo-hooks\ninterest foo-reload\n" },
};

const BAR: DebSpec = {
  control: "Package: bar\nVersion: 3.1\nArchitecture: all\nMaintainer: Kiln Tests <t@example.org>\nEssential: yes\nProtected: yes\nProvides: baz (= 3.1)\nReplaces: oldbar (<< 2)\nBreaks: oldbar (<< 2)\nMulti-Arch: foreign\nDescription: another\n",
  files: { "bin/bar": { text: "#!/bin/sh\n", mode: 0o755 }, "usr/share/bar/data": "d\n" },
  members: { md5sums: "0123456789abcdef0123456789abcdef  bin/bar\n", prerm: "#!/bin/sh\nexit 0\n", shlibs: "libbar 1 bar\n", triggers: "interest /usr/share/foo-hooks\n" },
};

describe("dpkg database, compared with dpkg --install of the same packages", () => {
  let oracle: string;
  let ours: string;
  let packages: InstalledPackage[];
  beforeAll(async () => {
    const debs = [buildDeb(FOO), buildDeb(BAR)];
    oracle = tmp("kiln-dpkg-oracle-");
    for (const d of ["info", "updates", "triggers", "alternatives"]) mkdirSync(path.join(oracle, "var/lib/dpkg", d), { recursive: true });
    writeFileSync(path.join(oracle, "var/lib/dpkg/status"), "");
    execFileSync("dpkg", ["--root", oracle, "--force-depends", "--force-script-chrootless", "--force-not-root", "-i", ...debs], { stdio: "ignore" });
    ours = tmp("kiln-dpkg-ours-");
    packages = extractDebs(ours, debs);
    await runFixups(ours, [dpkgDatabaseFixup()], syntheticContext(packages));
  });

  test("status is byte-identical", () => {
    expect(readFileSync(path.join(ours, "var/lib/dpkg/status"), "utf8")).toBe(readFileSync(path.join(oracle, "var/lib/dpkg/status"), "utf8"));
  });

  test("info files are byte-identical, named pkg:arch for Multi-Arch: same, with dpkg's modes", () => {
    const names = readdirSync(path.join(oracle, "var/lib/dpkg/info")).sort();
    expect(readdirSync(path.join(ours, "var/lib/dpkg/info")).sort()).toEqual(names);
    expect(names).toContain("foo:amd64.list");
    for (const n of names) {
      const a = path.join(ours, "var/lib/dpkg/info", n);
      const b = path.join(oracle, "var/lib/dpkg/info", n);
      expect(readFileSync(a, "utf8"), n).toBe(readFileSync(b, "utf8"));
      expect(execFileSync("stat", ["-c", "%a", a]).toString(), n).toBe(execFileSync("stat", ["-c", "%a", b]).toString());
    }
  });

  test("trigger interests are recorded as dpkg records them", () => {
    for (const f of ["File", "foo-reload"]) {
      expect(readFileSync(path.join(ours, "var/lib/dpkg/triggers", f), "utf8"), f).toBe(readFileSync(path.join(oracle, "var/lib/dpkg/triggers", f), "utf8"));
    }
  });

  test("dpkg-query and dpkg --verify read the database", () => {
    const admin = path.join(ours, "var/lib/dpkg");
    const query = (dir: string): string => execFileSync("dpkg-query", [`--admindir=${dir}`, "-W", "-f", "${binary:Package} ${Status} ${Conffiles}\\n"]).toString();
    expect(query(admin)).toBe(query(path.join(oracle, "var/lib/dpkg")));
    expect(query(admin)).toContain("foo:amd64 install ok installed  /etc/foo.conf b9a771b420047cfaa3543e66c78f44f6\n");
    expect(execFileSync("dpkg-query", [`--admindir=${admin}`, "-S", "/usr/bin/foo"]).toString()).toBe("foo:amd64: /usr/bin/foo\n");
    // bar's md5sums member is deliberately wrong for /bin/bar: dpkg --verify must say so.
    let out = "";
    try {
      out = execFileSync("dpkg", ["--root", ours, "--verify"], { stdio: "pipe" }).toString();
    } catch (e) {
      out = (e as { stdout: Buffer }).stdout.toString() + (e as { stderr: Buffer }).stderr.toString();
    }
    expect(out).toBe("??5??????   /bin/bar\n");
  });
});

describe("status stanza formatting", () => {
  test("relations in dpkg's spelling", () => {
    expect(formatRelations("libc6(>=2.34) ,  bar|baz (<< 2), qux:any, old (< 1), new(>1)")).toBe("libc6 (>= 2.34), bar | baz (<< 2), qux:any, old (<= 1), new (>= 1)");
    expect(formatRelations("a,\n b")).toBe("a, b");
  });

  test("fields only a repository index has are dropped; unknown fields keep their order", () => {
    const control = parseControl(
      "Package: x\nVersion: 1\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 10\nMD5sum: 00\nSHA256: 11\nDescription-md5: 22\nTag: role::program\nMaintainer: M <m@x>\nDescription: d\n",
    );
    expect(formatStatusStanza(control, [])).toBe("Package: x\nStatus: install ok installed\nMaintainer: M <m@x>\nArchitecture: amd64\nVersion: 1\nDescription: d\nTag: role::program\n\n");
  });

  test("list file, info names and trigger interests", () => {
    expect(formatList(["/", "/usr", "/usr/bin/x"])).toBe("/.\n/usr\n/usr/bin/x\n");
    const lib = syntheticPackage({ name: "libx", fields: { "Multi-Arch": "same" }, members: { triggers: "# comment\ninterest-await ldconfig\nactivate-noawait ldconfig\n" } });
    expect(infoName(lib)).toBe("libx:amd64");
    expect(triggerInterests([lib]).named.get("ldconfig")).toBe("libx:amd64\n");
  });
});
