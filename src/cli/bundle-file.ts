/**
 * hammr's bundle file (YAML, or JSON for a `.json` file): read it, check it the way hammr does,
 * and turn it into the artifacts to create.
 *
 * ```yaml
 * name: hello                 # mandatory
 * version: "1.0"              # mandatory
 * description: says hello
 * destination: /opt/hello     # → defaultInstallLocation
 * restrictionRule: "Distribution#name=Debian"
 * license: { name: MIT, source: LICENSE }   # the name is kept; nothing is uploaded for it
 * files:                      # mandatory
 *   - name: hello.tar.gz      # the file's name in the bundle
 *     source: dist/hello.tar.gz   # relative to this file, absolute, or an http(s):// URL
 *     destination: /opt/hello # → installLocation
 *     extract: true
 *   - name: conf              # a folder: its source is a directory
 *     source: conf
 *     files:                  # details for some of its entries (the others are added as found)
 *       - name: app.conf
 *         source: conf/app.conf
 *         rights: "0640"      # ownerGroup, rights, symlink → params (softwarefile only)
 * ```
 *
 * The checks are hammr's, in hammr's order (mandatory name, version and files; each file needs a
 * name and a source; `ospkg` and `bootscript` only at the first level; `bootOrder`/`bootType`
 * only on a bootscript; `ownerGroup`/`rights`/`symlink` only on a softwarefile; nested `files`
 * only under a folder tagged softwarefile), then the ones Kiln's API would otherwise refuse later
 * (value types, paths, rights, the rule's syntax, sources that exist). The first problem is
 * reported, naming where it is (`files[1].files[0] (app.conf)`).
 */
import { lstat, readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { checkImagePath, isArtifactTag, isBootType, parseArtifactParams } from "../domain/artifacts.js";
import { isKilnError } from "../domain/errors.js";
import { parseRestrictionRule } from "../domain/restriction.js";
import type { BootScript, MySoftware, SoftwareArtifact } from "../sdk/index.js";

/** A mistake in a bundle file; `message` names the file and the place. */
export class BundleFileError extends Error {
  override readonly name = "BundleFileError";
}

/** Where a file's bytes come from. */
export type Source = { kind: "path"; path: string; size: number } | { kind: "url"; url: string };

/** One artifact to create, with its children for a folder. */
export interface PlannedArtifact {
  /** Where it came from in the file (`files[2]`), or the directory entry that produced it. */
  where: string;
  kind: "file" | "folder";
  /** The body of the artifact's creation. */
  body: SoftwareArtifact;
  /** A file's bytes (absent for folders). */
  source?: Source;
  /** Checksums the file gave, checked against what the server computed after the upload. */
  md5sum?: string;
  sha256sum?: string;
  children: PlannedArtifact[];
}

/** A checked bundle file. */
export interface BundlePlan {
  file: string;
  bundle: MySoftware;
  artifacts: PlannedArtifact[];
  /** Files to upload (folders not counted). */
  fileCount: number;
  /** Bytes of local sources (URLs not counted). */
  localBytes: number;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Reads and parses the file: JSON for `.json`, YAML otherwise (as hammr decides). */
export async function readBundleFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new BundleFileError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (/\.json$/i.test(file)) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new BundleFileError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const doc = YAML.parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line})` : "";
    throw new BundleFileError(`${file} is not valid YAML${line}: ${e.message.split("\n")[0]}`);
  }
  return doc.toJS() as unknown;
}

class Checker {
  constructor(private readonly file: string) {}

  fail(where: string, message: string): never {
    throw new BundleFileError(`${path.basename(this.file)}: ${where ? `${where}: ` : ""}${message}`);
  }

  string(o: Obj, key: string, where: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(where, `there is no attribute [${key}]`);
      return undefined;
    }
    // YAML reads `version: 1.0` as a number: hammr takes it as text, and so do we.
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

  imagePath(value: string | undefined, where: string, key: string): string | undefined {
    if (value === undefined || value.trim() === "") return undefined;
    try {
      return checkImagePath(value.trim(), `[${key}]`);
    } catch (err) {
      if (isKilnError(err)) this.fail(where, err.message);
      throw err;
    }
  }
}

/** The structural checks hammr makes, in its order, on one file entry and its nested files. */
function checkHammrRules(c: Checker, f: Obj, where: string, level: number): void {
  const name = c.string(f, "name", where, true)!;
  const label = `${where} (${name})`;
  if (f.source === undefined || f.source === null || f.source === "") c.fail(label, "there is no attribute [source]");
  const tag = f.tag;
  if (tag !== undefined && !isArtifactTag(tag)) c.fail(label, `[tag] must be softwarefile, ospkg or bootscript, not ${JSON.stringify(tag)}`);
  if (level > 0 && (tag === "ospkg" || tag === "bootscript")) c.fail(label, `a file tagged ${tag} must be in the first level files section`);
  if ((f.bootOrder !== undefined || f.bootType !== undefined) && tag !== "bootscript") c.fail(label, "[bootOrder] or [bootType] is set but the file is not tagged bootscript");
  if ((f.ownerGroup !== undefined || f.rights !== undefined || f.symlink !== undefined) && tag !== undefined && tag !== "softwarefile") {
    c.fail(label, "[ownerGroup], [rights] or [symlink] is set but the file is not tagged softwarefile");
  }
  if (f.files !== undefined && f.files !== null) {
    if (!Array.isArray(f.files)) c.fail(label, "[files] must be a list");
    if (f.files.length > 0 && tag !== undefined && tag !== "softwarefile") c.fail(label, "the list of files is not empty but the file is not tagged softwarefile");
    f.files.forEach((sub: unknown, i: number) => {
      if (!isObj(sub)) c.fail(`${where}.files[${i}]`, "a file must be a mapping with name and source");
      checkHammrRules(c, sub, `${where}.files[${i}]`, level + 1);
    });
  }
}

/** The artifact fields of a file entry, checked. */
function artifactBody(c: Checker, f: Obj, label: string, kind: "file" | "folder"): SoftwareArtifact {
  const name = c.string(f, "name", label, true)!.trim();
  if (name === "." || name === ".." || /[/\\\0]/.test(name) || name.length > 255) c.fail(label, `[name] must be a file name without "/" (got ${JSON.stringify(name)})`);
  const body: SoftwareArtifact = { name };
  if (kind === "folder") body.type = "folder";
  const tag = f.tag as string | undefined;
  if (tag !== undefined) body.tag = tag;
  const loc = c.imagePath(c.string(f, "destination", label), label, "destination");
  if (loc !== undefined) body.installLocation = loc;
  const extract = c.boolean(f, "extract", label);
  if (extract !== undefined) body.extract = extract;
  const install = c.boolean(f, "install", label);
  if (install !== undefined) body.install = install;
  if (f.bootOrder !== undefined && !(typeof f.bootOrder === "number" && Number.isInteger(f.bootOrder) && f.bootOrder >= 0)) c.fail(label, "[bootOrder] must be a whole number");
  if (f.bootType !== undefined && !isBootType(f.bootType)) c.fail(label, "[bootType] must be firstboot or everyboot");
  if (tag === "bootscript") {
    const boot = body as BootScript;
    boot.xsiType = "BootScript";
    if (f.bootOrder !== undefined) boot.bootOrder = f.bootOrder as number;
    if (isBootType(f.bootType)) boot.bootType = f.bootType;
  }
  const parts: string[] = [];
  for (const key of ["ownerGroup", "rights", "symlink"] as const) {
    const v = c.string(f, key, label);
    if (v !== undefined && v.trim() !== "") parts.push(`${key}=${v.trim()}`);
  }
  if (parts.length > 0) {
    try {
      body.params = parseArtifactParams(parts.join(";"), "the file").text!;
    } catch (err) {
      if (isKilnError(err)) c.fail(label, err.message.replace(/^the file\.?/, "").replace(/^: /, "").trim() || err.message);
      throw err;
    }
  }
  return body;
}

function checksum(c: Checker, f: Obj, key: "md5sum" | "sha256sum", label: string): string | undefined {
  const v = c.string(f, key, label);
  if (v === undefined) return undefined;
  const re = key === "md5sum" ? /^[0-9a-f]{32}$/i : /^[0-9a-f]{64}$/i;
  if (!re.test(v.trim())) c.fail(label, `[${key}] is not a hex ${key === "md5sum" ? "MD5" : "SHA-256"} checksum`);
  return v.trim().toLowerCase();
}

interface Walk {
  c: Checker;
  baseDir: string;
  count: { files: number; bytes: number };
}

/** The children of a folder found in its source directory, except those the file describes. */
async function directoryChildren(w: Walk, dir: string, root: string, described: Set<string>, where: string): Promise<PlannedArtifact[]> {
  const out: PlannedArtifact[] = [];
  const names = (await readdir(dir)).sort();
  for (const entry of names) {
    const full = path.join(dir, entry);
    if (described.has(full)) continue;
    const entryWhere = `${where}/${entry}`;
    let st = await lstat(full);
    if (st.isSymbolicLink()) {
      // A link is followed only inside the folder being uploaded: what it names is uploaded, never what lies beyond.
      const target = await realpath(full).catch(() => undefined);
      if (!target || (target !== root && !target.startsWith(`${root}${path.sep}`))) w.c.fail(entryWhere, `is a symbolic link that leads outside ${root}: refused`);
      st = await stat(target);
    }
    if (st.isDirectory()) {
      out.push({ where: entryWhere, kind: "folder", body: { name: entry, type: "folder" }, children: await directoryChildren(w, full, root, described, entryWhere), });
    } else if (st.isFile()) {
      w.count.files++;
      w.count.bytes += st.size;
      out.push({ where: entryWhere, kind: "file", body: { name: entry }, source: { kind: "path", path: full, size: st.size }, children: [] });
    } else {
      w.c.fail(entryWhere, "is neither a file nor a directory: refused");
    }
  }
  return out;
}

async function planEntry(w: Walk, f: Obj, where: string): Promise<PlannedArtifact> {
  const c: Checker = w.c;
  const name = String(f.name);
  const label = `${where} (${name})`;
  const rawSource = c.string(f, "source", label, true)!.trim();
  const nested = Array.isArray(f.files) ? (f.files as Obj[]) : [];
  if (isUrl(rawSource)) {
    if (nested.length > 0) c.fail(label, "the list of files is not empty but [source] is a URL, not a folder");
    try {
      new URL(rawSource);
    } catch {
      c.fail(label, `[source] ${rawSource} is not a valid URL`);
    }
    w.count.files++;
    return { where: label, kind: "file", body: artifactBody(c, f, label, "file"), source: { kind: "url", url: rawSource }, ...sums(c, f, label), children: [] };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rawSource)) c.fail(label, `[source] ${rawSource}: only local paths and http(s):// URLs can be uploaded`);
  const sourcePath = path.resolve(w.baseDir, rawSource);
  const st = await stat(sourcePath).catch(() => undefined);
  if (!st) c.fail(label, `[source] ${rawSource} does not exist (looked for ${sourcePath})`);
  if (st.isDirectory()) {
    if (f.tag !== undefined && f.tag !== "softwarefile") c.fail(label, `[source] ${rawSource} is a folder, and a folder can only be tagged softwarefile`);
    const body = artifactBody(c, f, label, "folder");
    const children: PlannedArtifact[] = [];
    const described = new Set<string>();
    for (let i = 0; i < nested.length; i++) {
      const child = await planEntry(w, nested[i]!, `${where}.files[${i}]`);
      children.push(child);
      const src = nested[i]!.source;
      if (typeof src === "string" && !isUrl(src)) described.add(path.resolve(w.baseDir, src));
    }
    const root = await realpath(sourcePath);
    children.push(...(await directoryChildren(w, sourcePath, root, described, `${where} (${name})`)));
    return { where: label, kind: "folder", body, children };
  }
  if (!st.isFile()) c.fail(label, `[source] ${rawSource} is neither a file nor a folder`);
  if (nested.length > 0) c.fail(label, `the list of files is not empty but [source] ${rawSource} is not a folder`);
  w.count.files++;
  w.count.bytes += st.size;
  return { where: label, kind: "file", body: artifactBody(c, f, label, "file"), source: { kind: "path", path: sourcePath, size: st.size }, ...sums(c, f, label), children: [] };
}

function sums(c: Checker, f: Obj, label: string): { md5sum?: string; sha256sum?: string } {
  const md5sum = checksum(c, f, "md5sum", label);
  const sha256sum = checksum(c, f, "sha256sum", label);
  return { ...(md5sum ? { md5sum } : {}), ...(sha256sum ? { sha256sum } : {}) };
}

/**
 * Reads, checks and plans a bundle file. Throws a `BundleFileError` naming the first problem.
 */
export async function loadBundleFile(file: string): Promise<BundlePlan> {
  const data = await readBundleFile(file);
  const c: Checker = new Checker(file);
  if (!isObj(data)) c.fail("", "a bundle file is a mapping with name, version and files");
  // hammr's checks first, in its order.
  const name = c.string(data, "name", "", false);
  if (name === undefined || name.trim() === "") c.fail("", "there is no attribute [name] for the bundle");
  const version = c.string(data, "version", "", false);
  if (version === undefined || version.trim() === "") c.fail("", "there is no attribute [version] for the bundle");
  if (data.files === undefined || data.files === null) c.fail("", "there is no attribute [files] for the bundle");
  if (!Array.isArray(data.files)) c.fail("", "[files] must be a list");
  const files = data.files as unknown[];
  files.forEach((f, i) => {
    if (!isObj(f)) c.fail(`files[${i}]`, "a file must be a mapping with name and source");
    checkHammrRules(c, f, `files[${i}]`, 0);
  });

  // Then what the API would refuse.
  const bundle: MySoftware = { name: name.trim(), version: version.trim() };
  const description = c.string(data, "description", "");
  if (description !== undefined) bundle.description = description;
  const destination = c.imagePath(c.string(data, "destination", ""), "", "destination");
  if (destination !== undefined) bundle.defaultInstallLocation = destination;
  const rule = c.string(data, "restrictionRule", "");
  if (rule !== undefined && rule.trim() !== "") {
    try {
      parseRestrictionRule(rule);
    } catch (err) {
      // The parser's message draws a caret under the fault on more lines; the first says it all.
      if (isKilnError(err)) c.fail("", `[restrictionRule]: ${err.message.split("\n")[0]}`);
      throw err;
    }
    bundle.bundleRestriction = { restrictionRule: rule };
  }
  if (data.license !== undefined && data.license !== null) {
    if (!isObj(data.license)) c.fail("", "[license] must be a mapping with name (and source)");
    const licenseName = c.string(data.license, "name", "license");
    if (licenseName !== undefined && licenseName.trim() !== "") bundle.license = { name: licenseName.trim() };
  }

  const w: Walk = { c, baseDir: path.dirname(path.resolve(file)), count: { files: 0, bytes: 0 } };
  const artifacts: PlannedArtifact[] = [];
  for (let i = 0; i < files.length; i++) artifacts.push(await planEntry(w, files[i] as Obj, `files[${i}]`));
  return { file, bundle, artifacts, fileCount: w.count.files, localBytes: w.count.bytes };
}
