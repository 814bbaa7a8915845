import { describe, expect, it } from "vitest";
import { archMatches, formatRelation, formatRelationField, parseProvides, parseRelationField } from "../../src/debian/relations.js";
import { isKilnError } from "../../src/domain/errors.js";

describe("parseRelationField", () => {
  it("reads AND of OR-groups with versions, qualifiers and continuation lines", () => {
    const field = parseRelationField("libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0,\n python3:any (>=3.11~), perl:native, libfoo:amd64 (= 1:2.0-1)");
    expect(field).toEqual([
      [{ name: "libc6", op: ">=", version: "2.36" }],
      [{ name: "debconf", op: ">=", version: "0.5" }, { name: "debconf-2.0" }],
      [{ name: "python3", archQualifier: "any", op: ">=", version: "3.11~" }],
      [{ name: "perl", archQualifier: "native" }],
      [{ name: "libfoo", archQualifier: "amd64", op: "=", version: "1:2.0-1" }],
    ]);
  });

  it("reads the obsolete < and > as <= and >= (as dpkg does)", () => {
    expect(parseRelationField("a (< 1), b (> 2), c (<< 3), d (>> 4)")).toEqual([
      [{ name: "a", op: "<=", version: "1" }],
      [{ name: "b", op: ">=", version: "2" }],
      [{ name: "c", op: "<<", version: "3" }],
      [{ name: "d", op: ">>", version: "4" }],
    ]);
  });

  it("keeps or drops relations by architecture restriction for the target architecture", () => {
    const text = "a [amd64], b [!amd64], c [i386 arm64] | d, e [linux-any], f [any-arm64], g [!linux-amd64 !hurd-any], h";
    expect(formatRelationField(parseRelationField(text, { arch: "amd64" }))).toBe("a, d, e, h");
    expect(formatRelationField(parseRelationField(text, { arch: "hurd-i386" }))).toBe("b, d, h");
    expect(formatRelationField(parseRelationField(text, { arch: "arm64" }))).toBe("b, c | d, e, f, g, h");
    // Without a target architecture nothing is filtered.
    expect(parseRelationField(text)).toHaveLength(7);
  });

  it("evaluates build profile formulas (OR of AND-groups) against the active profiles", () => {
    const text = "a <!nocheck>, b <stage1 cross>, c <!stage1> <nocheck>, d";
    expect(formatRelationField(parseRelationField(text))).toBe("a, c, d");
    expect(formatRelationField(parseRelationField(text, { profiles: ["nocheck"] }))).toBe("c, d");
    expect(formatRelationField(parseRelationField(text, { profiles: ["stage1", "cross"] }))).toBe("a, b, d");
  });

  it("tolerates an empty field and a trailing comma", () => {
    expect(parseRelationField(undefined)).toEqual([]);
    expect(parseRelationField("  ")).toEqual([]);
    expect(parseRelationField("a, b,")).toEqual([[{ name: "a" }], [{ name: "b" }]]);
  });

  it.each([
    ["a (>= )", "expected name"],
    ["a | , b", "empty alternative"],
    ["a (=> 1)", "expected name"],
    ["-x", "expected name"],
    ["a [amd64 !i386]", "mixes negated and plain"],
    ["foo bar", "expected name"],
  ])("refuses %j", (text, why) => {
    let caught: unknown;
    try {
      parseRelationField(text, { arch: "amd64" });
    } catch (err) {
      caught = err;
    }
    expect(isKilnError(caught, "badRequest")).toBe(true);
    expect((caught as Error).message).toContain(why);
  });
});

describe("parseProvides", () => {
  it("reads names with optional exact versions", () => {
    expect(parseProvides("awk, mail-transport-agent, libfoo-abi (= 2.1)")).toEqual([{ name: "awk" }, { name: "mail-transport-agent" }, { name: "libfoo-abi", version: "2.1" }]);
  });

  it("refuses alternatives and inexact versions (policy 7.5)", () => {
    expect(() => parseProvides("a | b")).toThrow(/cannot have alternatives/);
    expect(() => parseProvides("a (>= 1)")).toThrow(/only exact \(=\) versions/);
  });
});

describe("formatting and architecture wildcards", () => {
  it("formats relations the way Debian writes them", () => {
    expect(formatRelation({ name: "python3", archQualifier: "any", op: ">=", version: "3.11" })).toBe("python3:any (>= 3.11)");
    expect(formatRelationField([[{ name: "a" }, { name: "b", op: "<<", version: "2" }], [{ name: "c" }]])).toBe("a | b (<< 2), c");
  });

  it.each([
    ["amd64", "any", true],
    ["amd64", "linux-any", true],
    ["amd64", "any-amd64", true],
    ["amd64", "any-i386", false],
    ["armhf", "any-arm", true],
    ["arm64", "any-arm", false],
    ["hurd-i386", "linux-any", false],
    ["hurd-i386", "hurd-any", true],
    ["i386", "i386", true],
    ["i386", "gnu-linux-any", true],
    ["amd64", "linux-amd64", true],
    ["amd64", "any-any-amd64", true],
    ["amd64", "linux-any-amd64", false],
    ["amd64", "all", false],
  ])("%s matches %s: %s", (arch, pattern, expected) => {
    expect(archMatches(arch, pattern)).toBe(expected);
  });
});
