import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseControlParagraph } from "../../src/debian/deb-control.js";
import { binaryPackageFromControl, parseRelationField } from "../../src/debian/deb-package.js";
import { compareDebVersions, debVersionSatisfies } from "../../src/debian/deb-version.js";

describe("control paragraph", () => {
  it("keeps field order, joins continuation lines, looks names up case-insensitively", () => {
    const p = parseControlParagraph("Package: demo\nVersion: 1.0\nDescription: short\n long line\n .\n more\n# comment\nDepends: a,\n  b\n");
    expect(p.fields.map(([k]) => k)).toEqual(["Package", "Version", "Description", "Depends"]);
    expect(p.get("description")).toBe("short\nlong line\n.\nmore");
    expect(p.get("DEPENDS")).toBe("a,\n b");
    expect(p.get("Missing")).toBeUndefined();
  });

  it("refuses junk", () => {
    expect(() => parseControlParagraph("")).toThrow(/empty/);
    expect(() => parseControlParagraph(" leading continuation\n")).toThrow(/continuation/);
    expect(() => parseControlParagraph("no colon here\n")).toThrow(/not a "Field: value"/);
    expect(() => parseControlParagraph("A: 1\na: 2\n")).toThrow(/duplicate/);
    expect(() => parseControlParagraph("A: 1\n\nB: 2\n")).toThrow(/more than one paragraph/);
  });
});

describe("relations and the package they describe", () => {
  it("parses groups, alternatives, versions and qualifiers", () => {
    expect(parseRelationField("libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0, python3:any, foo [amd64], bar (<<2), old (< 1)")).toEqual([
      [{ name: "libc6", op: ">=", version: "2.36" }],
      [{ name: "debconf", op: ">=", version: "0.5" }, { name: "debconf-2.0" }],
      [{ name: "python3", archQualifier: "any" }],
      [{ name: "foo" }],
      [{ name: "bar", op: "<<", version: "2" }],
      [{ name: "old", op: "<=", version: "1" }],
    ]);
    expect(parseRelationField(undefined)).toEqual([]);
    expect(() => parseRelationField("good, (bad)")).toThrow(/invalid relation "\(bad\)"/);
  });

  it("describes a package from its control file", () => {
    const p = parseControlParagraph(
      "Package: mawk\nSource: mawk (1.3.4)\nVersion: 1.3.4.20200120-3.1\nArchitecture: amd64\nMulti-Arch: foreign\nPriority: required\nInstalled-Size: 263\nPre-Depends: libc6 (>= 2.34)\nProvides: awk\nReplaces: original-awk (<< 2012)\n",
    );
    const pkg = binaryPackageFromControl(p, { sha256: "ab".repeat(32), size: 10 });
    expect(pkg).toMatchObject({
      name: "mawk",
      source: "mawk",
      version: "1.3.4.20200120-3.1",
      architecture: "amd64",
      multiArch: "foreign",
      essential: false,
      installedSizeKiB: 263,
      provides: [{ name: "awk" }],
      replaces: [[{ name: "original-awk", op: "<<", version: "2012" }]],
      preDepends: [[{ name: "libc6", op: ">=", version: "2.34" }]],
      sha256: "ab".repeat(32),
      size: 10,
    });
    expect(() => binaryPackageFromControl(parseControlParagraph("Package: x\nVersion: 1\n"))).toThrow(/no Architecture field/);
  });
});

describe("Debian version ordering", () => {
  // Each pair is ascending, as dpkg --compare-versions agrees below.
  const ascending: Array<[string, string]> = [
    ["1.0", "1.0-1"],
    ["1.0~rc1", "1.0"],
    ["1.0~~", "1.0~~a"],
    ["1.0~~a", "1.0~"],
    ["1.0", "1.0a"],
    ["1.0", "1.0+b1"],
    ["2.0", "1:0.1"],
    ["1.2.3", "1.10"],
    ["2.36-9", "2.36-9+deb12u4"],
    ["1.0-1", "1.0-1.1"],
    ["9", "10"],
    ["1.0a", "1.0."],
    ["0:1.0", "1.0-0.1"],
  ];
  for (const [a, b] of ascending) {
    it(`${a} < ${b}`, () => {
      expect(compareDebVersions(a, b)).toBeLessThan(0);
      expect(compareDebVersions(b, a)).toBeGreaterThan(0);
      execFileSync("dpkg", ["--compare-versions", a, "lt", b]);
    });
  }

  it("treats equal spellings as equal", () => {
    expect(compareDebVersions("0:1.0-1", "1.0-1")).toBe(0);
    expect(compareDebVersions("1.01", "1.1")).toBe(0);
  });

  it("evaluates relations", () => {
    expect(debVersionSatisfies("1.0", "<<", "2")).toBe(true);
    expect(debVersionSatisfies("2", "<<", "2")).toBe(false);
    expect(debVersionSatisfies("2", "<=", "2")).toBe(true);
    expect(debVersionSatisfies("2", "=", "2")).toBe(true);
    expect(debVersionSatisfies("2.1", ">=", "2")).toBe(true);
    expect(debVersionSatisfies("2", ">>", "2")).toBe(false);
    expect(debVersionSatisfies("5", undefined, undefined)).toBe(true);
  });
});
