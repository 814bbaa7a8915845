/**
 * hammr's bundle description (`bundle.yml` / `bundle.json`): the file a user writes for `hammr
 * bundle create`, and the one at the root of a bundle archive (import and export). One reading
 * for the server's import and the command line: hammr's checks in hammr's order (mandatory name,
 * version and files; each file a name and a source; `ospkg` and `bootscript` only at the first
 * level; `bootOrder`/`bootType` only on a bootscript; `ownerGroup`/`rights`/`symlink` only on a
 * softwarefile; nested `files` only on a softwarefile), then the value checks Kiln's library
 * would otherwise make later (types, paths, rights, the rule's syntax). The first problem is
 * reported as `invalidField`, naming where it is (`files[1].files[0] (app.conf)`).
 */
import { createRequire } from "node:module";
import type YAMLType from "yaml";
import { checkImagePath, isArtifactTag, isBootType, parseArtifactParams, type ArtifactTag, type BootType } from "./artifacts.js";
import { fail, isKilnError } from "./errors.js";
import { lazy } from "./lazy.js";
import { parseRestrictionRule } from "./restriction.js";

/** yaml, loaded when a description is read or written (`kiln build` loads neither). */
const YAML = lazy(() => createRequire(import.meta.url)("yaml") as typeof YAMLType);

/** One entry of `files` (a file, a directory, or an OS package to install). */
export interface DescribedFile {
  /** Where it is in the description: `files[2]` or `files[1].files[0]`, then its name. */
  where: string;
  name: string;
  source: string;
  tag?: ArtifactTag;
  destination?: string;
  extract?: boolean;
  install?: boolean;
  /** ownerGroup, rights and symlink, in Kiln's `params` form (not hammr's `params` key, which is ignored). */
  params?: string;
  bootOrder?: number;
  bootType?: BootType;
  md5sum?: string;
  sha256sum?: string;
  /** The entries of a directory (hammr requires the key on one, possibly empty). */
  files?: DescribedFile[];
}

export interface BundleDescription {
  name: string;
  version: string;
  description?: string;
  destination?: string;
  restrictionRule?: string;
  license?: { name?: string; source?: string };
  sourceLogo?: string;
  files: DescribedFile[];
}

/** The attributes hammr documents for a file entry (stack-bundle-files.rst). */
const FILE_KEYS = new Set(["name", "source", "tag", "destination", "ownerGroup", "rights", "symlink", "bootOrder", "bootType", "extract", "install", "md5sum", "sha256sum", "params", "files"]);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A name as one component of an archive path: hammr's `remove_URI_forbidden_char` turns spaces
 * into `_`; Kiln also turns `/`, `\` and NUL into `_` and never answers `.` or `..`, so that a
 * bundle named `../x` cannot make an archive entry that climbs out.
 */
export function archiveComponent(s: string): string {
  const c = s.replace(/[ /\\\0]/g, "_");
  return c === "" || c === "." || c === ".." ? c.replace(/\./g, "_") || "_" : c;
}

/** The names hammr gives the description in an archive, by output format. */
export const DESCRIPTION_FILES = { yaml: "bundle.yml", json: "bundle.json" } as const;

/** Parses a description's text: JSON when `json`, else YAML (as hammr decides by extension). */
export function parseDescriptionText(text: string, json: boolean, what: string): unknown {
  if (json) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      fail("invalidField", `${what} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const doc = YAML().parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line})` : "";
    fail("invalidField", `${what} is not valid YAML${line}: ${e.message.split("\n")[0]}`);
  }
  return doc.toJS() as unknown;
}

/** Writes a description as hammr does: YAML block style with sorted keys after `---`, or JSON indented by 4. */
export function formatDescription(d: object, format: "yaml" | "json"): string {
  if (format === "json") return `${JSON.stringify(d, null, 4)}\n`;
  return `---\n${YAML().stringify(d, { sortMapEntries: true, indent: 2, lineWidth: 0 })}`;
}

class Reader {
  constructor(private readonly what: string) {}

  fail(where: string, message: string): never {
    fail("invalidField", `${this.what}: ${where ? `${where}: ` : ""}${message}`);
  }

  string(o: Obj, key: string, where: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(where, `there is no attribute [${key}]`);
      return undefined;
    }
    // YAML reads `version: 1.0` as a number: hammr takes it as text, and so does Kiln.
    if (typeof v === "number") return String(v);
    if (typeof v !== "string") this.fail(where, `[${key}] must be text`);
    if (required && v.trim() === "") this.fail(where, `[${key}] must not be empty`);
    return v;
  }

  boolean(o: Obj, key: string, where: string): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") this.fail(where, `[${key}] must be true or false`);
    return v;
  }

  /** Runs a domain check, its refusal told at this place. */
  checked<T>(where: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      // `[params].rights must be ...` reads better as `rights must be ...` at the file's place.
      if (isKilnError(err)) this.fail(where, err.message.split("\n")[0]!.replace(/^\[params\]\.?:? ?/, ""));
      throw err;
    }
  }
}

function checksum(r: Reader, f: Obj, key: "md5sum" | "sha256sum", label: string): string | undefined {
  const v = r.string(f, key, label);
  if (v === undefined) return undefined;
  if (!(key === "md5sum" ? /^[0-9a-f]{32}$/i : /^[0-9a-f]{64}$/i).test(v.trim())) r.fail(label, `[${key}] is not a hex ${key === "md5sum" ? "MD5" : "SHA-256"} checksum`);
  return v.trim().toLowerCase();
}

function readFile(r: Reader, f: unknown, where: string, level: number): DescribedFile {
  if (!isObj(f)) r.fail(where, "a file must be a mapping with name and source");
  const name = r.string(f, "name", where, true)!.trim();
  const label = `${where} (${name})`;
  const source = r.string(f, "source", label, true)!.trim();
  for (const key of Object.keys(f)) if (!FILE_KEYS.has(key)) r.fail(label, `unknown attribute [${key}] (a file has ${[...FILE_KEYS].join(", ")})`);
  const tag = f.tag;
  if (tag !== undefined && tag !== null && !isArtifactTag(tag)) r.fail(label, `[tag] must be softwarefile, ospkg or bootscript, not ${JSON.stringify(tag)}`);
  if (level > 0 && (tag === "ospkg" || tag === "bootscript")) r.fail(label, `a file tagged ${tag} must be in the first level files section`);
  if ((f.bootOrder !== undefined || f.bootType !== undefined) && tag !== "bootscript") r.fail(label, "[bootOrder] or [bootType] is set but the file is not tagged bootscript");
  if ((f.ownerGroup !== undefined || f.rights !== undefined || f.symlink !== undefined) && tag !== undefined && tag !== "softwarefile") {
    r.fail(label, "[ownerGroup], [rights] or [symlink] is set but the file is not tagged softwarefile");
  }
  if (name === "." || name === ".." || /[/\\\0]/.test(name) || name.length > 255) r.fail(label, `[name] must be a file name without "/" (got ${JSON.stringify(name)})`);
  const out: DescribedFile = { where: label, name, source };
  if (isArtifactTag(tag)) out.tag = tag;
  const destination = r.string(f, "destination", label);
  if (destination !== undefined && destination.trim() !== "") out.destination = r.checked(label, () => checkImagePath(destination.trim(), "[destination]"));
  const extract = r.boolean(f, "extract", label);
  if (extract !== undefined) out.extract = extract;
  const install = r.boolean(f, "install", label);
  if (install !== undefined) out.install = install;
  if (f.bootOrder !== undefined && !(typeof f.bootOrder === "number" && Number.isInteger(f.bootOrder) && f.bootOrder >= 0)) r.fail(label, "[bootOrder] must be a whole number");
  if (f.bootType !== undefined && !isBootType(f.bootType)) r.fail(label, "[bootType] must be firstboot or everyboot");
  if (typeof f.bootOrder === "number") out.bootOrder = f.bootOrder;
  if (isBootType(f.bootType)) out.bootType = f.bootType;
  // hammr's own `params` (a Windows installer's arguments) is accepted and means nothing here.
  const parts: string[] = [];
  for (const key of ["ownerGroup", "rights", "symlink"] as const) {
    const v = r.string(f, key, label);
    if (v !== undefined && v.trim() !== "") parts.push(`${key}=${v.trim()}`);
  }
  if (parts.length > 0) out.params = r.checked(label, () => parseArtifactParams(parts.join(";"), "[params]").text);
  const md5sum = checksum(r, f, "md5sum", label);
  if (md5sum) out.md5sum = md5sum;
  const sha256sum = checksum(r, f, "sha256sum", label);
  if (sha256sum) out.sha256sum = sha256sum;
  if (f.files !== undefined && f.files !== null) {
    if (!Array.isArray(f.files)) r.fail(label, "[files] must be a list");
    if (f.files.length > 0 && tag !== undefined && tag !== "softwarefile") r.fail(label, "the list of files is not empty but the file is not tagged softwarefile");
    out.files = f.files.map((sub: unknown, i: number) => readFile(r, sub, `${where}.files[${i}]`, level + 1));
  }
  return out;
}

/**
 * Reads a parsed description (`what` names it in messages: the file, or `bundle.yml`). Throws
 * `invalidField` at the first problem.
 */
export function readBundleDescription(data: unknown, what: string): BundleDescription {
  const r: Reader = new Reader(what);
  if (!isObj(data)) r.fail("", "a bundle description is a mapping with name, version and files");
  const name = r.string(data, "name", "");
  if (name === undefined || name.trim() === "") r.fail("", "there is no attribute [name] for the bundle");
  const version = r.string(data, "version", "");
  if (version === undefined || version.trim() === "") r.fail("", "there is no attribute [version] for the bundle");
  if (data.files === undefined || data.files === null) r.fail("", "there is no attribute [files] for the bundle");
  if (!Array.isArray(data.files)) r.fail("", "[files] must be a list");
  const files = (data.files as unknown[]).map((f, i) => readFile(r, f, `files[${i}]`, 0));
  const out: BundleDescription = { name: name.trim(), version: version.trim(), files };
  const description = r.string(data, "description", "");
  if (description !== undefined) out.description = description;
  const destination = r.string(data, "destination", "");
  if (destination !== undefined && destination.trim() !== "") out.destination = r.checked("", () => checkImagePath(destination.trim(), "[destination]"));
  const rule = r.string(data, "restrictionRule", "");
  if (rule !== undefined && rule.trim() !== "") {
    r.checked("[restrictionRule]", () => parseRestrictionRule(rule));
    out.restrictionRule = rule;
  }
  if (data.license !== undefined && data.license !== null) {
    if (!isObj(data.license)) r.fail("", "[license] must be a mapping with name (and source)");
    const licenseName = r.string(data.license, "name", "license");
    const licenseSource = r.string(data.license, "source", "license");
    out.license = {
      ...(licenseName !== undefined && licenseName.trim() !== "" ? { name: licenseName.trim() } : {}),
      ...(licenseSource !== undefined && licenseSource.trim() !== "" ? { source: licenseSource.trim() } : {}),
    };
  }
  const logo = r.string(data, "sourceLogo", "");
  if (logo !== undefined && logo.trim() !== "") out.sourceLogo = logo.trim();
  return out;
}
