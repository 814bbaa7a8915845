/**
 * The shape of the declarations `tools/gen-wire-schema.mjs` extracts from uforge.xsd. Both
 * codecs (XML and JSON) are driven by them; nothing about a UForge object type is written by
 * hand anywhere else.
 */

/** XSD built-in types a field may have, by their XSD local name. */
export type ScalarKind = "string" | "anyURI" | "long" | "int" | "integer" | "float" | "boolean" | "dateTime" | "base64Binary";

interface FieldCommon {
  /** Element name (also the JSON property name). */
  readonly name: string;
  /** `minOccurs >= 1`. */
  readonly required: boolean;
  /** `maxOccurs > 1`: the element repeats in place and the value is an array. */
  readonly repeated: boolean;
  /** `nillable="true"`: `xsi:nil` is accepted and read as absent. */
  readonly nillable?: boolean;
}

/** A field whose value is text of a built-in type. */
export interface ScalarField extends FieldCommon {
  readonly kind: ScalarKind;
}

/** A string field restricted to an enumeration. */
export interface EnumField extends FieldCommon {
  readonly kind: "enum";
  readonly values: readonly string[];
}

/** A field whose value is an object of a complex type (or, with `xsi:type`, of a subtype). */
export interface ObjectField extends FieldCommon {
  readonly kind: "object";
  /** Name of a declaration in `typeDecls`. */
  readonly type: string;
}

/**
 * An inline list wrapper: `<containerTemplates><containerTemplate/>...</containerTemplates>`.
 * In memory (and in JSON) the wrapper is just an array of its items.
 */
export interface ListField extends FieldCommon {
  readonly kind: "list";
  /** The repeated element inside the wrapper (`repeated` is always true). */
  readonly item: FieldDecl;
}

/** One element of a complex type's sequence. */
export type FieldDecl = ScalarField | EnumField | ObjectField | ListField;

/** One complex type of uforge.xsd. */
export interface TypeDecl {
  /** XSD name; for anonymous types, a synthetic name (owner type + element name). */
  readonly name: string;
  /** The type it extends (`complexContent/extension/@base`). */
  readonly base?: string;
  /** Abstract types only appear on the wire through a concrete `xsi:type`. */
  readonly abstract: boolean;
  /** Anonymous types have no XSD name, so no `xsi:type` may name them. */
  readonly anonymous: boolean;
  /** Every field in XSD order, inherited ones first. */
  readonly fields: readonly FieldDecl[];
}
