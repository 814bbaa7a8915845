/**
 * What a software artifact may be tagged, when a boot script runs, its `params`, and the paths
 * and file names it may use: shared by the library, the store, the builder and the bundle-file
 * checks of the command line, so that they accept the same values.
 */
import { fail } from "./errors.js";

/** UForge's `tag` of an artifact: a plain file, a Debian package to install, or a boot script. */
export const ARTIFACT_TAGS = ["softwarefile", "ospkg", "bootscript"] as const;
export type ArtifactTag = (typeof ARTIFACT_TAGS)[number];

/** When a boot script runs (UForge's `BootScript.bootType`): once on the first start, or at every start. */
export const BOOT_TYPES = ["firstboot", "everyboot"] as const;
export type BootType = (typeof BOOT_TYPES)[number];

export function isArtifactTag(v: unknown): v is ArtifactTag {
  return (ARTIFACT_TAGS as readonly unknown[]).includes(v);
}

export function isBootType(v: unknown): v is BootType {
  return (BOOT_TYPES as readonly unknown[]).includes(v);
}

/**
 * An absolute path inside an image (`/opt/hello`), normalised: no `..`, no relative form, since
 * it decides where bundle files land. `what` names the field in the error.
 */
export function checkImagePath(p: string, what: string): string {
  if (!p.startsWith("/")) fail("invalidField", `${what} must be an absolute path, got "${p}"`);
  if (p.includes("\0")) fail("invalidField", `${what} contains a NUL character`);
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

/** An artifact's owner, permissions and symlink (UForge's `params`). */
export interface ArtifactParams {
  ownerGroup?: string;
  rights?: string;
  symlink?: string;
}

const PARAM_KEYS = ["ownerGroup", "rights", "symlink"] as const;
const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$|^\d+$/;

/**
 * An artifact's `params`: owner, rights and symlink, written `ownerGroup=app:app;rights=0755;
 * symlink=/usr/local/bin/hello` (or the same keys as a JSON object). Returns the normalised text
 * (keys in a fixed order) and the values.
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
      const [user, group, ...rest] = v.split(":");
      if (!ACCOUNT_NAME.test(user ?? "") || rest.length > 0 || (group !== undefined && !ACCOUNT_NAME.test(group))) {
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
