import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { FieldDecl } from "../../src/wire/index.js";
import { decode, encode, rootElements, typeDecls } from "../../src/wire/index.js";
import { assertValidXml, XSD_PATH } from "../helpers/xsd.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const GENERATOR = path.join(ROOT, "tools/gen-wire-schema.mjs");
const GENERATED = path.join(ROOT, "src/wire/schema.generated.ts");

function xpathCount(expr: string): number {
  return Number(execFileSync("xmllint", ["--xpath", `count(${expr})`, XSD_PATH], { encoding: "utf8" }));
}

function runGenerator(xsd: string, out: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [GENERATOR, xsd, out], { encoding: "utf8" });
  return { status: run.status, output: run.stdout + run.stderr };
}

const fieldNames = (type: string): string[] => typeDecls[type]!.fields.map((f) => f.name);

describe("declarations generated from uforge.xsd", () => {
  it("are up to date with the generator and the XSD", () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "kiln-gen-")), "schema.generated.ts");
    const run = runGenerator(XSD_PATH, out);
    expect(run.status, run.output).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(readFileSync(GENERATED, "utf8"));
  });

  it("declare every complex type and every root element of the XSD", () => {
    const named = Object.values(typeDecls).filter((d) => !d.anonymous);
    expect(named).toHaveLength(xpathCount('/*[local-name()="schema"]/*[local-name()="complexType"]'));
    expect(Object.keys(rootElements)).toHaveLength(xpathCount('/*[local-name()="schema"]/*[local-name()="element"]'));
    expect(rootElements.containerTemplate).toBe("ContainerTemplate");
    expect(rootElements.status).toBe("OpStatus");
    expect(rootElements.packages).toBe("PkgList");
  });

  it("reference only declared types", () => {
    const check = (f: FieldDecl): void => {
      if (f.kind === "object") expect(typeDecls[f.type], f.type).toBeDefined();
      if (f.kind === "list") check(f.item);
    };
    for (const decl of Object.values(typeDecls)) {
      if (decl.base !== undefined) expect(typeDecls[decl.base], decl.base).toBeDefined();
      decl.fields.forEach(check);
    }
    for (const type of Object.values(rootElements)) expect(typeDecls[type]).toBeDefined();
  });

  it("list fields in XSD order, inherited UForgeObject fields first", () => {
    expect(fieldNames("ContainerTemplate")).toEqual([
      "created",
      "dbId",
      "digest",
      "lastModified",
      "uri",
      "softwareBundle",
      "distribution",
      "images",
      "imagesUri",
      "formatsUri",
    ]);
    // Two levels of inheritance: UForgeObject → CredAccount → CredAccountDocker.
    expect(fieldNames("CredAccountDocker").slice(0, 4)).toEqual(["created", "dbId", "digest", "lastModified"]);
    expect(fieldNames("CredAccountDocker").slice(-3)).toEqual(["endpointUrl", "login", "password"]);
    expect(typeDecls.CredAccountDocker!.base).toBe("CredAccount");
  });

  it("mark abstract types", () => {
    const abstract = Object.values(typeDecls).filter((d) => d.abstract).map((d) => d.name);
    expect(abstract).toHaveLength(xpathCount('//*[local-name()="complexType"][@abstract="true"]'));
    expect(abstract).toEqual(expect.arrayContaining(["UForgeObject", "CredAccount", "PublishImage"]));
    expect(typeDecls.ContainerTemplate!.abstract).toBe(false);
  });

  it("describe kinds, occurrences, list wrappers, enumerations and named simple types", () => {
    const field = (type: string, name: string): FieldDecl => typeDecls[type]!.fields.find((f) => f.name === name)!;
    expect(field("ContainerTemplate", "dbId")).toEqual({ name: "dbId", kind: "long", required: false, repeated: false });
    expect(field("ContainerTemplate", "created")).toMatchObject({ kind: "dateTime" });
    expect(field("ContainerTemplate", "distribution")).toMatchObject({ kind: "object", type: "Distribution" });
    expect(field("ContainerTemplates", "containerTemplates")).toEqual({
      name: "containerTemplates",
      kind: "list",
      required: false,
      repeated: false,
      item: { name: "containerTemplate", kind: "object", type: "ContainerTemplate", required: false, repeated: true },
    });
    expect(field("Distribution", "arch")).toMatchObject({ kind: "enum", values: ["i386", "i586", "i686", "noarch", "x86_64"] });
    expect(field("UriList", "uri")).toMatchObject({ kind: "anyURI", repeated: true });
    expect(field("LocalizedMessage", "parameters")).toMatchObject({ kind: "list", item: { name: "parameter", kind: "string" } });
    // <xsd:simpleType name="seLinuxMode"> referenced by name.
    const seLinux = Object.values(typeDecls).flatMap((d) => d.fields).find((f) => f.kind === "enum" && f.values.includes("permissive"));
    expect(seLinux).toMatchObject({ kind: "enum", values: ["disabled", "permissive", "enforcing"] });
    // minOccurs="1" and the default minOccurs (1), and nillable.
    expect(field("BlueprintDeployment", "name")).toMatchObject({ required: true });
    expect(field("Nic", "order")).toMatchObject({ kind: "int", required: true, nillable: true });
    // A sequence nested in a sequence contributes its elements in place.
    expect(fieldNames("Deployment").at(-1)).toBe("instances");
  });

  it("name anonymous complex types after their owner and element", () => {
    const anonymous = Object.values(typeDecls).filter((d) => d.anonymous);
    expect(anonymous.length).toBeGreaterThan(0);
    for (const decl of anonymous) expect(Object.values(rootElements)).not.toContain(decl.name);
    // Anonymous types that extend a named type keep its fields first.
    const extending = anonymous.find((d) => d.base !== undefined)!;
    expect(typeDecls[extending.base!]!.fields.map((f) => f.name)).toEqual(extending.fields.slice(0, typeDecls[extending.base!]!.fields.length).map((f) => f.name));
  });
});

/**
 * A value of `type` with every field set (objects two levels deep, lists with one item): encoding
 * it and validating the result with xmllint checks every declaration of the type at once —
 * order, kinds, enumerations, wrappers — against the XSD itself.
 */
function fullValue(type: string, depth = 0): Record<string, unknown> {
  let decl = typeDecls[type]!;
  const value: Record<string, unknown> = {};
  if (decl.abstract) {
    const concrete = Object.values(typeDecls).find((d) => !d.abstract && !d.anonymous && isSubtype(d.name, type))!;
    value.xsiType = concrete.name;
    decl = concrete;
  }
  const sample = (f: FieldDecl): unknown => {
    switch (f.kind) {
      case "string":
        return `${f.name} <&> "text"`;
      case "anyURI":
        return `users/alice/${f.name}`;
      case "long":
      case "int":
      case "integer":
        return 42;
      case "float":
        return 2.5;
      case "boolean":
        return true;
      case "dateTime":
        return new Date("2026-03-01T09:30:00.123Z");
      case "base64Binary":
        return Buffer.from("bytes");
      case "enum":
        return f.values.at(-1);
      case "object":
        return depth < 2 || f.required ? fullValue(f.type, depth + 1) : undefined;
      case "list":
        return depth < 2 || f.item.required ? [sample(f.item)] : [];
    }
  };
  for (const f of decl.fields) {
    const v = sample(f);
    value[f.name] = f.repeated && v !== undefined ? [v, v] : v;
  }
  return value;
}

function isSubtype(name: string, ancestor: string): boolean {
  for (let t: string | undefined = name; t !== undefined; t = typeDecls[t]!.base) if (t === ancestor) return true;
  return false;
}

describe("every root element, with every field set", () => {
  const roots = Object.keys(rootElements);

  it("encodes to XML that validates against uforge.xsd", async () => {
    const failures: string[] = [];
    for (const root of roots) {
      const xml = encode(root, fullValue(rootElements[root as keyof typeof rootElements]), "xml");
      await assertValidXml(xml).catch((err: Error) => failures.push(`${root}: ${err.message.split("\n--- body")[0]}`));
    }
    expect(failures).toEqual([]);
  });

  it("round-trips through XML and JSON", () => {
    for (const root of roots) {
      const value = fullValue(rootElements[root as keyof typeof rootElements]);
      const normalised = decode(root, encode(root, value, "json"), "json").value;
      expect(decode(root, encode(root, value, "xml"), "xml").value, root).toEqual(normalised);
      expect(decode(root, encode(root, normalised, "xml"), "xml").value, root).toEqual(normalised);
    }
  });
});

describe("the generator", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-gen-"));
  const schema = (body: string): string => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.xsd`);
    writeFileSync(
      file,
      `<?xml version="1.0"?>\n<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:t" targetNamespace="urn:t" elementFormDefault="unqualified">\n${body}\n</xs:schema>\n`,
    );
    return file;
  };

  it.each([
    ["attributes", `<xs:complexType name="A"><xs:sequence/><xs:attribute name="id" type="xs:string"/></xs:complexType>`, /:3: unsupported XSD construct: <xs:attribute>/],
    ["xs:any", `<xs:complexType name="A"><xs:sequence><xs:any/></xs:sequence></xs:complexType>`, /unsupported XSD construct: <xs:any>/],
    ["choices", `<xs:complexType name="A"><xs:choice><xs:element name="a" type="xs:string"/></xs:choice></xs:complexType>`, /unsupported XSD construct: <xs:choice>/],
    ["element refs", `<xs:element name="a" type="A"/><xs:complexType name="A"><xs:sequence><xs:element ref="a"/></xs:sequence></xs:complexType>`, /element attribute ref/],
    ["unknown built-in types", `<xs:complexType name="A"><xs:sequence><xs:element name="d" type="xs:duration"/></xs:sequence></xs:complexType>`, /built-in type xs:duration/],
    ["pattern facets", `<xs:complexType name="A"><xs:sequence><xs:element name="p"><xs:simpleType><xs:restriction base="xs:string"><xs:pattern value="a+"/></xs:restriction></xs:simpleType></xs:element></xs:sequence></xs:complexType>`, /facet <xs:pattern>/],
    ["a DOCTYPE", `<!-- -->`, /DOCTYPE/],
  ])("stops on %s instead of dropping them", (label, body, message) => {
    const file = schema(body);
    if (label === "a DOCTYPE") writeFileSync(file, `<!DOCTYPE x []>${readFileSync(file, "utf8").replace(/^<\?xml[^>]*\?>\n/, "")}`);
    const run = runGenerator(file, path.join(dir, "out.ts"));
    expect(run.status).not.toBe(0);
    expect(run.output).toMatch(message);
  });

  it("understands anonymous types, extensions and named simple types in a small schema", () => {
    const file = schema(`
      <xs:element name="thing" type="Thing"/>
      <xs:simpleType name="colour"><xs:restriction base="xs:string"><xs:enumeration value="red"/><xs:enumeration value="blue"/></xs:restriction></xs:simpleType>
      <xs:complexType name="Base" abstract="true"><xs:sequence><xs:element name="id" type="xs:long" minOccurs="0"/></xs:sequence></xs:complexType>
      <xs:complexType name="Thing"><xs:complexContent><xs:extension base="Base"><xs:sequence>
        <xs:element name="colour" type="colour"/>
        <xs:element name="parts" minOccurs="0"><xs:complexType><xs:sequence><xs:element name="part" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:sequence><xs:element name="n" type="xs:int"/></xs:sequence></xs:complexType></xs:element></xs:sequence></xs:complexType></xs:element>
        <xs:element name="owner" minOccurs="0"><xs:complexType><xs:sequence><xs:element name="login" type="xs:string"/><xs:element name="admin" type="xs:boolean"/></xs:sequence></xs:complexType></xs:element>
      </xs:sequence></xs:extension></xs:complexContent></xs:complexType>`);
    const out = path.join(dir, "small.ts");
    const run = runGenerator(file, out);
    expect(run.status, run.output).toBe(0);
    const ts = readFileSync(out, "utf8");
    expect(ts).toContain('{ name: "id", kind: "long", required: false, repeated: false },\n      { name: "colour", kind: "enum", values: ["red","blue"], required: true, repeated: false },');
    expect(ts).toContain('item: { name: "part", kind: "object", type: "ThingPart", required: false, repeated: true }');
    expect(ts).toContain('{ name: "owner", kind: "object", type: "ThingOwner", required: false, repeated: false }');
    expect(ts).toMatch(/ThingOwner: \{\n {4}name: "ThingOwner",\n {4}abstract: false,\n {4}anonymous: true,/);
    expect(ts).toContain("export interface Thing extends Base {");
    expect(ts).toContain('  colour?: "red" | "blue";');
    expect(ts).toContain("  parts?: ThingPart[];");
    expect(ts).toContain("export type AnyBase = Thing;");
    expect(ts).toContain('  thing: "Thing",');
  });
});
