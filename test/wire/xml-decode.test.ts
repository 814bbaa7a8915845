import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { KilnError } from "../../src/domain/errors.js";
import type { ErrorKind } from "../../src/domain/errors.js";
import { decode, encode } from "../../src/wire/index.js";
import { assertValidXml } from "../helpers/xsd.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

/** The three example bodies of spec/uforge/README.md, read from the README itself. */
function readmeExamples(): string[] {
  const readme = readFileSync(path.resolve(import.meta.dirname, "../../spec/uforge/README.md"), "utf8");
  const block = /```xml\n([\s\S]*?)```/.exec(readme)![1]!;
  return block.split(/\n\s*\n/).map((b) => b.trim()).filter((b) => b.startsWith("<ns0:"));
}

function refusal(run: () => unknown): KilnError {
  try {
    run();
  } catch (err) {
    if (err instanceof KilnError) return err;
    throw new Error(`expected a KilnError, got ${String(err)}`);
  }
  throw new Error("expected the body to be refused");
}

function expectRefused(kind: ErrorKind, run: () => unknown, message?: RegExp): void {
  const err = refusal(run);
  expect(err.kind).toBe(kind);
  expect(err.status).toBe(400);
  if (message) expect(err.message).toMatch(message);
}

describe("XML decoding", () => {
  describe("the example bodies of spec/uforge/README.md", () => {
    const [template, image, publish] = readmeExamples();

    it("are three, and valid against uforge.xsd", async () => {
      expect([template, image, publish].every((b) => b !== undefined)).toBe(true);
      for (const body of [template!, image!, publish!]) await assertValidXml(body);
    });

    it("decode the containerTemplate", () => {
      expect(decode("containerTemplate", template!, "xml")).toEqual({
        root: "containerTemplate",
        value: { distribution: { arch: "x86_64", name: "Debian", version: "12" } },
      });
    });

    it("decode the image", () => {
      expect(decode("image", image!, "xml").value).toEqual({
        compress: true,
        targetFormat: { name: "Docker" },
        entrypoint: '["/opt/hello/bin/hello"]',
      });
    });

    it("decode the publishImage with its xsi:types", () => {
      expect(decode("publishImage", publish!, "xml").value).toEqual({
        xsiType: "PublishImageDocker",
        credAccount: { xsiType: "CredAccountDocker", uri: "users/alice/accounts/2" },
        namespace: "alice",
        repositoryName: "hello",
        tagName: "1.0",
      });
    });
  });

  it("accepts a Buffer, a BOM, comments, processing instructions, CDATA and the predefined entities", () => {
    const body = Buffer.from(
      `\uFEFF<?xml version="1.0" encoding="UTF-8"?><!-- c --><?pi x?><ns0:mySoftware ${NS}>` +
        `<name>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x20AC;</name><description><![CDATA[<raw> & text]]></description></ns0:mySoftware>`,
    );
    expect(decode("mySoftware", body, "xml").value).toEqual({ name: "a & b <c> \"d\" 'e' é€", description: "<raw> & text" });
  });

  it("picks the root among several expected ones", () => {
    const body = `<ns0:uforgeError ${NS}><statusCode>404</statusCode></ns0:uforgeError>`;
    expect(decode(["containerTemplate", "uforgeError"], body, "xml")).toEqual({ root: "uforgeError", value: { statusCode: 404 } });
  });

  it("reads every scalar type", () => {
    const body =
      `<ns0:image ${NS}><created>2026-03-01T10:30:00+01:00</created><dbId> 8 </dbId><size>9007199254740991</size>` +
      `<compress>1</compress><ebs>0</ebs><ebsVolumeSize>-2147483648</ebsVolumeSize><uploadedTime>2026-03-01T09:30:00.5</uploadedTime>` +
      `<downloadUri>\n users/alice/x \n</downloadUri><name>  spaced  </name></ns0:image>`;
    expect(decode("image", body, "xml").value).toEqual({
      created: new Date("2026-03-01T09:30:00Z"),
      dbId: 8,
      size: 9007199254740991,
      compress: true,
      ebs: false,
      ebsVolumeSize: -2147483648,
      uploadedTime: new Date("2026-03-01T09:30:00.500Z"),
      downloadUri: "users/alice/x",
      name: "  spaced  ",
    });
  });

  it("reads nested softwareArtifacts and empty list wrappers", () => {
    const body =
      `<ns0:softwareArtifact ${NS}><name>app</name><subSoftwareArtifacts>` +
      `<softwareArtifact><name>a.tgz</name><extract>true</extract><subSoftwareArtifacts/></softwareArtifact>` +
      `<softwareArtifact><name>b</name><subSoftwareArtifacts><softwareArtifact><name>c.deb</name></softwareArtifact></subSoftwareArtifacts></softwareArtifact>` +
      `</subSoftwareArtifacts></ns0:softwareArtifact>`;
    expect(decode("softwareArtifact", body, "xml").value).toEqual({
      name: "app",
      subSoftwareArtifacts: [
        { name: "a.tgz", extract: true, subSoftwareArtifacts: [] },
        { name: "b", subSoftwareArtifacts: [{ name: "c.deb" }] },
      ],
    });
  });

  it("ignores unknown elements (and everything inside them) and attributes", () => {
    const body = `<ns0:image ${NS} foo="bar"><futureField><compress>false</compress><x>1</x></futureField><compress a="b">true</compress></ns0:image>`;
    expect(decode("image", body, "xml").value).toEqual({ compress: true });
  });

  it("accepts children qualified with the UForge namespace, and ignores other namespaces", () => {
    const body = `<ns0:image ${NS} xmlns:o="urn:other"><ns0:compress>true</ns0:compress><o:name>x</o:name></ns0:image>`;
    expect(decode("image", body, "xml").value).toEqual({ compress: true });
    const defaultNs = `<image xmlns="http://www.usharesoft.com/uforge"><compress>false</compress></image>`;
    expect(decode("image", defaultNs, "xml")).toEqual({ root: "image", value: { compress: false } });
  });

  it("reads xsi:nil as absent", () => {
    const body = `<ns0:image ${NS} ${XSI}><name xsi:nil="true"/><compress>true</compress></ns0:image>`;
    expect(decode("image", body, "xml").value).toEqual({ compress: true });
  });

  it("orders nothing: children may arrive in any order", () => {
    const body = `<ns0:containerTemplate ${NS}><distribution><version>12</version><name>Debian</name><arch>x86_64</arch></distribution><uri>u</uri><dbId>3</dbId></ns0:containerTemplate>`;
    const { value } = decode("containerTemplate", body, "xml");
    expect(value).toEqual({ distribution: { arch: "x86_64", name: "Debian", version: "12" }, uri: "u", dbId: 3 });
    expect(encode("containerTemplate", value, "xml")).toContain("<dbId>3</dbId><uri>u</uri><distribution><arch>x86_64</arch><name>Debian</name><version>12</version>");
  });

  describe("xsi:type", () => {
    it("picks a subtype, resolving the prefix through the document's own declarations", () => {
      const body = `<u:credAccount xmlns:u="http://www.usharesoft.com/uforge" ${XSI} xsi:type="u:CredAccountOpenShift"><registryUrl>https://r</registryUrl><token>t</token></u:credAccount>`;
      expect(decode("credAccount", body, "xml").value).toEqual({ xsiType: "CredAccountOpenShift", registryUrl: "https://r", token: "t" });
    });

    it("keeps fields of the subtype only when the subtype is chosen", () => {
      const body = `<ns0:image ${NS}><tagName>1.0</tagName><name>n</name></ns0:image>`;
      expect(decode("image", body, "xml").value).toEqual({ name: "n" });
    });

    it("refuses an abstract type without xsi:type", () => {
      expectRefused("invalidField", () => decode("credAccount", `<ns0:credAccount ${NS}><name>x</name></ns0:credAccount>`, "xml"), /credAccount: CredAccount is abstract/);
    });

    it("refuses an unknown type", () => {
      const body = `<ns0:credAccount ${NS} ${XSI} xsi:type="ns0:CredAccountMainframe"/>`;
      expectRefused("invalidField", () => decode("credAccount", body, "xml"), /credAccount: unknown type "CredAccountMainframe"/);
    });

    it("refuses a type that is not a subtype of the declared one", () => {
      const body = `<ns0:publishImage ${NS} ${XSI} xsi:type="ns0:PublishImageDocker"><credAccount xsi:type="ns0:Distribution"/></ns0:publishImage>`;
      expectRefused("invalidField", () => decode("publishImage", body, "xml"), /publishImage\.credAccount: type Distribution is not a CredAccount/);
    });

    it("reads a global element of a subtype as the root, as xsi:type would name it (the docs' <ns0:softwareFile>)", () => {
      const body = `<ns0:softwareFile ${NS}><size>10</size><name>artifact</name><shortTag>softwarefile</shortTag></ns0:softwareFile>`;
      expect(decode("softwareArtifact", body, "xml")).toEqual({ root: "softwareArtifact", value: { xsiType: "SoftwareFile", size: 10, name: "artifact", shortTag: "softwarefile" } });
      // Not for an element of an unrelated type.
      expectRefused("wrongRoot", () => decode("softwareArtifact", `<ns0:distribution ${NS}/>`, "xml"), /expected <ns0:softwareArtifact>, got <ns0:distribution>/);
    });

    it("reads list items written as the global element of a subtype (updateAll's <softwareFile> children)", () => {
      const body = `<ns0:softwareArtifacts ${NS}><softwareArtifacts><softwareFile><dbId>603</dbId><name>a</name></softwareFile><softwareArtifact><dbId>604</dbId></softwareArtifact><distribution><dbId>1</dbId></distribution></softwareArtifacts></ns0:softwareArtifacts>`;
      expect(decode("softwareArtifacts", body, "xml").value).toEqual({ softwareArtifacts: [{ xsiType: "SoftwareFile", dbId: 603, name: "a" }, { dbId: 604 }] });
    });

    it("refuses a type outside the UForge namespace", () => {
      const body = `<ns0:credAccount ${NS} ${XSI} xmlns:o="urn:other" xsi:type="o:CredAccountDocker"/>`;
      expectRefused("invalidField", () => decode("credAccount", body, "xml"), /is not a UForge type/);
    });
  });

  describe("refuses DTDs and entities", () => {
    const cases: Array<[string, string]> = [
      ["an internal subset", `<!DOCTYPE image [<!ELEMENT image ANY>]><ns0:image ${NS}/>`],
      ["an external entity", `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><ns0:image ${NS}><name>&xxe;</name></ns0:image>`],
      [
        "billion laughs",
        `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
          `<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><ns0:image ${NS}><name>&lol3;</name></ns0:image>`,
      ],
      ["an external DTD", `<!DOCTYPE image SYSTEM "http://127.0.0.1:1/evil.dtd"><ns0:image ${NS}/>`],
      ["an undeclared entity without a DTD", `<ns0:image ${NS}><name>&passwd;</name></ns0:image>`],
      ["an undeclared entity in an attribute", `<ns0:image ${NS} a="&x;"><name>n</name></ns0:image>`],
    ];
    it.each(cases)("%s", (_label, body) => {
      expectRefused("forbiddenDtd", () => decode("image", body, "xml"));
    });

    it("names the error DtdForbidden", () => {
      expect(refusal(() => decode("image", cases[1]![1], "xml")).code).toBe("DtdForbidden");
    });
  });

  describe("refuses malformed XML with the parser's position", () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ["an unclosed element", `<ns0:image ${NS}><name>x</ns0:image>`, /malformed XML: 1:\d+: /],
      ["a second root", `<ns0:image ${NS}/><ns0:image ${NS}/>`, /documents may contain only one root/],
      ["text after the root", `<ns0:image ${NS}/>junk`, /malformed XML: 1:\d+/],
      ["an undeclared prefix", `<ns0:image ${NS}><name>x</name><a:b/></ns0:image>`, /unbound|prefix/],
      ["a truncated body", `<ns0:image ${NS}><name>x`, /malformed XML/],
      ["a position on a later line", `<ns0:image ${NS}>\n<name>\nx</nam>\n</ns0:image>`, /malformed XML: 3:\d+/],
      ["invalid UTF-8", Buffer.from([0x3c, 0x61, 0xff, 0x3e]), /not valid UTF-8/],
      ["another encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><ns0:image ${NS}/>`, /encoding "ISO-8859-1" is not supported/],
      ["no root at all", `<?xml version="1.0"?>`, /malformed XML|no root element/],
    ];
    it.each(cases)("%s", (_label, body, message) => {
      expectRefused("malformedBody", () => decode("image", body, "xml"), message);
    });

    it("caps nesting depth", () => {
      const deep = `<ns0:image ${NS}>${"<x>".repeat(100)}${"</x>".repeat(100)}</ns0:image>`;
      expectRefused("malformedBody", () => decode("image", deep, "xml"), /deeper than 64/);
      // Depth counts elements of every kind, known or not: a real object nested 63 deep is fine.
      const ok = `<ns0:image ${NS}>${"<x>".repeat(62)}${"</x>".repeat(62)}</ns0:image>`;
      expect(decode("image", ok, "xml").value).toEqual({});
    });
  });

  describe("refuses another root", () => {
    it("by name", () => {
      expectRefused("wrongRoot", () => decode("containerTemplate", `<foo/>`, "xml"), /^expected <ns0:containerTemplate>, got <foo>$/);
    });
    it("by namespace", () => {
      expectRefused("wrongRoot", () => decode("containerTemplate", `<containerTemplate/>`, "xml"), /expected <ns0:containerTemplate>, got <containerTemplate> \(the root must be in the UForge namespace/);
      expectRefused("wrongRoot", () => decode("image", `<o:image xmlns:o="urn:other"/>`, "xml"), /got <o:image> in namespace urn:other/);
    });
    it("listing every expected root", () => {
      expectRefused("wrongRoot", () => decode(["image", "uforgeError"], `<ns0:user ${NS}/>`, "xml"), /expected <ns0:image> or <ns0:uforgeError>, got <ns0:user>/);
    });
  });

  describe("refuses wrong values, naming the field", () => {
    const cases: Array<[string, string, string, RegExp]> = [
      ["a boolean", "image", `<compress>maybe</compress>`, /^image\.compress: "maybe" is not a boolean$/],
      ["an empty boolean", "image", `<compress/>`, /^image\.compress: "" is not a boolean$/],
      ["a long", "image", `<dbId>12a</dbId>`, /^image\.dbId: "12a" is not a long$/],
      ["a fractional long", "image", `<size>1.5</size>`, /image\.size: "1.5" is not a long/],
      ["a long beyond 2^53", "image", `<size>9007199254740993</size>`, /image\.size: "9007199254740993" is not a long/],
      ["an int out of range", "image", `<ebsVolumeSize>2147483648</ebsVolumeSize>`, /image\.ebsVolumeSize: "2147483648" is not an int/],
      ["a dateTime", "image", `<created>yesterday</created>`, /image\.created: "yesterday" is not a dateTime/],
      ["an impossible date", "image", `<created>2026-02-30T00:00:00Z</created>`, /image\.created: .* is not a dateTime/],
      ["an enumeration", "containerTemplate", `<distribution><arch>sparc</arch></distribution>`, /^containerTemplate\.distribution\.arch: "sparc" is not one of i386, i586, i686, noarch, x86_64$/],
      ["a value in a list", "containerTemplates", `<containerTemplates><containerTemplate/><containerTemplate><dbId>x</dbId></containerTemplate></containerTemplates>`, /^containerTemplates\.containerTemplates\[1\]\.dbId: "x" is not a long$/],
      ["text where elements are expected", "containerTemplate", `<distribution>Debian</distribution>`, /containerTemplate\.distribution: unexpected text "Debian" where elements are expected/],
      ["text in a list wrapper", "containerTemplates", `<containerTemplates>oops</containerTemplates>`, /unexpected text "oops" where <containerTemplate> elements are expected/],
      ["text in the root", "image", `hello<compress>true</compress>`, /^image: unexpected text "hello"/],
      ["an element inside a value", "image", `<name><b>bold</b></name>`, /image\.name: unexpected element <b> inside a value/],
      ["a field given twice", "image", `<name>a</name><name>b</name>`, /image\.name: <name> appears more than once/],
    ];
    it.each(cases)("%s", (_label, root, inner, message) => {
      expectRefused("invalidField", () => decode(root, `<ns0:${root} ${NS}>${inner}</ns0:${root}>`, "xml"), message);
    });
  });

  it("refuses an expected root uforge.xsd does not declare (a bug in the caller)", () => {
    expect(refusal(() => decode("bogus", "<x/>", "xml")).kind).toBe("internal");
  });
});
