/**
 * UForge's XML representation, driven by the declarations generated from uforge.xsd.
 *
 * Encoding writes what JAXB would: the root qualified with `ns0`, children unqualified and in
 * declaration order, `xsi:type` where the concrete type is not the declared one. Decoding is a
 * single pass over saxes events that builds plain objects and refuses, with a 400, anything a
 * client could use against the server: a DTD (entity expansion, external entities), undeclared
 * entities, deep nesting, or values that do not fit their field.
 */
import { SaxesParser } from "saxes";
import type { SaxesTagNS } from "saxes";
import { KilnError, fail } from "../domain/errors.js";
import { MAX_DEPTH, bodyText } from "./body.js";
import { asObject, concreteType, pickType, rootModel, typeModel } from "./model.js";
import type { FieldModel, TypeModel } from "./model.js";
import { WireValueError, parseXmlScalar, quote, xmlScalar } from "./scalars.js";
import { UFORGE_NAMESPACE } from "./schema.generated.js";

const XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance";
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>';
const NS0 = ` xmlns:ns0="${UFORGE_NAMESPACE}"`;
const XSI = ` xmlns:xsi="${XSI_NAMESPACE}"`;

// ---------------------------------------------------------------------------------------------
// Encoding

interface EncodeContext {
  /** Set when some element needed `xsi:type`, so the root declares the xsi namespace. */
  xsi: boolean;
}

function withPath<T>(segment: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof WireValueError) err.path.unshift(segment);
    throw err;
  }
}

function encodeChildren(model: TypeModel, value: Record<string, unknown>, ctx: EncodeContext): string {
  let out = "";
  const fields = model.fields;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const v = value[field.name];
    if (v === undefined || v === null) {
      if (field.required) throw new WireValueError(`${field.name} is required by uforge.xsd`);
      continue;
    }
    if (field.kind === "list" || field.repeated) {
      out += withPath(field.name, () => encodeRepeated(field, v, ctx));
    } else if (field.kind === "object") {
      out += withPath(field.name, () => encodeObjectElement(field, v, ctx));
    } else {
      let text: string;
      try {
        text = xmlScalar(field, v);
      } catch (err) {
        if (err instanceof WireValueError) err.path.unshift(field.name);
        throw err;
      }
      out += text === "" ? field.empty : field.open + text + field.close;
    }
  }
  return out;
}

function encodeRepeated(field: FieldModel, value: unknown, ctx: EncodeContext): string {
  if (!Array.isArray(value)) throw new WireValueError(`cannot encode ${quote(value)} as a list`);
  const item = field.kind === "list" ? field.item! : field;
  if (value.length === 0 && item.required) throw new WireValueError(`needs at least one <${item.name}>`);
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    out += withPath(`[${i}]`, () => {
      if (v === undefined || v === null) throw new WireValueError(`cannot encode ${quote(v)} as an item`);
      if (item.kind === "object") return encodeObjectElement(item, v, ctx);
      const text = xmlScalar(item, v);
      return text === "" ? item.empty : item.open + text + item.close;
    });
  }
  if (field.kind !== "list") return out;
  // An empty wrapper still says "the list is empty", which an absent one does not.
  return out === "" ? field.empty : field.open + out + field.close;
}

function encodeObjectElement(field: FieldModel, v: unknown, ctx: EncodeContext): string {
  const value = asObject(v);
  const declared = typeModel(field.type!);
  const actual = concreteType(declared, value);
  const body = encodeChildren(actual, value, ctx);
  if (actual !== declared || declared.abstract) {
    ctx.xsi = true;
    const open = `<${field.name} xsi:type="ns0:${actual.name}"`;
    return body === "" ? `${open}/>` : `${open}>${body}${field.close}`;
  }
  return body === "" ? field.empty : field.open + body + field.close;
}

/**
 * Encodes a UForge object as an XML document whose root is `root`. A value that does not fit the
 * declarations is a bug in Kiln, not in the client: it fails with an `internal` error naming the
 * field, rather than sending a body that does not validate.
 */
export function encodeXml(root: string, value: object): string {
  const model = rootModel(root);
  if (model === undefined) fail("internal", `cannot encode: uforge.xsd has no root element <${root}>`);
  const ctx: EncodeContext = { xsi: false };
  try {
    const record = asObject(value);
    const actual = concreteType(model, record);
    const body = encodeChildren(actual, record, ctx);
    let typeAttr = "";
    if (actual !== model || model.abstract) {
      ctx.xsi = true;
      typeAttr = ` xsi:type="ns0:${actual.name}"`;
    }
    return `${XML_DECLARATION}<ns0:${root}${NS0}${ctx.xsi ? XSI : ""}${typeAttr}>${body}</ns0:${root}>`;
  } catch (err) {
    if (err instanceof WireValueError) {
      throw new KilnError("internal", `cannot encode <${root}>: ${[root, ...err.path].join(".").replace(/\.\[/g, "[")}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

type Frame =
  | { kind: "object"; field: FieldModel | undefined; model: TypeModel; value: Record<string, unknown>; path: string; nil: boolean }
  | { kind: "list"; field: FieldModel; items: unknown[]; path: string; nil: boolean }
  | { kind: "scalar"; field: FieldModel; text: string; path: string; nil: boolean }
  | { kind: "skip" };

const SKIP: Frame = { kind: "skip" };

function invalidField(path: string, message: string): never {
  throw new KilnError("invalidField", `${path}: ${message}`);
}

function describeRoots(roots: readonly string[]): string {
  return roots.map((r) => `<ns0:${r}>`).join(" or ");
}

/**
 * Decodes an XML document whose root must be one of `roots`. Returns the root element's name and
 * the object read from it (fields the declarations do not know are ignored).
 */
export function decodeXml(roots: readonly string[], body: string | Buffer): { root: string; value: Record<string, unknown> } {
  const models = roots.map((r) => {
    const model = rootModel(r);
    if (model === undefined) fail("internal", `cannot decode: uforge.xsd has no root element <${r}>`);
    return model;
  });
  const text = bodyText(body);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: Frame[] = [];
  let result: { root: string; value: Record<string, unknown> } | undefined;
  let rootIndex = -1;

  const where = (): string => `${parser.line}:${parser.column}`;

  /** The concrete type an element's `xsi:type` picks (or the declared one). */
  const typeOf = (tag: SaxesTagNS, declared: TypeModel, path: string): TypeModel => {
    let xsiType: string | undefined;
    for (const name in tag.attributes) {
      const attr = tag.attributes[name]!;
      if (attr.uri !== XSI_NAMESPACE || attr.local !== "type") continue;
      const qname = attr.value.trim();
      const colon = qname.indexOf(":");
      const prefix = colon < 0 ? "" : qname.slice(0, colon);
      const local = colon < 0 ? qname : qname.slice(colon + 1);
      const uri = parser.resolve(prefix);
      if (uri !== UFORGE_NAMESPACE) {
        invalidField(path, `xsi:type ${quote(attr.value)} is not a UForge type${uri === undefined && prefix !== "" ? ` (prefix "${prefix}" is not declared)` : ""}`);
      }
      xsiType = local;
    }
    const picked = pickType(declared, xsiType);
    if (typeof picked === "string") invalidField(path, picked);
    return picked;
  };

  const isNil = (tag: SaxesTagNS): boolean => {
    for (const name in tag.attributes) {
      const attr = tag.attributes[name]!;
      if (attr.uri === XSI_NAMESPACE && attr.local === "nil") {
        const v = attr.value.trim();
        return v === "true" || v === "1";
      }
    }
    return false;
  };

  const openField = (field: FieldModel, tag: SaxesTagNS, path: string): Frame => {
    const nil = isNil(tag);
    if (field.kind === "list") return { kind: "list", field, items: [], path, nil };
    if (field.kind === "object") {
      if (nil) return { kind: "scalar", field, text: "", path, nil };
      const model = typeOf(tag, typeModel(field.type!), path);
      return { kind: "object", field, model, value: {}, path, nil };
    }
    return { kind: "scalar", field, text: "", path, nil };
  };

  /** Stores a finished child value in its parent frame. */
  const assign = (parent: Frame, field: FieldModel, value: unknown, path: string): void => {
    if (parent.kind === "list") {
      parent.items.push(value);
    } else if (parent.kind === "object") {
      const target = parent.value;
      if (field.repeated) {
        const list = (target[field.name] ??= []) as unknown[];
        list.push(value);
      } else if (Object.hasOwn(target, field.name)) {
        invalidField(path, `<${field.name}> appears more than once`);
      } else {
        target[field.name] = value;
      }
    }
  };

  parser.on("error", (err) => {
    if (/undefined entity/.test(err.message)) {
      throw new KilnError("forbiddenDtd", `entity references other than &lt; &gt; &amp; &quot; &apos; and character references are refused (${err.message})`);
    }
    throw new KilnError("malformedBody", `malformed XML: ${err.message}`, { cause: err });
  });
  parser.on("doctype", () => {
    throw new KilnError("forbiddenDtd", `a DOCTYPE is not accepted in a request body (at ${where()})`);
  });
  parser.on("xmldecl", (decl) => {
    const encoding = decl.encoding?.toLowerCase();
    if (encoding !== undefined && encoding !== "utf-8" && encoding !== "utf8" && encoding !== "us-ascii") {
      fail("malformedBody", `XML encoding "${decl.encoding}" is not supported: send UTF-8`);
    }
  });
  parser.on("opentag", (tag) => {
    if (stack.length >= MAX_DEPTH) fail("malformedBody", `XML nested deeper than ${MAX_DEPTH} elements (at ${where()})`);
    if (stack.length === 0) {
      let index = tag.uri === UFORGE_NAMESPACE ? roots.indexOf(tag.local) : -1;
      // A global element of a subtype names the type as xsi:type would (the docs' own
      // `<ns0:softwareFile>` where a softwareArtifact is expected).
      const named = index < 0 && tag.uri === UFORGE_NAMESPACE ? rootModel(tag.local) : undefined;
      if (named !== undefined) index = models.findIndex((m) => m.candidates.get(named.name) === named);
      if (index < 0) {
        const got = tag.uri === UFORGE_NAMESPACE || tag.uri === "" ? `<${tag.name}>` : `<${tag.name}> in namespace ${tag.uri}`;
        const hint = tag.uri === "" && roots.includes(tag.local) ? ` (the root must be in the UForge namespace ${UFORGE_NAMESPACE})` : "";
        fail("wrongRoot", `expected ${describeRoots(roots)}, got ${got}${hint}`);
      }
      rootIndex = index;
      const root = roots[index]!;
      const model = typeOf(tag, named ?? models[index]!, root);
      stack.push({ kind: "object", field: undefined, model, value: {}, path: root, nil: false });
      return;
    }
    const parent = stack[stack.length - 1]!;
    // Children are unqualified; a client that qualifies them with UForge's namespace still means them.
    const known = tag.uri === "" || tag.uri === UFORGE_NAMESPACE;
    switch (parent.kind) {
      case "skip":
        stack.push(SKIP);
        return;
      case "scalar":
        return invalidField(parent.path, `unexpected element <${tag.name}> inside ${parent.nil ? "a nil element" : "a value"}`);
      case "list": {
        if (parent.nil) invalidField(parent.path, `unexpected element <${tag.name}> inside a nil element`);
        const item = parent.field.item!;
        const path = `${parent.path}[${parent.items.length}]`;
        if (known && tag.local === item.name) stack.push(openField(item, tag, path));
        else {
          // An item may be written as the global element of its type (`<softwareFile>` among softwareArtifacts).
          const named = known && item.kind === "object" ? substitute(item, tag.local) : undefined;
          stack.push(named === undefined ? SKIP : { kind: "object", field: item, model: typeOf(tag, named, path), value: {}, path, nil: isNil(tag) });
        }
        return;
      }
      case "object": {
        if (parent.nil) invalidField(parent.path, `unexpected element <${tag.name}> inside a nil element`);
        const field = known ? parent.model.byName.get(tag.local) : undefined;
        // Unknown elements are skipped, not refused: newer UForge clients send fields we do not use.
        stack.push(field === undefined ? SKIP : openField(field, tag, `${parent.path}.${field.name}`));
        return;
      }
    }
  });
  const onText = (t: string): void => {
    const top = stack[stack.length - 1];
    if (top === undefined || top.kind === "skip") return;
    if (top.kind === "scalar") {
      top.text += t;
    } else if (/[^ \t\r\n]/.test(t)) {
      invalidField(top.path, `unexpected text ${quote(t.trim())} where ${top.kind === "list" ? `<${top.field.item!.name}> elements are` : "elements are"} expected`);
    }
  };
  parser.on("text", onText);
  parser.on("cdata", onText);
  parser.on("closetag", () => {
    const frame = stack.pop()!;
    if (frame.kind === "skip") return;
    const parent = stack[stack.length - 1];
    if (frame.kind === "object" && frame.field === undefined) {
      result = { root: roots[rootIndex]!, value: finishObject(frame.model, models[rootIndex]!, frame.value) };
      return;
    }
    if (parent === undefined) return;
    if (frame.nil) {
      if (frame.kind === "scalar" && frame.text.trim() !== "") invalidField(frame.path, "a nil element must be empty");
      return; // nil reads as absent
    }
    let value: unknown;
    if (frame.kind === "scalar") {
      try {
        value = parseXmlScalar(frame.field, frame.text);
      } catch (err) {
        if (err instanceof WireValueError) invalidField(frame.path, err.message);
        throw err;
      }
    } else if (frame.kind === "list") {
      value = frame.items;
    } else {
      value = finishObject(frame.model, typeModel(frame.field!.type!), frame.value);
    }
    assign(parent, frame.field!, value, frame.path);
  });

  parser.write(text).close();
  if (result === undefined) fail("malformedBody", `the XML body has no root element: expected ${describeRoots(roots)}`);
  return result;
}

/** The type a global element names when it is `field`'s declared type or one of its subtypes (else `undefined`). */
function substitute(field: FieldModel, element: string): TypeModel | undefined {
  const named = rootModel(element);
  return named !== undefined && typeModel(field.type!).candidates.get(named.name) === named ? named : undefined;
}

/** Marks the concrete type when it is not the declared one (as encoding expects it back). */
function finishObject(actual: TypeModel, declared: TypeModel, value: Record<string, unknown>): Record<string, unknown> {
  if (actual !== declared || declared.abstract) value.xsiType = actual.name;
  return value;
}
