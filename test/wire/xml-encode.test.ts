import { describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { decode, encode } from "../../src/wire/index.js";
import { assertValidXml } from "../helpers/xsd.js";
import { containerTemplate, credAccountDocker, mySoftware, samples } from "./samples.js";

/** The child element names of the root, in document order (enough for flat checks). */
function childNames(xml: string, parent: string): string[] {
  const inner = new RegExp(`<${parent}[^>]*>(.*)</${parent}>`, "s").exec(xml)![1]!;
  const names: string[] = [];
  let depth = 0;
  for (const m of inner.matchAll(/<(\/?)([A-Za-z_][\w.-]*)([^>]*?)(\/?)>/g)) {
    if (m[1] === "/") depth--;
    else {
      if (depth === 0) names.push(m[2]!);
      if (m[4] !== "/") depth++;
    }
  }
  return names;
}

describe("XML encoding", () => {
  it.each(samples.map(([root, value], i) => [`${root} #${i}`, root, value] as const))("%s validates against uforge.xsd", async (_label, root, value) => {
    const xml = encode(root, value, "xml");
    await assertValidXml(xml);
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ns0:${root} xmlns:ns0="http://www.usharesoft.com/uforge"`)).toBe(true);
    expect(xml.endsWith(`</ns0:${root}>`)).toBe(true);
  });

  it.each(samples.map(([root, value], i) => [`${root} #${i}`, root, value] as const))("%s round-trips through XML", (_label, root, value) => {
    const decoded = decode(root, encode(root, value, "xml"), "xml");
    expect(decoded.root).toBe(root);
    expect(decoded.value).toEqual(value);
  });

  it("writes inherited UForgeObject fields first, then the type's own, in XSD order", () => {
    const xml = encode("containerTemplate", containerTemplate, "xml");
    expect(childNames(xml, "ns0:containerTemplate")).toEqual([
      "created",
      "dbId",
      "digest",
      "lastModified",
      "uri",
      "distribution",
      "images",
      "imagesUri",
      "formatsUri",
    ]);
    expect(xml).toContain("<distribution><arch>x86_64</arch><name>Debian</name><uri>distributions/1</uri><version>12</version></distribution>");
  });

  it("orders children by declaration whatever the object's key order", async () => {
    const reversed = Object.fromEntries(Object.entries(containerTemplate).reverse());
    const distribution = { version: "12", uri: "distributions/1", name: "Debian", arch: "x86_64" } as const;
    const a = encode("containerTemplate", { ...containerTemplate, distribution }, "xml");
    const b = encode("containerTemplate", { ...reversed, distribution }, "xml");
    expect(b).toBe(a);
    expect(a.indexOf("<arch>")).toBeLessThan(a.indexOf("<name>"));
    await assertValidXml(b);
  });

  it("ignores unknown keys and omits undefined and null fields", async () => {
    const xml = encode("distribution", { name: "Debian", version: undefined, arch: null, colour: "blue", xsiTypo: 1 } as object, "xml");
    expect(xml).toBe('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ns0:distribution xmlns:ns0="http://www.usharesoft.com/uforge"><name>Debian</name></ns0:distribution>');
    await assertValidXml(xml);
  });

  it("escapes text and keeps a CR through a round trip", async () => {
    const xml = encode("mySoftware", mySoftware, "xml");
    expect(xml).toContain("<description>Hello, world — with \"quotes\", &lt;angle brackets&gt; &amp; ampersands&#13;\nand a CRLF</description>");
    await assertValidXml(xml);
    expect(decode("mySoftware", xml, "xml").value).toEqual(mySoftware);
  });

  it("replaces characters XML cannot carry rather than sending an invalid document", async () => {
    const xml = encode("mySoftware", { name: "bell\u0007 and lone \uD800 surrogate, emoji 🙂 kept" }, "xml");
    expect(xml).toContain("<name>bell\uFFFD and lone \uFFFD surrogate, emoji 🙂 kept</name>");
    await assertValidXml(xml);
  });

  it("writes dateTime in UTC with Z and millisecond precision", () => {
    const xml = encode("status", { eta: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) }, "xml");
    expect(xml).toContain("<eta>2026-01-02T03:04:05.006Z</eta>");
  });

  it("puts xsi:type (and the xsi namespace) on an abstract root and on polymorphic children", async () => {
    const xml = encode("credAccount", credAccountDocker, "xml");
    expect(xml).toMatch(
      /^<\?xml[^>]*\?><ns0:credAccount xmlns:ns0="http:\/\/www\.usharesoft\.com\/uforge" xmlns:xsi="http:\/\/www\.w3\.org\/2001\/XMLSchema-instance" xsi:type="ns0:CredAccountDocker">/,
    );
    await assertValidXml(xml);
    const list = encode("credAccounts", { total: 1, credAccounts: [credAccountDocker] }, "xml");
    expect(list).toContain('<credAccounts><credAccount xsi:type="ns0:CredAccountDocker"><created>');
    await assertValidXml(list);
  });

  it("writes xsi:type only where the concrete type differs from a concrete declared type", () => {
    expect(encode("image", { name: "plain" }, "xml")).not.toContain("xsi:");
    const published = encode("image", { xsiType: "PublishImageDocker", name: "pushed", tagName: "1.0" }, "xml");
    expect(published).toContain('xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns0:PublishImageDocker"');
    expect(published).toContain("<tagName>1.0</tagName>");
  });

  it("writes an empty list wrapper for an empty list, and omits an absent one", async () => {
    const empty = encode("containerTemplates", { total: 0, containerTemplates: [] }, "xml");
    expect(empty).toContain("<total>0</total><containerTemplates/>");
    await assertValidXml(empty);
    expect(decode("containerTemplates", empty, "xml").value).toEqual({ total: 0, containerTemplates: [] });
    expect(encode("containerTemplates", { total: 0 }, "xml")).not.toContain("<containerTemplates");
  });

  it("writes repeated elements without a wrapper in place", async () => {
    const xml = encode("user", { loginName: "alice", orgUris: { uri: ["orgs/1", "orgs/2"] } }, "xml");
    expect(xml).toContain("<orgUris><uri>orgs/1</uri><uri>orgs/2</uri></orgUris>");
    await assertValidXml(xml);
    expect(decode("user", xml, "xml").value).toEqual({ loginName: "alice", orgUris: { uri: ["orgs/1", "orgs/2"] } });
  });

  it("writes base64Binary fields as base64 and reads them back as bytes", async () => {
    const content = Buffer.from([0, 1, 2, 250, 255]);
    const xml = encode("certificate", { name: "ca.pem", content }, "xml");
    expect(xml).toContain("<content>AAEC+v8=</content>");
    await assertValidXml(xml);
    expect(decode("certificate", xml, "xml").value).toEqual({ name: "ca.pem", content });
  });

  describe("refuses values that would not validate, naming the field", () => {
    const cases: Array<[string, string, object, RegExp]> = [
      ["a string for a long", "containerTemplate", { dbId: "7" }, /containerTemplate\.dbId: cannot encode string "7" as a long/],
      ["a fraction for a long", "containerTemplate", { dbId: 7.5 }, /containerTemplate\.dbId: .* as a long/],
      ["an int out of range", "status", { percentage: 2 ** 31 }, /status\.percentage: .* as an int/],
      ["a string for a dateTime", "status", { eta: "2026-01-01" }, /status\.eta: .* as a dateTime/],
      ["an invalid Date", "status", { eta: new Date(Number.NaN) }, /status\.eta: cannot encode a Date as a dateTime/],
      ["a value outside an enumeration", "containerTemplate", { distribution: { arch: "sparc" } }, /containerTemplate\.distribution\.arch: cannot encode string "sparc" as one of i386, i586/],
      ["an abstract type without xsiType", "credAccount", { name: "x" }, /credAccount: CredAccount is abstract/],
      ["an abstract child without xsiType", "publishImage", { xsiType: "PublishImageDocker", credAccount: { uri: "users/a/accounts/1" } }, /publishImage\.credAccount: CredAccount is abstract/],
      ["an xsiType that is not a subtype", "credAccount", { xsiType: "Distribution" }, /type Distribution is not a CredAccount/],
      ["an unknown xsiType", "credAccount", { xsiType: "CredAccountMainframe" }, /unknown type "CredAccountMainframe"/],
      ["an object where a list is declared", "containerTemplates", { containerTemplates: { dbId: 1 } }, /containerTemplates\.containerTemplates: cannot encode an object as a list/],
      ["a bad item deep in a list", "softwareArtifact", { subSoftwareArtifacts: [{}, { subSoftwareArtifacts: [{ size: -0.5 }] }] }, /softwareArtifact\.subSoftwareArtifacts\[1\]\.subSoftwareArtifacts\[0\]\.size/],
    ];
    it.each(cases)("%s", (_label, root, value, message) => {
      let caught: unknown;
      try {
        encode(root, value, "xml");
      } catch (err) {
        caught = err;
      }
      expect(isKilnError(caught, "internal")).toBe(true);
      expect((caught as Error).message).toMatch(message);
    });
  });

  it("refuses a root uforge.xsd does not declare", () => {
    expect(() => encode("bogus", {}, "xml")).toThrow(/no root element <bogus>/);
  });
});
