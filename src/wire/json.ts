/**
 * UForge's JSON representation: the same fields under the same names as the XML one, one object
 * without a root wrapper, list wrappers as plain arrays, `xsiType` for polymorphic objects and
 * dates as ISO 8601 strings. Driven by the same declarations and scalar rules as the XML codec,
 * so a value is accepted or refused identically in both formats.
 */
import { KilnError, fail } from "../domain/errors.js";
import { MAX_DEPTH, bodyText } from "./body.js";
import { asObject, concreteType, pickType, rootModel, typeModel } from "./model.js";
import type { FieldModel, TypeModel } from "./model.js";
import { WireValueError, describeKind, jsonScalar, quote, readJsonScalar } from "./scalars.js";

// ---------------------------------------------------------------------------------------------
// Encoding

function encodeObject(declared: TypeModel, v: unknown): string {
  const value = asObject(v);
  const actual = concreteType(declared, value);
  let out = actual !== declared || declared.abstract ? `{"xsiType":${JSON.stringify(actual.name)}` : "{";
  let first = out.length === 1;
  const fields = actual.fields;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const fv = value[field.name];
    if (fv === undefined || fv === null) {
      if (field.required) throw new WireValueError(`${field.name} is required by uforge.xsd`);
      continue;
    }
    let text: string;
    try {
      text = field.kind === "list" || field.repeated ? encodeArray(field, fv) : encodeOne(field, fv);
    } catch (err) {
      if (err instanceof WireValueError) err.path.unshift(field.name);
      throw err;
    }
    out += first ? field.jsonKey + text : `,${field.jsonKey}${text}`;
    first = false;
  }
  return `${out}}`;
}

function encodeOne(field: FieldModel, value: unknown): string {
  return field.kind === "object" ? encodeObject(typeModel(field.type!), value) : jsonScalar(field, value);
}

function encodeArray(field: FieldModel, value: unknown): string {
  if (!Array.isArray(value)) throw new WireValueError(`cannot encode ${quote(value)} as a list`);
  const item = field.kind === "list" ? field.item! : field;
  if (value.length === 0 && item.required) throw new WireValueError(`needs at least one ${item.name}`);
  let out = "[";
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    try {
      if (v === undefined || v === null) throw new WireValueError(`cannot encode ${quote(v)} as an item`);
      out += i === 0 ? encodeOne(item, v) : `,${encodeOne(item, v)}`;
    } catch (err) {
      if (err instanceof WireValueError) err.path.unshift(`[${i}]`);
      throw err;
    }
  }
  return `${out}]`;
}

/** Encodes a UForge object as JSON (same failure rules as `encodeXml`). */
export function encodeJson(root: string, value: object): string {
  const model = rootModel(root);
  if (model === undefined) fail("internal", `cannot encode: uforge.xsd has no root element <${root}>`);
  try {
    return encodeObject(model, value);
  } catch (err) {
    if (err instanceof WireValueError) {
      throw new KilnError("internal", `cannot encode ${root}: ${[root, ...err.path].join(".").replace(/\.\[/g, "[")}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

function invalidField(path: string, message: string): never {
  throw new KilnError("invalidField", `${path}: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readObject(declared: TypeModel, input: unknown, path: string, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) fail("malformedBody", `JSON nested deeper than ${MAX_DEPTH} objects`);
  if (!isRecord(input)) invalidField(path, `${quote(input)} is not a ${declared.name} object`);
  const xsiType = Object.hasOwn(input, "xsiType") ? input.xsiType : undefined;
  if (xsiType !== undefined && xsiType !== null && typeof xsiType !== "string") invalidField(path, `xsiType ${quote(xsiType)} is not a type name`);
  const actual = pickType(declared, xsiType ?? undefined);
  if (typeof actual === "string") invalidField(path, actual);
  const out: Record<string, unknown> = {};
  for (const field of actual.fields) {
    // Own properties only: a field named like an Object.prototype member must not read the prototype.
    if (!Object.hasOwn(input, field.name)) continue;
    const v = input[field.name];
    if (v === null || v === undefined) continue;
    const fieldPath = `${path}.${field.name}`;
    if (field.kind === "list" || field.repeated) {
      if (!Array.isArray(v)) invalidField(fieldPath, `${quote(v)} is not a list`);
      const item = field.kind === "list" ? field.item! : field;
      out[field.name] = v.map((iv: unknown, i) => readOne(item, iv, `${fieldPath}[${i}]`, depth));
    } else {
      out[field.name] = readOne(field, v, fieldPath, depth);
    }
  }
  if (actual !== declared || declared.abstract) out.xsiType = actual.name;
  return out;
}

function readOne(field: FieldModel, value: unknown, path: string, depth: number): unknown {
  if (value === null || value === undefined) invalidField(path, `null is not ${describeKind(field)}`);
  if (field.kind === "object") return readObject(typeModel(field.type!), value, path, depth + 1);
  try {
    return readJsonScalar(field, value);
  } catch (err) {
    if (err instanceof WireValueError) invalidField(path, err.message);
    throw err;
  }
}

/**
 * A JSON body has no root name. With one expected root there is nothing to choose; with several,
 * an `xsiType` that only one of them admits decides, else the root whose declared fields the body
 * uses most (the first on a tie), so that `{"statusCode": 404, ...}` reads as a `uforgeError`.
 */
function chooseRoot(roots: readonly string[], models: readonly TypeModel[], input: Record<string, unknown>): number {
  if (roots.length === 1) return 0;
  const xsiType = input.xsiType;
  if (typeof xsiType === "string") {
    const index = models.findIndex((m) => m.candidates.has(xsiType));
    if (index >= 0) return index;
  }
  let best = 0;
  let bestScore = -1;
  const keys = Object.keys(input);
  models.forEach((model, i) => {
    const score = keys.filter((k) => model.byName.has(k)).length;
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

/** Decodes a JSON body as one of the expected root elements' objects. */
export function decodeJson(roots: readonly string[], body: string | Buffer): { root: string; value: Record<string, unknown> } {
  const models = roots.map((r) => {
    const model = rootModel(r);
    if (model === undefined) fail("internal", `cannot decode: uforge.xsd has no root element <${r}>`);
    return model;
  });
  const text = bodyText(body);
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    fail("malformedBody", `malformed JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isRecord(input)) {
    fail("wrongRoot", `expected a JSON object for ${roots.map((r) => `<ns0:${r}>`).join(" or ")}, got ${quote(input)}`);
  }
  const index = chooseRoot(roots, models, input);
  const root = roots[index]!;
  return { root, value: readObject(models[index]!, input, root, 1) };
}
