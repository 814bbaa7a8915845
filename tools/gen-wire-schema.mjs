#!/usr/bin/env node
/**
 * Generates src/wire/schema.generated.ts from spec/uforge/uforge.xsd.
 *
 *   node tools/gen-wire-schema.mjs [path/to/uforge.xsd] [path/to/output.ts]
 *
 * The XSD is UForge's contract, not ours: the codecs in src/wire/ are driven by what this script
 * extracts (one declaration per complex type, fields flattened in XSD order with inherited fields
 * first) so that a new XSD is picked up by re-running it rather than by editing code by hand.
 *
 * It reads the schema with saxes (a real, namespace-aware XML parser) and understands exactly the
 * constructs UForge's schema uses: named and anonymous complexTypes, complexContent/extension,
 * sequences of elements, inline and named simpleType restrictions (with or without enumerations),
 * minOccurs/maxOccurs/nillable. Anything else (attributes, xs:any, choice, groups, element refs,
 * simpleContent...) stops the generator with the line it met it on: a construct the codecs do not
 * understand must not be silently dropped from the wire format.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SaxesParser } from "saxes";

const XS = "http://www.w3.org/2001/XMLSchema";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const xsdPath = path.resolve(process.argv[2] ?? path.join(ROOT, "spec/uforge/uforge.xsd"));
const outPath = path.resolve(process.argv[3] ?? path.join(ROOT, "src/wire/schema.generated.ts"));

/** Built-in XSD types the codecs know, by local name → field kind. */
const BUILTINS = {
  string: "string",
  anyURI: "anyURI",
  long: "long",
  int: "int",
  integer: "integer",
  float: "float",
  boolean: "boolean",
  dateTime: "dateTime",
  base64Binary: "base64Binary",
};

// ---------------------------------------------------------------------------------------------
// 1. Parse the XSD into a small tree of XSD-namespace nodes (with namespace scopes for QNames).

/**
 * @typedef {{ local: string, attrs: Record<string, string>, children: XsNode[], text: string,
 *   line: number, scope: Record<string, string> }} XsNode
 */

function parseXsd(text) {
  const parser = new SaxesParser({ xmlns: true, position: true, fileName: path.relative(ROOT, xsdPath) });
  /** @type {XsNode[]} */
  const stack = [];
  /** @type {XsNode | undefined} */
  let root;
  parser.on("error", (err) => {
    throw err;
  });
  parser.on("doctype", () => {
    throw new Error("the XSD must not carry a DOCTYPE");
  });
  parser.on("opentag", (tag) => {
    const parentScope = stack.length > 0 ? stack[stack.length - 1].scope : {};
    const scope = { ...parentScope, ...tag.ns };
    const attrs = {};
    for (const [name, attr] of Object.entries(tag.attributes)) {
      if (attr.prefix === "xmlns" || name === "xmlns") continue;
      attrs[attr.uri === "" ? attr.local : `{${attr.uri}}${attr.local}`] = attr.value;
    }
    stack.push({ local: tag.uri === XS ? tag.local : `{${tag.uri}}${tag.local}`, attrs, children: [], text: "", line: parser.line, scope });
  });
  parser.on("text", (t) => {
    if (stack.length > 0) stack[stack.length - 1].text += t;
  });
  parser.on("closetag", () => {
    const node = stack.pop();
    if (stack.length > 0) stack[stack.length - 1].children.push(node);
    else root = node;
  });
  parser.write(text).close();
  if (root === undefined || root.local !== "schema") throw new Error("not an XML Schema");
  return root;
}

const schema = parseXsd(readFileSync(xsdPath, "utf8"));
const targetNamespace = schema.attrs.targetNamespace;
if (!targetNamespace) throw new Error("the schema has no targetNamespace");
if (schema.attrs.elementFormDefault !== "unqualified") {
  // The codecs write children unqualified; a schema that says otherwise needs codec changes.
  throw new Error(`elementFormDefault="${schema.attrs.elementFormDefault}" is not supported`);
}

function unsupported(node, what) {
  throw new Error(`${path.relative(ROOT, xsdPath)}:${node.line}: unsupported XSD construct: ${what ?? `<xs:${node.local}>`}`);
}

/** Resolves a QName attribute value to {uri, local} using the namespace scope of its node. */
function resolveQName(node, qname) {
  const colon = qname.indexOf(":");
  const prefix = colon < 0 ? "" : qname.slice(0, colon);
  const local = colon < 0 ? qname : qname.slice(colon + 1);
  const uri = node.scope[prefix];
  if (uri === undefined) throw new Error(`${node.line}: undeclared prefix in "${qname}"`);
  return { uri, local };
}

function documentation(node) {
  const ann = node.children.find((c) => c.local === "annotation");
  if (!ann) return undefined;
  const doc = ann.children
    .filter((c) => c.local === "documentation")
    .map((c) => c.text.replace(/\s+/g, " ").trim())
    .filter(Boolean)
    .join(" ");
  return doc === "" ? undefined : doc;
}

/** Children other than annotations: the structure. */
function structural(node) {
  return node.children.filter((c) => c.local !== "annotation");
}

// ---------------------------------------------------------------------------------------------
// 2. Build declarations.

const namedComplex = new Map();
const namedSimple = new Map();
const topElements = [];
for (const child of structural(schema)) {
  switch (child.local) {
    case "complexType":
      namedComplex.set(child.attrs.name, child);
      break;
    case "simpleType":
      namedSimple.set(child.attrs.name, child);
      break;
    case "element":
      topElements.push(child);
      break;
    default:
      unsupported(child);
  }
}

/**
 * Raw declarations by type name: own fields only, plus base. Anonymous complex types get a
 * synthetic name (owner type + element name in PascalCase) and `anonymous: true`: they have no
 * XSD name, so no xsi:type can ever name them.
 * @type {Map<string, {name: string, base?: string, abstract: boolean, anonymous: boolean, doc?: string, own: object[], line: number}>}
 */
const decls = new Map();

const pascal = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function anonymousName(owner, elementName) {
  let name = `${owner}${pascal(elementName)}`;
  for (let n = 2; namedComplex.has(name) || decls.has(name); n++) name = `${owner}${pascal(elementName)}${n}`;
  return name;
}

/** A simpleType node (named or inline) → {kind, values?}. */
function simpleKind(node) {
  const parts = structural(node);
  if (parts.length !== 1 || parts[0].local !== "restriction") unsupported(node, "simpleType other than a restriction");
  const restriction = parts[0];
  const base = resolveQName(restriction, restriction.attrs.base);
  if (base.uri !== XS || !(base.local in BUILTINS)) unsupported(restriction, `restriction of ${restriction.attrs.base}`);
  const values = [];
  for (const facet of structural(restriction)) {
    if (facet.local !== "enumeration") unsupported(facet, `facet <xs:${facet.local}>`);
    values.push(facet.attrs.value);
  }
  if (values.length === 0) return { kind: BUILTINS[base.local] };
  if (BUILTINS[base.local] !== "string") unsupported(restriction, `enumeration over ${base.local}`);
  return { kind: "enum", values };
}

function occurs(node) {
  const min = node.attrs.minOccurs === undefined ? 1 : Number(node.attrs.minOccurs);
  const maxAttr = node.attrs.maxOccurs ?? "1";
  const max = maxAttr === "unbounded" ? Infinity : Number(maxAttr);
  if (!Number.isInteger(min) || !(max === Infinity || Number.isInteger(max)) || max < 1) unsupported(node, "occurrence bounds");
  return { required: min >= 1, repeated: max > 1 };
}

/** Is this inline complexType a list wrapper (one repeated element and nothing else)? */
function listItemOf(complexType) {
  const parts = structural(complexType);
  if (parts.length !== 1 || parts[0].local !== "sequence") return undefined;
  const items = structural(parts[0]);
  if (items.length !== 1 || items[0].local !== "element") return undefined;
  return occurs(items[0]).repeated ? items[0] : undefined;
}

/** An xs:element inside a sequence → field declaration. */
function buildField(element, owner) {
  for (const key of Object.keys(element.attrs)) {
    if (!["name", "type", "minOccurs", "maxOccurs", "nillable"].includes(key)) unsupported(element, `element attribute ${key}`);
  }
  const name = element.attrs.name;
  if (!name) unsupported(element, "element without a name (ref?)");
  const field = { name, ...occurs(element) };
  if (element.attrs.nillable === "true") field.nillable = true;
  const doc = documentation(element);
  const inline = structural(element);
  if (element.attrs.type !== undefined) {
    if (inline.length > 0) unsupported(element, "element with both a type and an inline type");
    const type = resolveQName(element, element.attrs.type);
    if (type.uri === XS) {
      if (!(type.local in BUILTINS)) unsupported(element, `built-in type xs:${type.local}`);
      field.kind = BUILTINS[type.local];
    } else if (type.uri !== targetNamespace) {
      unsupported(element, `type from namespace ${type.uri}`);
    } else if (namedSimple.has(type.local)) {
      Object.assign(field, simpleKind(namedSimple.get(type.local)));
    } else if (namedComplex.has(type.local)) {
      field.kind = "object";
      field.type = type.local;
    } else {
      throw new Error(`${element.line}: unknown type ${element.attrs.type}`);
    }
  } else if (inline.length === 1 && inline[0].local === "simpleType") {
    Object.assign(field, simpleKind(inline[0]));
  } else if (inline.length === 1 && inline[0].local === "complexType") {
    const item = listItemOf(inline[0]);
    if (item !== undefined) {
      field.kind = "list";
      field.item = buildField(item, owner).decl;
    } else {
      field.kind = "object";
      field.type = buildComplexType(inline[0], anonymousName(owner, name), true);
    }
  } else {
    unsupported(element, "element without a type");
  }
  // Key order in the generated file: what the codecs read first.
  const { kind, ...rest } = field;
  return { doc, decl: { name, kind, ...rest } };
}

function buildSequence(sequence, owner) {
  // Occurrence bounds on a sequence would make its fields optional or repeat as a group, which
  // no field-by-field codec can express; UForge only nests plain sequences.
  for (const key of Object.keys(sequence.attrs)) unsupported(sequence, `sequence attribute ${key}`);
  return structural(sequence).flatMap((el) => {
    if (el.local === "sequence") return buildSequence(el, owner);
    if (el.local !== "element") unsupported(el);
    return [buildField(el, owner)];
  });
}

/** A complexType node → registers its declaration, returns its name. */
function buildComplexType(node, name, anonymous) {
  for (const key of Object.keys(node.attrs)) {
    if (!["name", "abstract"].includes(key)) unsupported(node, `complexType attribute ${key}`);
  }
  const decl = { name, base: undefined, abstract: node.attrs.abstract === "true", anonymous, doc: documentation(node), own: [], line: node.line };
  decls.set(name, decl); // before the fields: anonymous children are named after their owner
  const parts = structural(node);
  if (parts.length > 1) unsupported(parts[1]);
  const part = parts[0];
  if (part === undefined) return name;
  if (part.local === "sequence") {
    decl.own = buildSequence(part, name);
  } else if (part.local === "complexContent") {
    const inner = structural(part);
    if (inner.length !== 1 || inner[0].local !== "extension") unsupported(inner[0] ?? part, "complexContent other than an extension");
    const ext = inner[0];
    const base = resolveQName(ext, ext.attrs.base);
    if (base.uri !== targetNamespace || !namedComplex.has(base.local)) unsupported(ext, `extension of ${ext.attrs.base}`);
    decl.base = base.local;
    const seq = structural(ext);
    if (seq.length > 1 || (seq.length === 1 && seq[0].local !== "sequence")) unsupported(seq[seq.length - 1]);
    decl.own = seq.length === 1 ? buildSequence(seq[0], name) : [];
  } else {
    unsupported(part);
  }
  return name;
}

for (const [name, node] of namedComplex) buildComplexType(node, name, false);

const roots = topElements.map((el) => {
  if (!el.attrs.type || structural(el).length > 0) unsupported(el, "top-level element without a named type");
  const type = resolveQName(el, el.attrs.type);
  if (type.uri !== targetNamespace || !namedComplex.has(type.local)) unsupported(el, `root of type ${el.attrs.type}`);
  return [el.attrs.name, type.local];
});

/** Inherited fields first, as the XSD's extension semantics say. */
function flatten(name, seen = new Set()) {
  if (seen.has(name)) throw new Error(`inheritance cycle through ${name}`);
  seen.add(name);
  const decl = decls.get(name);
  const inherited = decl.base === undefined ? [] : flatten(decl.base, seen);
  const all = [...inherited, ...decl.own.map((f) => f.decl)];
  const names = new Set();
  for (const f of all) {
    if (names.has(f.name)) throw new Error(`${name}: field ${f.name} declared twice (the codecs key fields by name)`);
    names.add(f.name);
  }
  return all;
}

/** Named, non-anonymous descendants of each type (xsi:type candidates), itself first. */
function descendants(name) {
  const out = [name];
  for (const d of decls.values()) if (d.base === name && !d.anonymous) out.push(...descendants(d.name));
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Emit TypeScript.

const ident = (s) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? s : JSON.stringify(s));
const tsdoc = (doc, indent) => (doc ? `${indent}/** ${doc.replace(/\*\//g, "*\\/")} */\n` : "");

function fieldLiteral(f) {
  const parts = [`name: ${JSON.stringify(f.name)}`, `kind: ${JSON.stringify(f.kind)}`];
  if (f.kind === "enum") parts.push(`values: ${JSON.stringify(f.values)}`);
  if (f.kind === "object") parts.push(`type: ${JSON.stringify(f.type)}`);
  parts.push(`required: ${f.required}`, `repeated: ${f.repeated}`);
  if (f.nillable) parts.push("nillable: true");
  if (f.kind === "list") parts.push(`item: ${fieldLiteral(f.item)}`);
  return `{ ${parts.join(", ")} }`;
}

/** The TS type of a value for a declared type: the union of its concrete subtypes when it has any. */
function valueTypeName(typeName) {
  return descendants(typeName).length > 1 ? `Any${typeName}` : typeName;
}

function fieldTsType(f) {
  let t;
  switch (f.kind) {
    case "string":
    case "anyURI":
      t = "string";
      break;
    case "long":
    case "int":
    case "integer":
    case "float":
      t = "number";
      break;
    case "boolean":
      t = "boolean";
      break;
    case "dateTime":
      t = "Date";
      break;
    case "base64Binary":
      t = "Uint8Array";
      break;
    case "enum":
      t = f.values.map((v) => JSON.stringify(v)).join(" | ");
      break;
    case "object":
      t = valueTypeName(f.type);
      break;
    case "list":
      return `${fieldTsType({ ...f.item, repeated: false })}[]`;
    default:
      throw new Error(`unknown kind ${f.kind}`);
  }
  return f.repeated ? (t.includes("|") ? `(${t})[]` : `${t}[]`) : t;
}

const sortedNames = [...decls.keys()].sort();
let out = "";
out += `// Generated by tools/gen-wire-schema.mjs from spec/uforge/uforge.xsd: do not edit by hand,\n`;
out += `// re-run \`node tools/gen-wire-schema.mjs\` instead.\n`;
out += `import type { TypeDecl } from "./declarations.js";\n\n`;
out += `/** UForge's XML namespace (the XSD's targetNamespace). */\n`;
out += `export const UFORGE_NAMESPACE = ${JSON.stringify(targetNamespace)};\n\n`;
out += `/**\n * One declaration per complex type of uforge.xsd (anonymous ones named after their owner and\n`;
out += ` * element), fields flattened in XSD order with inherited fields first.\n */\n`;
out += `export const typeDecls: Readonly<Record<string, TypeDecl>> = {\n`;
for (const name of sortedNames) {
  const d = decls.get(name);
  const fields = flatten(name);
  out += `  ${ident(name)}: {\n    name: ${JSON.stringify(name)},\n`;
  if (d.base !== undefined) out += `    base: ${JSON.stringify(d.base)},\n`;
  out += `    abstract: ${d.abstract},\n    anonymous: ${d.anonymous},\n    fields: [\n`;
  for (const f of fields) out += `      ${fieldLiteral(f)},\n`;
  out += `    ],\n  },\n`;
}
out += `};\n\n`;

out += `/** The top-level elements of uforge.xsd: root element name → type name. */\n`;
out += `export const rootElements = {\n`;
for (const [el, type] of roots) out += `  ${ident(el)}: ${JSON.stringify(type)},\n`;
out += `} as const satisfies Readonly<Record<string, string>>;\n\n`;
out += `/** A root element name of uforge.xsd. */\nexport type RootElement = keyof typeof rootElements;\n\n`;

out += `// Typed views of the declarations above: the in-memory values the codecs read and write.\n\n`;
for (const name of sortedNames) {
  const d = decls.get(name);
  const names = descendants(name).filter((n) => !decls.get(n).abstract);
  out += tsdoc(d.doc ?? (d.anonymous ? `An anonymous type of uforge.xsd (line ${d.line}).` : undefined), "");
  out += `export interface ${name}${d.base !== undefined ? ` extends ${d.base}` : ""} {\n`;
  if (!d.anonymous) {
    out += `  /** The concrete type (\`xsi:type\`) when it is not the declared one. */\n`;
    out += `  xsiType?: ${names.length > 0 ? names.map((n) => JSON.stringify(n)).join(" | ") : "never"};\n`;
  }
  for (const f of d.own) {
    out += tsdoc(f.doc, "  ");
    out += `  ${ident(f.decl.name)}?: ${fieldTsType(f.decl)};\n`;
  }
  out += `}\n\n`;
  if (descendants(name).length > 1) {
    const concrete = descendants(name).filter((n) => !decls.get(n).abstract);
    out += `/** A ${name} or any of its concrete subtypes (told apart by \`xsiType\`). */\n`;
    out += `export type Any${name} = ${(concrete.length > 0 ? concrete : [name]).join(" | ")};\n\n`;
  }
}

out += `/** The value type of each root element. */\nexport interface RootValues {\n`;
for (const [el, type] of roots) out += `  ${ident(el)}: ${valueTypeName(type)};\n`;
out += `}\n`;

writeFileSync(outPath, out);
const anonymousCount = [...decls.values()].filter((d) => d.anonymous).length;
console.log(
  `${path.relative(ROOT, outPath)}: ${decls.size - anonymousCount} named + ${anonymousCount} anonymous complex types, ${roots.length} root elements`,
);
