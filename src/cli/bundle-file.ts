/**
 * hammr's bundle file (YAML, or JSON for a `.json` file), read as hammr reads it, and the
 * archive `hammr bundle create` builds from it.
 *
 * ```yaml
 * name: hello                 # mandatory
 * version: "1.0"              # mandatory
 * description: says hello
 * destination: /opt/hello     # → defaultInstallLocation
 * restrictionRule: "Distribution#name=Debian"
 * license: { name: MIT, source: LICENSE }   # the license's name, and its file
 * sourceLogo: logo.png
 * files:                      # mandatory
 *   - name: hello.tar.gz      # the file's name in the bundle
 *     source: dist/hello.tar.gz   # a path (see below) or an http(s):// URL
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
 * The checks are hammr's (domain/bundle-description.ts, shared with the server's import): the
 * structure, the tags, `ospkg` and `bootscript` only at the first level, the attributes each tag
 * allows, then what Kiln's API would refuse. A `source` path is relative to the current
 * directory, as hammr takes it; only when nothing is there is it looked for beside the bundle
 * file. An entry with nested `files` must have a directory as its source. A source that is not
 * there is a warning for `validate` and an error for `create`.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdtemp, readdir, readFile, realpath, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { parseArtifactParams } from "../domain/artifacts.js";
import { archiveComponent, formatDescription, parseDescriptionText, readBundleDescription, type BundleDescription, type DescribedFile } from "../domain/bundle-description.js";
import { isKilnError } from "../domain/errors.js";
import { openUrl } from "./fetch-source.js";

/** A mistake in a bundle file; `message` names the file and the place. */
export class BundleFileError extends Error {
  override readonly name = "BundleFileError";
}

/** Where an entry's bytes are. */
export type Source = { kind: "path"; path: string; size: number } | { kind: "url"; url: string } | { kind: "missing" } | { kind: "package" };

/** One entry of the bundle, its source found, with the entries of a folder. */
export interface PlannedEntry {
  /** `files[2] (name)`, or the folder's place and the name of an entry found in it. */
  where: string;
  name: string;
  kind: "file" | "folder";
  /** What the file says of the entry (absent for an entry found in a folder). */
  described?: DescribedFile;
  source: Source;
  children: PlannedEntry[];
}

/** A checked bundle file. */
export interface BundlePlan {
  file: string;
  format: "yaml" | "json";
  description: BundleDescription;
  entries: PlannedEntry[];
  license?: Source;
  logo?: Source;
  /** What hammr would stumble on, or files not there (`validate` prints them). */
  warnings: string[];
  /** Files to send (folders not counted). */
  fileCount: number;
  /** Bytes of local sources (URLs not counted). */
  localBytes: number;
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
  return asBundleFileError(() => parseDescriptionText(text, /\.json$/i.test(file), path.basename(file)));
}

function asBundleFileError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isKilnError(err)) throw new BundleFileError(err.message);
    throw err;
  }
}

interface Walk {
  label: string;
  fileDir: string;
  warnings: string[];
  count: { files: number; bytes: number };
}

/** hammr's reading of a `source` path: from the current directory; beside the bundle file only when nothing is there. */
async function findSource(w: Walk, source: string): Promise<{ path: string; st: import("node:fs").Stats } | undefined> {
  for (const candidate of [path.resolve(source), path.resolve(w.fileDir, source)]) {
    const st = await stat(candidate).catch(() => undefined);
    if (st) return { path: candidate, st };
  }
  return undefined;
}

function missing(w: Walk, where: string, source: string): Source {
  const looked = path.isAbsolute(source) ? source : `${path.resolve(source)}, then ${path.resolve(w.fileDir, source)}`;
  w.warnings.push(`${w.label}: ${where}: [source] ${source} does not exist (looked for ${looked})`);
  return { kind: "missing" };
}

/** The entries of a folder's directory that the file does not describe. */
async function directoryEntries(w: Walk, dir: string, root: string, described: Set<string>, where: string): Promise<PlannedEntry[]> {
  const out: PlannedEntry[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const full = path.join(dir, name);
    if (described.has(full)) continue;
    const entryWhere = `${where}/${name}`;
    let st = await lstat(full);
    if (st.isSymbolicLink()) {
      // A link is followed only inside the folder being sent: what it names is sent, never what lies beyond.
      const target = await realpath(full).catch(() => undefined);
      if (!target || (target !== root && !target.startsWith(`${root}${path.sep}`))) throw new BundleFileError(`${w.label}: ${entryWhere} is a symbolic link that leads outside ${root}: refused`);
      st = await stat(target);
    }
    if (st.isDirectory()) {
      out.push({ where: entryWhere, name, kind: "folder", source: { kind: "path", path: full, size: 0 }, children: await directoryEntries(w, full, root, described, entryWhere) });
    } else if (st.isFile()) {
      w.count.files++;
      w.count.bytes += st.size;
      out.push({ where: entryWhere, name, kind: "file", source: { kind: "path", path: full, size: st.size }, children: [] });
    } else {
      throw new BundleFileError(`${w.label}: ${entryWhere} is neither a file nor a directory: refused`);
    }
  }
  return out;
}

async function planEntry(w: Walk, f: DescribedFile, raw: Record<string, unknown>): Promise<PlannedEntry> {
  const nested = f.files ?? [];
  const rawNested = Array.isArray(raw.files) ? (raw.files as Array<Record<string, unknown>>) : [];
  const base = { where: f.where, name: f.name, described: f };
  if (isUrl(f.source)) {
    if (nested.length > 0) throw new BundleFileError(`${w.label}: ${f.where}: the list of files is not empty but [source] is a URL, not a folder`);
    try {
      new URL(f.source);
    } catch {
      throw new BundleFileError(`${w.label}: ${f.where}: [source] ${f.source} is not a valid URL`);
    }
    w.count.files++;
    return { ...base, kind: "file", source: { kind: "url", url: f.source }, children: [] };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(f.source)) throw new BundleFileError(`${w.label}: ${f.where}: [source] ${f.source}: only local paths and http(s):// URLs can be sent`);
  const found = await findSource(w, f.source);
  if (!found) {
    // An OS package may be a false source: the distribution has it, by name.
    if (f.tag === "ospkg") return { ...base, kind: "file", source: { kind: "package" }, children: [] };
    return { ...base, kind: nested.length > 0 ? "folder" : "file", source: missing(w, f.where, f.source), children: await Promise.all(nested.map((n, i) => planEntry(w, n, rawNested[i] ?? {}))) };
  }
  if (found.st.isDirectory()) {
    if (f.tag !== undefined && f.tag !== "softwarefile") throw new BundleFileError(`${w.label}: ${f.where}: [source] ${f.source} is a folder, and a folder can only be tagged softwarefile`);
    if (raw.files === undefined) w.warnings.push(`${w.label}: ${f.where}: [source] ${f.source} is a folder but the entry has no [files] (hammr needs it, even empty: files: [])`);
    const children: PlannedEntry[] = [];
    const described = new Set<string>();
    for (let i = 0; i < nested.length; i++) {
      children.push(await planEntry(w, nested[i]!, rawNested[i] ?? {}));
      const at = await findSource(w, nested[i]!.source);
      if (at) described.add(at.path);
    }
    children.push(...(await directoryEntries(w, found.path, await realpath(found.path), described, f.where)));
    return { ...base, kind: "folder", source: { kind: "path", path: found.path, size: 0 }, children };
  }
  if (!found.st.isFile()) throw new BundleFileError(`${w.label}: ${f.where}: [source] ${f.source} is neither a file nor a folder`);
  if (nested.length > 0) throw new BundleFileError(`${w.label}: ${f.where}: the list of files is not empty but [source] ${f.source} is not a folder`);
  w.count.files++;
  w.count.bytes += found.st.size;
  return { ...base, kind: "file", source: { kind: "path", path: found.path, size: found.st.size }, children: [] };
}

async function planExtra(w: Walk, source: string | undefined, where: string): Promise<Source | undefined> {
  if (source === undefined) return undefined;
  if (isUrl(source)) return { kind: "url", url: source };
  const found = await findSource(w, source);
  if (!found) return missing(w, where, source);
  if (!found.st.isFile()) throw new BundleFileError(`${w.label}: ${where} ${source} is not a file`);
  w.count.bytes += found.st.size;
  return { kind: "path", path: found.path, size: found.st.size };
}

/**
 * Reads, checks and plans a bundle file. Throws a `BundleFileError` naming the first problem;
 * sources that are not there are `warnings`.
 */
export async function loadBundleFile(file: string): Promise<BundlePlan> {
  const data = await readBundleFile(file);
  const label = path.basename(file);
  const description = asBundleFileError(() => readBundleDescription(data, label));
  const w: Walk = { label, fileDir: path.dirname(path.resolve(file)), warnings: [], count: { files: 0, bytes: 0 } };
  const rawFiles = (data as { files: Array<Record<string, unknown>> }).files;
  const entries: PlannedEntry[] = [];
  for (let i = 0; i < description.files.length; i++) entries.push(await planEntry(w, description.files[i]!, rawFiles[i] ?? {}));
  const license = await planExtra(w, description.license?.source, "[license.source]");
  const logo = await planExtra(w, description.sourceLogo, "[sourceLogo]");
  return { file, format: /\.json$/i.test(file) ? "json" : "yaml", description, entries, ...(license ? { license } : {}), ...(logo ? { logo } : {}), warnings: w.warnings, fileCount: w.count.files, localBytes: w.count.bytes };
}

/** A planned archive: its members in order, and the description with every source rewritten. */
interface Layout {
  members: Array<{ path: string; kind: "directory" } | { path: string; kind: "file"; source: Source }>;
  description: Record<string, unknown>;
}

/** hammr's layout (`do_create`): files under `bundles/<name>/<version>/`, a folder's below its path, license and logo under `bundles/<name>/`. */
function layout(plan: BundlePlan): Layout {
  const d = plan.description;
  const root = `bundles/${archiveComponent(d.name)}`;
  const members: Layout["members"] = [];
  const taken = new Set<string>();
  const entry = (e: PlannedEntry, dir: string): Record<string, unknown> => {
    const at = `${dir}/${archiveComponent(e.name)}`;
    const f = e.described;
    const out: Record<string, unknown> = { name: e.name, source: at };
    if (f?.tag) out.tag = f.tag;
    if (f?.destination) out.destination = f.destination;
    if (f?.extract !== undefined) out.extract = f.extract;
    if (f?.install !== undefined) out.install = f.install;
    Object.assign(out, parseArtifactParams(f?.params).params);
    if (f?.bootOrder !== undefined) out.bootOrder = f.bootOrder;
    if (f?.bootType) out.bootType = f.bootType;
    if (f?.md5sum) out.md5sum = f.md5sum;
    if (f?.sha256sum) out.sha256sum = f.sha256sum;
    if (e.source.kind === "package") {
      out.source = f!.source;
      return out;
    }
    if (taken.has(at)) throw new BundleFileError(`${path.basename(plan.file)}: ${e.where}: cannot have identical files in the bundles section (${at})`);
    taken.add(at);
    if (e.kind === "folder") {
      members.push({ path: at, kind: "directory" });
      out.files = e.children.map((c) => entry(c, at));
    } else {
      members.push({ path: at, kind: "file", source: e.source });
      out.files = [];
    }
    return out;
  };
  const files = plan.entries.map((e) => entry(e, `${root}/${archiveComponent(d.version)}`));
  const out: Record<string, unknown> = { name: d.name, version: d.version, files };
  if (d.description !== undefined) out.description = d.description;
  if (d.destination !== undefined) out.destination = d.destination;
  if (d.restrictionRule !== undefined) out.restrictionRule = d.restrictionRule;
  const extra = (source: Source | undefined, given: string): string | undefined => {
    if (!source) return undefined;
    const at = `${root}/${archiveComponent(path.basename(isUrl(given) ? new URL(given).pathname : given))}`;
    members.push({ path: at, kind: "file", source });
    return at;
  };
  if (d.license) {
    const at = extra(plan.license, d.license.source ?? "");
    out.license = { ...(d.license.name !== undefined ? { name: d.license.name } : {}), ...(at ? { source: at } : {}) };
  }
  const logo = extra(plan.logo, d.sourceLogo ?? "");
  if (logo) out.sourceLogo = logo;
  return { members, description: out };
}

/** The bytes of a source, with their size (a URL is downloaded to `tmp` first: a tar header needs the size). */
async function openSource(source: Source, tmp: string, n: number): Promise<{ stream: Readable; size: number }> {
  if (source.kind === "path") {
    const st = await stat(source.path);
    return { stream: createReadStream(source.path), size: st.size };
  }
  if (source.kind !== "url") throw new Error("a source that is not there cannot be sent");
  const { stream } = await openUrl(source.url);
  const file = path.join(tmp, `download-${n}`);
  await pipeline(stream, createWriteStream(file));
  return { stream: createReadStream(file), size: (await stat(file)).size };
}

/**
 * Builds hammr's archive of a bundle file (every source must be there) in a new temporary
 * directory; answers its path and a function that removes it.
 */
export async function buildBundleArchive(plan: BundlePlan): Promise<{ archive: string; size: number; cleanup: () => Promise<void> }> {
  const missingOne = [plan.license, plan.logo].some((s) => s?.kind === "missing") || hasMissing(plan.entries);
  if (missingOne) throw new BundleFileError(plan.warnings.find((x) => /does not exist/.test(x)) ?? `${path.basename(plan.file)}: a source does not exist`);
  const { members, description } = layout(plan);
  const tmp = await mkdtemp(path.join(os.tmpdir(), "kiln-bundle-"));
  const cleanup = (): Promise<void> => rm(tmp, { recursive: true, force: true });
  try {
    const archive = path.join(tmp, "archive.tar.gz");
    const pack = tar.pack();
    const written = pipeline(pack, createGzip(), createWriteStream(archive));
    const mtime = new Date();
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (m.kind === "directory") {
        pack.entry({ name: m.path, type: "directory", mode: 0o755, mtime });
        continue;
      }
      const { stream, size } = await openSource(m.source, tmp, i);
      await pipeline(stream, pack.entry({ name: m.path, size, mode: 0o644, mtime }) as unknown as NodeJS.WritableStream);
    }
    const text = formatDescription(description, plan.format);
    pack.entry({ name: plan.format === "json" ? "bundle.json" : "bundle.yml", mode: 0o644, mtime }, text);
    pack.finalize();
    await written;
    return { archive, size: (await stat(archive)).size, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function hasMissing(entries: PlannedEntry[]): boolean {
  return entries.some((e) => e.source.kind === "missing" || hasMissing(e.children));
}
