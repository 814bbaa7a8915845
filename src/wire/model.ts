/**
 * The generated declarations, compiled once per type into what both codecs need at run time:
 * fields by name, tags written out in advance, enumeration sets, and the types an `xsi:type` may
 * pick. Compiled lazily (most of UForge's 300 types are never used by Kiln) and cached forever.
 */
import type { FieldDecl, TypeDecl } from "./declarations.js";
import { WireValueError, quote } from "./scalars.js";
import { rootElements, typeDecls } from "./schema.generated.js";

/** A field ready for the codecs. */
export interface FieldModel {
  readonly decl: FieldDecl;
  readonly name: string;
  readonly kind: FieldDecl["kind"];
  readonly repeated: boolean;
  readonly required: boolean;
  /** Enumeration values (kind `enum`). */
  readonly values: ReadonlySet<string> | undefined;
  /** What JSON accepts and writes for an enumeration Kiln extends (JSON_ENUM_EXTENSIONS); else `values`. */
  readonly jsonValues: ReadonlySet<string> | undefined;
  /** Declared type name (kind `object`). */
  readonly type: string | undefined;
  /** The repeated element inside a list wrapper (kind `list`). */
  readonly item: FieldModel | undefined;
  /** `<name>`, `</name>`, `<name/>`: unqualified, as `elementFormDefault="unqualified"` says. */
  readonly open: string;
  readonly close: string;
  readonly empty: string;
  /** `"name":` */
  readonly jsonKey: string;
}

/** A complex type ready for the codecs. */
export interface TypeModel {
  readonly name: string;
  readonly decl: TypeDecl;
  readonly abstract: boolean;
  readonly anonymous: boolean;
  readonly fields: readonly FieldModel[];
  readonly byName: ReadonlyMap<string, FieldModel>;
  /** The named types an `xsi:type` may pick where this type is declared: itself and its named descendants. */
  readonly candidates: ReadonlyMap<string, TypeModel>;
}

/**
 * Enumerations Kiln extends in JSON only, where no schema binds clients: uforge.xsd lists only
 * x86-family architectures for a distribution, and Kiln builds arm64 images too. XML stays exactly
 * the schema's (XML clients do not see those distributions: library/representations.ts).
 */
const JSON_ENUM_EXTENSIONS: Readonly<Record<string, readonly string[]>> = { "Distribution.arch": ["aarch64"] };

function compileField(decl: FieldDecl, owner = ""): FieldModel {
  const values = decl.kind === "enum" ? new Set(decl.values) : undefined;
  const extra = JSON_ENUM_EXTENSIONS[`${owner}.${decl.name}`];
  return {
    decl,
    name: decl.name,
    kind: decl.kind,
    repeated: decl.repeated,
    required: decl.required,
    values,
    jsonValues: values && extra ? new Set([...values, ...extra]) : values,
    type: decl.kind === "object" ? decl.type : undefined,
    item: decl.kind === "list" ? compileField(decl.item) : undefined,
    open: `<${decl.name}>`,
    close: `</${decl.name}>`,
    empty: `<${decl.name}/>`,
    jsonKey: `${JSON.stringify(decl.name)}:`,
  };
}

/** Named subtypes by base, computed once. */
let subtypesByBase: Map<string, string[]> | undefined;
function directSubtypes(name: string): readonly string[] {
  if (subtypesByBase === undefined) {
    subtypesByBase = new Map();
    for (const decl of Object.values(typeDecls)) {
      if (decl.base === undefined || decl.anonymous) continue;
      const list = subtypesByBase.get(decl.base) ?? [];
      list.push(decl.name);
      subtypesByBase.set(decl.base, list);
    }
  }
  return subtypesByBase.get(name) ?? [];
}

class CompiledType implements TypeModel {
  readonly name: string;
  readonly abstract: boolean;
  readonly anonymous: boolean;
  readonly fields: readonly FieldModel[];
  readonly byName: ReadonlyMap<string, FieldModel>;
  #candidates: Map<string, TypeModel> | undefined;

  constructor(readonly decl: TypeDecl) {
    this.name = decl.name;
    this.abstract = decl.abstract;
    this.anonymous = decl.anonymous;
    this.fields = decl.fields.map((f) => compileField(f, decl.name));
    this.byName = new Map(this.fields.map((f) => [f.name, f]));
  }

  get candidates(): ReadonlyMap<string, TypeModel> {
    if (this.#candidates === undefined) {
      const out = new Map<string, TypeModel>();
      const visit = (name: string): void => {
        out.set(name, typeModel(name));
        for (const sub of directSubtypes(name)) visit(sub);
      };
      visit(this.name);
      this.#candidates = out;
    }
    return this.#candidates;
  }
}

const cache = new Map<string, TypeModel>();

/** The compiled model of a declared type; `undefined` for a name uforge.xsd does not declare. */
export function findTypeModel(name: string): TypeModel | undefined {
  let model = cache.get(name);
  if (model === undefined) {
    if (!Object.hasOwn(typeDecls, name)) return undefined;
    model = new CompiledType(typeDecls[name]!);
    cache.set(name, model);
  }
  return model;
}

/** The compiled model of a type the declarations reference (so it must exist). */
export function typeModel(name: string): TypeModel {
  const model = findTypeModel(name);
  if (model === undefined) throw new Error(`wire declarations reference an unknown type ${name}`);
  return model;
}

/** The type of a root element, or `undefined` if uforge.xsd has no such root. */
export function rootModel(root: string): TypeModel | undefined {
  if (!Object.hasOwn(rootElements, root)) return undefined;
  return typeModel((rootElements as Readonly<Record<string, string>>)[root]!);
}

/**
 * The concrete type of a value where `declared` is expected, given the `xsiType` it carries.
 * Returns a reason (for the caller's error) when the choice is not allowed.
 */
export function pickType(declared: TypeModel, xsiType: string | undefined): TypeModel | string {
  if (xsiType === undefined) {
    return declared.abstract ? `${declared.name} is abstract: an xsi:type naming one of its subtypes is required` : declared;
  }
  const chosen = declared.candidates.get(xsiType);
  if (chosen === undefined) {
    return findTypeModel(xsiType) === undefined || findTypeModel(xsiType)!.anonymous
      ? `unknown type ${JSON.stringify(xsiType)}`
      : `type ${xsiType} is not a ${declared.name}`;
  }
  if (chosen.abstract) return `type ${xsiType} is abstract`;
  return chosen;
}

/** An in-memory object value, or a `WireValueError` saying why it is not one. */
export function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Date || value instanceof Uint8Array) {
    throw new WireValueError(`cannot encode ${quote(value)} as an object`);
  }
  return value as Record<string, unknown>;
}

/** The concrete type of an in-memory object where `declared` is expected (for encoding). */
export function concreteType(declared: TypeModel, value: Record<string, unknown>): TypeModel {
  const xsiType = value.xsiType;
  if (xsiType !== undefined && xsiType !== null && typeof xsiType !== "string") throw new WireValueError(`xsiType ${quote(xsiType)} is not a type name`);
  const picked = pickType(declared, xsiType ?? undefined);
  if (typeof picked === "string") throw new WireValueError(picked);
  return picked;
}
