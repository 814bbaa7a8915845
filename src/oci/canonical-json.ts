/**
 * Canonical JSON for everything Kiln hashes (image configs, manifests, indexes): object keys
 * sorted by code unit, no whitespace, integers only. The OCI image spec asks for canonical JSON
 * so that the same content always has the same digest; sorting every level also keeps user maps
 * (labels, annotations) stable whatever order they were given in.
 */

/** A JSON value as Kiln writes it (no floats, no undefined inside arrays). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };

/** Serialises `value` canonically; `undefined` object members are left out. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON holds integers only, not ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(",")}}`;
}

/** {@link canonicalJson} as UTF-8 bytes, ready to be stored and hashed. */
export function canonicalBytes(value: JsonValue): Buffer {
  return Buffer.from(canonicalJson(value), "utf8");
}
