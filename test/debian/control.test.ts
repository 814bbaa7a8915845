import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FieldSelection, formatParagraph, formatParagraphs, makeParagraph, parseParagraph, parseParagraphs, readFields } from "../../src/debian/control.js";
import { isKilnError } from "../../src/domain/errors.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";

const MIRROR_PACKAGES = path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages");

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

describe("parseParagraphs", () => {
  const text = [
    "Package: hello",
    "Version: 2.10-3",
    "Depends: libc6 (>= 2.34),",
    " libfoo",
    "Description: the classic greeting",
    " It greets.",
    " .",
    "  - indented item",
    "",
    "",
    "package: second",
    "Multi-Arch:   foreign   ",
    "",
  ].join("\n");

  it("splits paragraphs and keeps fields in order, values without continuation markers", () => {
    const ps = parseParagraphs(text);
    expect(ps).toHaveLength(2);
    expect(ps[0]!.fields).toEqual([
      ["Package", "hello"],
      ["Version", "2.10-3"],
      ["Depends", "libc6 (>= 2.34),\nlibfoo"],
      ["Description", "the classic greeting\nIt greets.\n.\n - indented item"],
    ]);
    expect(ps[1]!.fields).toEqual([
      ["package", "second"],
      ["Multi-Arch", "foreign"],
    ]);
  });

  it("looks fields up case-insensitively", () => {
    const [a, b] = parseParagraphs(text);
    expect(a!.get("PACKAGE")).toBe("hello");
    expect(a!.get("depends")).toBe("libc6 (>= 2.34),\nlibfoo");
    expect(b!.get("Package")).toBe("second");
    expect(b!.get("Version")).toBeUndefined();
  });

  it("reads CRLF text like LF text, and a value whose first line is empty (Release's SHA256)", () => {
    const crlf = text.replace(/\n/g, "\r\n");
    expect(parseParagraphs(crlf).map((p) => p.fields)).toEqual(parseParagraphs(text).map((p) => p.fields));
    const release = parseParagraph("Suite: bookworm\nSHA256:\n abc 12 main/Packages\n def 34 main/Packages.xz\n");
    expect(release.get("SHA256")).toBe("\nabc 12 main/Packages\ndef 34 main/Packages.xz");
  });

  it("treats a whitespace-only line as a paragraph separator", () => {
    expect(parseParagraphs("A: 1\n \t \nB: 2\n").map((p) => p.fields)).toEqual([[["A", "1"]], [["B", "2"]]]);
  });

  it("refuses comments unless asked for them (only debian/control may have them)", () => {
    const withComment = "# generated\nPackage: a\n#note\nVersion: 1\n";
    const err = errorOf(() => parseParagraphs(withComment));
    expect(isKilnError(err, "badRequest")).toBe(true);
    expect(err.message).toBe("control data, line 1: comment lines are not allowed here");
    expect(parseParagraphs(withComment, { comments: true })[0]!.fields).toEqual([
      ["Package", "a"],
      ["Version", "1"],
    ]);
  });

  it.each([
    ["Package: a\nVersion: 1\nversion: 2\n", 'line 3: field "version" appears twice in one paragraph'],
    ["Package: a\n\n continued\n", "line 3: continuation line outside a field"],
    ["Package: a\nno colon here\n", 'line 2: expected "Field: value", got "no colon here"'],
    ["Package: a\n-Bad: x\n", 'line 2: "-Bad" is not a valid field name'],
  ])("names the line of a syntax error in %j", (input, message) => {
    expect(errorOf(() => parseParagraphs(input)).message).toBe(`control data, ${message}`);
  });

  it("parses a Debian-sized index of 64k paragraphs, every one of them", () => {
    // A Debian-sized index: the local mirror's stanzas, renamed, until there are 64k of them.
    const stanzas = readFileSync(MIRROR_PACKAGES, "utf8").trim().split("\n\n");
    const parts: string[] = [];
    for (let i = 0; parts.length < 64_000; i++) {
      for (const s of stanzas) parts.push(s.replace(/^Package: (.*)$/m, `Package: $1-${i}`));
    }
    const big = parts.join("\n\n") + "\n";
    expect(big.length).toBeGreaterThan(60_000_000);
    const ps = parseParagraphs(big);
    expect(ps).toHaveLength(parts.length);
    expect(ps[parts.length - 1]!.get("Package")).toMatch(/-\d+$/);
  });
});

describe("readFields", () => {
  it("returns the selected values of parsed and of hand-made paragraphs alike", () => {
    const sel = new FieldSelection(["Version", "Package", "Missing"]);
    const [parsed] = parseParagraphs("package: x\nDescription: long\n text\nVERSION: 1\n");
    expect(readFields(parsed!, sel)).toEqual(["1", "x", undefined]);
    expect(readFields(makeParagraph([["Package", "y"], ["Version", "2"]]), sel)).toEqual(["2", "y", undefined]);
  });
});

describe("formatParagraph", () => {
  it("writes the mirror's Packages index back byte for byte", () => {
    const original = readFileSync(MIRROR_PACKAGES, "utf8");
    expect(formatParagraphs(parseParagraphs(original))).toBe(original);
  });

  it("renders empty continuation lines as ' .' and an empty first line as a bare field", () => {
    const p = makeParagraph([
      ["Package", "x"],
      ["Description", "short\n\nafter a blank"],
      ["Conffiles", "\n/etc/x 0123"],
    ]);
    expect(formatParagraph(p)).toBe("Package: x\nDescription: short\n .\n after a blank\nConffiles:\n /etc/x 0123\n");
    expect(parseParagraph(formatParagraph(p)).get("Conffiles")).toBe("\n/etc/x 0123");
  });

  it("refuses field names that would corrupt the file", () => {
    expect(() => makeParagraph([["Bad: name", "x"]])).toThrow(/not a valid control field name/);
    expect(() => makeParagraph([["A", "1"], ["a", "2"]])).toThrow(/duplicate field "a"/);
  });
});
