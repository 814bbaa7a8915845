import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { assertValidXml, XSD_PATH, xmllintMessages } from "../helpers/xsd.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const valid = (version: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><ns0:containerTemplate ${NS}><distribution><arch>x86_64</arch><name>Debian</name><version>${version}</version></distribution></ns0:containerTemplate>`;
/** `name` before `arch`: the mistake the README warns about. */
const misordered = `<ns0:containerTemplate ${NS}><distribution><name>Debian</name><arch>x86_64</arch></distribution></ns0:containerTemplate>`;
const badBoolean = `<ns0:image ${NS}><compress>maybe</compress></ns0:image>`;
const notWellFormed = `<ns0:image ${NS}><compress>true</ns0:image>`;

describe("assertValidXml (test helper)", () => {
  it("accepts a valid body", async () => {
    await expect(assertValidXml(valid("12"))).resolves.toBeUndefined();
  });

  it("reports xmllint's message for an invalid body", async () => {
    await expect(assertValidXml(misordered)).rejects.toThrow(/Element 'arch': This element is not expected/);
    await expect(assertValidXml(badBoolean)).rejects.toThrow(/'maybe' is not a valid value of the atomic type 'xs:boolean'/);
  });

  it("reports a parser error and keeps working afterwards", async () => {
    await expect(assertValidXml(notWellFormed)).rejects.toThrow(/parser error/);
    await expect(assertValidXml("")).rejects.toThrow(/Document is empty|parser error/);
    await expect(assertValidXml(valid("11"))).resolves.toBeUndefined();
  });

  it("attributes each message to its own body when calls overlap", async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? misordered : i % 3 === 1 ? valid(String(i)) : badBoolean));
    const results = await Promise.all(bodies.map((b) => xmllintMessages(b)));
    results.forEach((messages, i) => {
      if (i % 3 === 1) expect(messages).toEqual([]);
      else if (i % 3 === 0) expect(messages.join("\n")).toMatch(/Element 'arch'/);
      else expect(messages.join("\n")).toMatch(/'maybe'/);
    });
  });

  it("agrees with a one-shot xmllint run", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-xsd-test-"));
    const file = path.join(dir, "body.xml");
    writeFileSync(file, misordered);
    let stderr = "";
    try {
      execFileSync("xmllint", ["--noout", "--schema", XSD_PATH, file], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      stderr = String((err as { stderr: Buffer }).stderr);
    }
    const expected = stderr.split("\n").filter((l) => l.includes("Schemas validity error")).map((l) => l.replace(file, "body"));
    expect(expected.length).toBeGreaterThan(0);
    expect(await xmllintMessages(misordered)).toEqual(expect.arrayContaining(expected));
  });
});
