/**
 * Field checks on decoded request objects. The wire codec has already checked types against the
 * XSD; these add what the XSD cannot say (required here, length limits, safe names and paths).
 */
import { fail } from "../domain/errors.js";

type Obj = Record<string, unknown>;

const MAX_TEXT = 4096;

export function optionalString(o: Obj, root: string, field: string, max = MAX_TEXT): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail("invalidField", `${root}.${field} must be text`);
  if (v.length > max) fail("invalidField", `${root}.${field} is longer than ${max} characters`);
  if (v.includes("\0")) fail("invalidField", `${root}.${field} contains a NUL character`);
  return v;
}

export function requiredString(o: Obj, root: string, field: string, max = MAX_TEXT): string {
  const v = optionalString(o, root, field, max);
  if (v === undefined || v.trim() === "") fail("invalidField", `${root}.${field} is required`);
  return v.trim();
}

export function optionalBoolean(o: Obj, root: string, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") fail("invalidField", `${root}.${field} must be true or false`);
  return v;
}

/**
 * An absolute path inside an image (`/opt/hello`), normalised; no `..`, NUL or relative forms,
 * since it decides where bundle files land.
 */
export function optionalInstallPath(o: Obj, root: string, field: string): string | undefined {
  const v = optionalString(o, root, field, 1024);
  if (v === undefined || v.trim() === "") return undefined;
  return checkImagePath(v.trim(), `${root}.${field}`);
}

export function checkImagePath(p: string, what: string): string {
  if (!p.startsWith("/")) fail("invalidField", `${what} must be an absolute path, got "${p}"`);
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.some((s) => s === "..")) fail("invalidField", `${what} must not contain "..", got "${p}"`);
  return `/${parts.join("/")}`;
}

/** A file name as it appears in a URL: one path component, nothing that could escape. */
export function checkFileName(name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\\") || name.includes("\0") || name.length > 255) {
    fail("invalidFileName", `invalid file name "${name.replace(/\0/g, "\\0")}": it must be one path component without "/", "..", or NUL`);
  }
  return name;
}

export interface ArtifactParams {
  ownerGroup?: string;
  rights?: string;
  symlink?: string;
}

const PARAM_KEYS = ["ownerGroup", "rights", "symlink"] as const;

/**
 * An artifact's `params`: owner, rights and symlink, written `ownerGroup=app:app;rights=0755;
 * symlink=/usr/local/bin/hello` (or the same keys as a JSON object). Returns the normalised text.
 */
export function parseArtifactParams(text: string | undefined, what = "softwareArtifact.params"): { text: string | undefined; params: ArtifactParams } {
  if (text === undefined || text.trim() === "") return { text: undefined, params: {} };
  let raw: Record<string, unknown>;
  if (text.trim().startsWith("{")) {
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch {
      fail("invalidField", `${what} is not valid JSON`);
    }
  } else {
    raw = {};
    for (const part of text.split(";")) {
      if (part.trim() === "") continue;
      const eq = part.indexOf("=");
      if (eq < 0) fail("invalidField", `${what}: "${part.trim()}" is not key=value`);
      raw[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
  }
  const params: ArtifactParams = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(PARAM_KEYS as readonly string[]).includes(k)) fail("invalidField", `${what}: unknown key "${k}" (use ${PARAM_KEYS.join(", ")})`);
    if (typeof v !== "string") fail("invalidField", `${what}.${k} must be text`);
    if (k === "ownerGroup") {
      if (!/^[a-z_][a-z0-9_-]{0,31}$|^\d+$/.test(v.split(":")[0] ?? "") || v.split(":").length > 2 || (v.includes(":") && !/^[a-z_][a-z0-9_-]{0,31}$|^\d+$/.test(v.split(":")[1]!))) {
        fail("invalidField", `${what}.ownerGroup must be user[:group] (names or numeric ids), got "${v}"`);
      }
      params.ownerGroup = v;
    } else if (k === "rights") {
      if (!/^0?[0-7]{3,4}$/.test(v)) fail("invalidField", `${what}.rights must be octal permissions such as 0755, got "${v}"`);
      params.rights = v;
    } else {
      params.symlink = checkImagePath(v, `${what}.symlink`);
    }
  }
  const normalised = PARAM_KEYS.filter((k) => params[k] !== undefined)
    .map((k) => `${k}=${params[k]}`)
    .join(";");
  return { text: normalised || undefined, params };
}
