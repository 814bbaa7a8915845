import { execFileSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { parseParagraph } from "../../src/debian/control.js";
import { packageFromParagraph, unsafeFilenameReason } from "../../src/debian/package.js";
import { isKilnError } from "../../src/domain/errors.js";
import { buildDeb, removeDir, tempDir } from "../fixtures/debs.js";

const dir = tempDir("kiln-package-");
afterAll(() => removeDir(dir));

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

const STANZA = `Package: libfoo1
Source: foo (1.2-3)
Version: 1:1.2-3+b1
Architecture: amd64
Multi-Arch: same
Essential: yes
Priority: Required
Section: libs
Installed-Size: 120
Pre-Depends: libc6 (>= 2.34)
Depends: libbar | libbaz (>= 2), python3:any
Recommends: foo-data
Provides: libfoo-abi (= 1.2), foo-virtual
Conflicts: libfoo0 (<< 1)
Breaks: old-app (<= 2.0)
Replaces: libfoo0
Filename: pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb
Size: 4242
SHA256: ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789
Description: a library
 with a long description
`;

describe("packageFromParagraph", () => {
  it("reads every field a resolver and a rootfs need from an index stanza", () => {
    const p = parseParagraph(STANZA);
    const pkg = packageFromParagraph(p);
    expect(pkg).toMatchObject({
      name: "libfoo1",
      version: "1:1.2-3+b1",
      architecture: "amd64",
      multiArch: "same",
      essential: true,
      priority: "required",
      section: "libs",
      source: "foo",
      installedSizeKiB: 120,
      filename: "pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb",
      size: 4242,
      sha256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    });
    expect(pkg.preDepends).toEqual([[{ name: "libc6", op: ">=", version: "2.34" }]]);
    expect(pkg.depends).toEqual([[{ name: "libbar" }, { name: "libbaz", op: ">=", version: "2" }], [{ name: "python3", archQualifier: "any" }]]);
    expect(pkg.recommends).toEqual([[{ name: "foo-data" }]]);
    expect(pkg.provides).toEqual([{ name: "libfoo-abi", version: "1.2" }, { name: "foo-virtual" }]);
    expect(pkg.conflicts).toEqual([[{ name: "libfoo0", op: "<<", version: "1" }]]);
    expect(pkg.breaks).toEqual([[{ name: "old-app", op: "<=", version: "2.0" }]]);
    expect(pkg.replaces).toEqual([[{ name: "libfoo0" }]]);
    expect(pkg.paragraph).toBe(p);
    // A plain-object view for logs carries the parsed relations too.
    expect(JSON.parse(JSON.stringify(pkg)).depends).toEqual(pkg.depends);
  });

  it("fills defaults for a minimal stanza", () => {
    const pkg = packageFromParagraph(parseParagraph("Package: tiny\nVersion: 1\nArchitecture: all\n"));
    expect(pkg).toMatchObject({ multiArch: "no", essential: false, priority: undefined, source: "tiny", filename: undefined, size: undefined, sha256: undefined });
    expect(pkg.depends).toEqual([]);
    expect(pkg.provides).toEqual([]);
  });

  it("reads the control file of a real .deb built with dpkg-deb", () => {
    const deb = buildDeb({ name: "hello-kiln", version: "2.0-1", depends: "libc6 (>= 2.34) | libc6.1", provides: "hello", fields: { "Multi-Arch": "foreign", Priority: "optional" }, compression: "gzip" }, dir);
    const control = execFileSync("dpkg-deb", ["--field", deb], { encoding: "utf8" });
    const pkg = packageFromParagraph(parseParagraph(control), { eager: true });
    expect(pkg).toMatchObject({ name: "hello-kiln", version: "2.0-1", architecture: "amd64", multiArch: "foreign", priority: "optional" });
    expect(pkg.depends).toEqual([[{ name: "libc6", op: ">=", version: "2.34" }, { name: "libc6.1" }]]);
    expect(pkg.provides).toEqual([{ name: "hello" }]);
  });

  it.each([
    ["Version: 1\nArchitecture: all\n", "a control paragraph has no Package field"],
    ["Package: Bad_Name\nVersion: 1\nArchitecture: all\n", 'package Bad_Name: "Bad_Name" is not a valid package name'],
    ["Package: x\nArchitecture: all\n", "package x: no Version field"],
    ["Package: x\nVersion: a1\nArchitecture: all\n", 'package x: invalid version "a1": the upstream version does not start with a digit'],
    ["Package: x\nVersion: 1\n", "package x: no Architecture field"],
    ["Package: x\nVersion: 1\nArchitecture: all\nMulti-Arch: sometimes\n", 'package x: unknown Multi-Arch value "sometimes"'],
    ["Package: x\nVersion: 1\nArchitecture: all\nSize: 12kB\n", 'package x: Size "12kB" is not a whole number'],
    ["Package: x\nVersion: 1\nArchitecture: all\nSHA256: 1234\n", 'package x: SHA256 "1234" is not 64 hexadecimal digits'],
    ["Package: x\nVersion: 1\nArchitecture: all\nFilename: ../../etc/passwd\n", 'package x: refusing Filename "../../etc/passwd": it climbs out of the mirror with ..'],
    ["Package: x\nVersion: 1\nArchitecture: all\nFilename: /etc/passwd\n", 'package x: refusing Filename "/etc/passwd": it is an absolute path'],
    ["Package: x\nVersion: 1\nArchitecture: all\nEssential: maybe\n", "package x: Essential must be yes or no"],
  ])("refuses %j", (text, message) => {
    const err = errorOf(() => packageFromParagraph(parseParagraph(text)));
    expect(isKilnError(err, "badRequest")).toBe(true);
    expect(err.message).toContain(message);
  });

  it("names the package and field of a malformed relation when it is read", () => {
    const pkg = packageFromParagraph(parseParagraph("Package: x\nVersion: 1\nArchitecture: all\nDepends: good, (bad\n"));
    expect(errorOf(() => pkg.depends).message).toBe('package x: Depends: invalid relation "(bad": expected name[:arch] [(op version)] [[archs]] [<profiles>]');
    expect(errorOf(() => packageFromParagraph(pkg.paragraph, { eager: true })).message).toContain("package x: Depends:");
  });
});

describe("unsafeFilenameReason", () => {
  it.each([
    ["pool/main/a/apt/apt_2.6.1_amd64.deb", undefined],
    ["pool/main/g/gcc/g++-12_12.2.0-14_amd64.deb", undefined],
    ["pool/../../x.deb", "it climbs out of the mirror with .."],
    ["/x.deb", "it is an absolute path"],
    ["pool//x.deb", "it has an empty or . segment"],
    ["./x.deb", "it has an empty or . segment"],
    ["pool\\..\\x.deb", "it contains a backslash or a control character"],
    ["http://evil.example/x.deb", "it is a URL, not a path"],
    ["", "it is empty"],
  ])("%j → %s", (filename, reason) => {
    expect(unsafeFilenameReason(filename)).toBe(reason);
  });
});
