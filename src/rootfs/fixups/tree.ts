/**
 * Helpers the fix-ups share to turn "what a package script would have done" into `FsEntry`
 * values against a read-only {@link RootfsView}.
 *
 * Every path a fix-up writes is a *real* path: its parent directories are resolved through the
 * symlinks already in the tree (`bin/sh` is written as `usr/bin/sh` once `bin -> usr/bin` exists),
 * because the tree stores nodes where they really are and a node "under" a symlink would be
 * ambiguous. Symlinks that would lead out of the root are resolved inside it, as the view does.
 */
import { createHash } from "node:crypto";
import { KilnError } from "../../domain/errors.js";
import { bufferContent, type ContentRef, type FsEntry, type RootfsView } from "../types.js";

/** Owner of everything a package script creates as root. */
const ROOT = 0;

/**
 * Normalises an absolute or relative path (`/usr/bin/awk`, `./etc//passwd`) to the tree's form
 * (`usr/bin/awk`). Refuses `..` and NUL: script arguments are untrusted input.
 */
export function treePath(p: string): string {
  if (p.includes("\0")) throw new KilnError("unsafeArchive", `path with a NUL byte: ${JSON.stringify(p)}`);
  const parts: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new KilnError("unsafeArchive", `path with "..": ${p}`);
    parts.push(part);
  }
  return parts.join("/");
}

/** `usr/bin` for `usr/bin/awk`, `""` (the root) for `etc`. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** `awk` for `usr/bin/awk`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Joins tree paths, either of which may be the root (`""`). */
export function joinPath(a: string, b: string): string {
  if (a === "") return b;
  if (b === "") return a;
  return `${a}/${b}`;
}

/** A directory entry, owned by root unless said otherwise. */
export function dirEntry(path: string, mode = 0o755, uid = ROOT, gid = ROOT): FsEntry {
  return { path, type: "dir", mode, uid, gid };
}

/** A regular file with in-memory content (fix-up outputs are small text files). */
export function fileEntry(path: string, data: Buffer | string, mode = 0o644, uid = ROOT, gid = ROOT): FsEntry {
  return { path, type: "file", mode, uid, gid, content: bufferContent(data) };
}

/** A symlink; its target is stored verbatim, as `ln -s` does. */
export function symlinkEntry(path: string, target: string): FsEntry {
  return { path, type: "symlink", mode: 0o777, uid: ROOT, gid: ROOT, linkname: target };
}

/** Hex MD5 of a file's bytes (dpkg's conffile and md5sums hashes): recorded at unpacking, else streamed. */
export async function md5Hex(content: ContentRef): Promise<string> {
  if (content.md5 !== undefined) return content.md5;
  const hash = createHash("md5");
  for await (const chunk of content.open()) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Hex MD5 of a buffer. */
export function md5OfBuffer(data: Buffer | string): string {
  return createHash("md5").update(data).digest("hex");
}

/** The entry at `path` with symlinks followed, if it is a regular file. */
export function regularFile(fs: RootfsView, path: string): FsEntry | undefined {
  const e = path === "" ? undefined : fs.stat(path);
  return e && e.type === "file" ? e : undefined;
}

/**
 * The bytes behind `path` without following symlinks: a regular file's, or for a hard link
 * (stored as a link to the first path), the file it links to.
 */
export function fileContent(fs: RootfsView, path: string): ContentRef | undefined {
  let e = fs.lstat(path);
  if (e?.type === "hardlink" && e.linkname !== undefined) e = fs.lstat(e.linkname);
  return e?.type === "file" ? e.content : undefined;
}

/** Whether `path` (symlinks followed) is a directory. */
export function isDirectory(fs: RootfsView, path: string): boolean {
  if (path === "") return true;
  return fs.stat(path)?.type === "dir";
}

/** Reads a text file if it exists as a regular file (symlinks followed). */
export async function readText(fs: RootfsView, path: string): Promise<string | undefined> {
  if (!regularFile(fs, path)) return undefined;
  return (await fs.readFile(path)).toString("utf8");
}

/**
 * The entries one fix-up produces, keyed by real path (a later entry for the same path replaces
 * the earlier one). Parent directories that exist neither in the tree nor in the set are added
 * (`mkdir -p`, mode 0755, root), so the builder never receives an orphan.
 */
export class EntrySet {
  private readonly byPath = new Map<string, FsEntry>();
  private readonly removed = new Set<string>();

  constructor(private readonly fs: RootfsView) {}

  /**
   * Where `path` (as a script would name it) really is: its parent resolved through the symlinks
   * of the tree (and of directories added to this set), the last component kept as is — a
   * symlink at `path` itself is replaced, not followed, like `ln -sf` and `mv` do.
   */
  realTarget(path: string): string {
    const p = treePath(path);
    if (p === "") throw new KilnError("buildFailed", "a fix-up cannot replace the root directory");
    return joinPath(this.realDir(parentOf(p)), baseName(p));
  }

  /** The real path of a directory (following symlinks), creating it if missing. */
  realDir(path: string): string {
    const p = treePath(path);
    if (p === "") return "";
    const pending = this.byPath.get(p);
    if (pending?.type === "dir") return p;
    if (!this.removed.has(p)) {
      const real = this.fs.realpath(p);
      if (real !== undefined) {
        if (isDirectory(this.fs, real) || this.byPath.get(real)?.type === "dir") return real;
        throw new KilnError("buildFailed", `/${p} is not a directory`);
      }
    }
    // Missing: create it (and its parents) where the parent really is.
    const parent = this.realDir(parentOf(p));
    const real = joinPath(parent, baseName(p));
    if (!this.byPath.has(real)) this.byPath.set(real, dirEntry(real));
    return real;
  }

  /** Adds (or replaces) an entry, at the real location of its path. Returns the real path. */
  add(entry: FsEntry): string {
    const real = this.realTarget(entry.path);
    this.byPath.set(real, { ...entry, path: real });
    this.removed.delete(real);
    return real;
  }

  /** A directory with this mode and owner (like `mkdir` + `chown` + `chmod`). */
  dir(path: string, mode = 0o755, uid = ROOT, gid = ROOT): string {
    return this.add(dirEntry(path, mode, uid, gid));
  }

  /** A regular file. */
  file(path: string, data: Buffer | string, mode = 0o644, uid = ROOT, gid = ROOT): string {
    return this.add(fileEntry(path, data, mode, uid, gid));
  }

  /** A symlink. */
  symlink(path: string, target: string): string {
    return this.add(symlinkEntry(path, target));
  }

  /**
   * Removes a path of the tree (and anything under it). The builder applies removals before
   * entries, so a directory's children can be removed and the directory replaced by a link.
   */
  remove(path: string): void {
    const real = this.realTarget(path);
    this.removed.add(real);
    for (const k of [...this.byPath.keys()]) if (k === real || k.startsWith(`${real}/`)) this.byPath.delete(k);
  }

  /** The fix-up result: entries with parents before children, then the removals. */
  result(): { entries: FsEntry[]; remove?: string[] } {
    const entries = [...this.byPath.values()].sort((a, b) => depth(a.path) - depth(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return this.removed.size > 0 ? { entries, remove: [...this.removed].sort() } : { entries };
  }
}

function depth(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/**
 * Every node under `root` (not including it), parents before children, as the view shows them
 * (symlinks not followed). Used to move a directory's content elsewhere.
 */
export function walkTree(fs: RootfsView, root: string): FsEntry[] {
  const out: FsEntry[] = [];
  const visit = (dir: string): void => {
    for (const name of fs.readdir(dir)) {
      const path = joinPath(dir, name);
      const e = fs.lstat(path);
      if (!e) continue;
      out.push(e);
      if (e.type === "dir") visit(path);
    }
  };
  visit(root);
  return out;
}

/** Byte-wise comparison of strings (C `strcmp` on UTF-8), for orders that must match C tools. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
