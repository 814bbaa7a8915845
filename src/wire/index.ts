/**
 * UForge's wire format, XML and JSON, driven by declarations generated from uforge.xsd
 * (`node tools/gen-wire-schema.mjs`). The rest of Kiln handles plain objects: strings, numbers
 * for long/int/float, booleans, `Date` for dateTime, arrays for repeated elements and list
 * wrappers, and `xsiType` naming the concrete type of a polymorphic object.
 */
import { decodeJson, encodeJson } from "./json.js";
import type { RootElement, RootValues } from "./schema.generated.js";
import { decodeXml, encodeXml } from "./xml.js";

export type { FieldDecl, ScalarKind, TypeDecl } from "./declarations.js";
export { MAX_DEPTH } from "./body.js";
export { UFORGE_NAMESPACE, rootElements, typeDecls } from "./schema.generated.js";
export type * from "./schema.generated.js";

/** The two representations UForge serves. */
export type WireFormat = "xml" | "json";

/** The value type of a root element: its generated interface when `R` is a known root name. */
export type RootValue<R extends string> = R extends RootElement ? RootValues[R] : object;

/**
 * Encodes `value` as the body of a `root` element (e.g. `"containerTemplate"`).
 *
 * Fields are written in declaration order whatever the object's key order; unknown keys are
 * ignored; `undefined`/`null` fields are omitted. A value that does not fit the declarations
 * (wrong type, abstract type without `xsiType`...) throws a `KilnError("internal")` naming the
 * field: sending a body that does not validate against uforge.xsd would be worse.
 */
export function encode<R extends string>(rootElement: R, value: RootValue<R>, format: WireFormat): string {
  return format === "json" ? encodeJson(rootElement, value) : encodeXml(rootElement, value);
}

/**
 * Decodes a request (or response) body whose root must be one of `rootElements`.
 *
 * Refuses, as `KilnError`s (400): a DOCTYPE or an undeclared entity (`forbiddenDtd`), malformed
 * XML or JSON (`malformedBody`), another root (`wrongRoot`), and a value that does not fit its
 * field or an `xsi:type` that is unknown or not a subtype of the declared type (`invalidField`,
 * naming the field's path). Elements and properties the declarations do not know are ignored.
 */
export function decode<R extends string>(
  rootElements: R | readonly R[],
  body: string | Buffer,
  format: WireFormat,
): { root: R; value: RootValue<R> } {
  const roots: readonly string[] = typeof rootElements === "string" ? [rootElements] : rootElements;
  const decoded = format === "json" ? decodeJson(roots, body) : decodeXml(roots, body);
  return decoded as { root: R; value: RootValue<R> };
}

export { decodeJson, decodeXml, encodeJson, encodeXml };
