/**
 * Field checks on decoded request objects. The wire codec has already checked each field's type
 * against the XSD; these add what the XSD cannot say (required here, length limits, no NUL,
 * safe paths) and name the field in the error (`mySoftware.name is required`).
 */
import { checkImagePath } from "../domain/artifacts.js";
import { fail } from "../domain/errors.js";

const MAX_TEXT = 4096;

/** The text fields of a wire object type: what the checks below may be asked about. */
type TextField<T> = { [K in keyof T]-?: NonNullable<T[K]> extends string ? K : never }[keyof T] & string;
type BooleanField<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T] & string;

export function optionalString<T extends object>(o: T, root: string, field: TextField<T>, max = MAX_TEXT): string | undefined {
  const v = (o as Record<string, unknown>)[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail("invalidField", `${root}.${field} must be text`);
  if (v.length > max) fail("invalidField", `${root}.${field} is longer than ${max} characters`);
  if (v.includes("\0")) fail("invalidField", `${root}.${field} contains a NUL character`);
  return v;
}

export function requiredString<T extends object>(o: T, root: string, field: TextField<T>, max = MAX_TEXT): string {
  const v = optionalString(o, root, field, max);
  if (v === undefined || v.trim() === "") fail("invalidField", `${root}.${field} is required`);
  return v.trim();
}

export function optionalBoolean<T extends object>(o: T, root: string, field: BooleanField<T>): boolean | undefined {
  const v = (o as Record<string, unknown>)[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") fail("invalidField", `${root}.${field} must be true or false`);
  return v;
}

/**
 * An absolute path inside an image (`/opt/hello`), normalised; no `..`, NUL or relative forms,
 * since it decides where bundle files land. Empty means "not given".
 */
export function optionalInstallPath<T extends object>(o: T, root: string, field: TextField<T>): string | undefined {
  const v = optionalString(o, root, field, 1024);
  if (v === undefined || v.trim() === "") return undefined;
  return checkImagePath(v.trim(), `${root}.${field}`);
}
