/**
 * The filesystem a maintainer script sees while Kiln interprets it: the assembled tree, read
 * through, with every change the script makes (files, directories, links, modes, owners,
 * capabilities, removals) held in an overlay. Nothing touches the host. At the end the overlay
 * is the fix-up's result: the entries to add or replace, and the paths to remove.
 *
 * Paths are tree paths (`etc/passwd`, `""` for the root); symlinks are resolved inside the root
 * as the kernel would resolve them in a chroot.
 */
import { KilnError } from "../../../domain/errors.js";
import { bufferContent, type ContentRef, type FsEntry, type RootfsView } from "../../types.js";
import { baseName, compareBytes, joinPath, parentOf } from "../tree.js";

const MAX_HOPS = 40;

/** An error a command reports the way the real tool would (`No such file or directory`). */
export class FsError extends Error {}

export class OverlayFs implements RootfsView {
  private readonly changed = new Map<string, FsEntry>();
  /** Real paths removed from the base tree (their subtrees too). */
  private readonly removed = new Set<string>();
  /** Children added under a real directory path. */
  private readonly added = new Map<string, Set<string>>();

  constructor(private readonly base: RootfsView) {}

  // ---- reading ----------------------------------------------------------------------------

  /** The entry at a real path (no symlink in its parents), overlay first. */
  private at(real: string): FsEntry | undefined {
    if (real === "") return { path: "", type: "dir", mode: 0o755, uid: 0, gid: 0 };
    const own = this.changed.get(real);
    if (own) return own;
    if (this.isRemoved(real)) return undefined;
    return this.base.lstat(real);
  }

  /** Whether a base path is gone: it or a directory above it was removed (and maybe made again). */
  private isRemoved(real: string): boolean {
    if (this.removed.size === 0) return false;
    for (let p = real; p !== ""; p = parentOf(p)) if (this.removed.has(p)) return true;
    return false;
  }

  /**
   * Resolves `path` (relative to `cwd` when not absolute) to a real tree path. `followLast`
   * follows a final symlink. Returns undefined when a directory on the way is missing.
   */
  resolve(path: string, followLast: boolean, cwd = ""): string | undefined {
    const parts = (path.startsWith("/") ? path : `${cwd}/${path}`).split("/").filter((c) => c !== "" && c !== ".");
    const done: string[] = [];
    let hops = 0;
    while (parts.length > 0) {
      const c = parts.shift()!;
      if (c === "..") {
        done.pop();
        continue;
      }
      const cur = joinPath(done.join("/"), c);
      const e = this.at(cur);
      if (e?.type === "symlink" && (parts.length > 0 || followLast)) {
        if (++hops > MAX_HOPS) return undefined;
        const target = e.linkname!;
        if (target.startsWith("/")) done.length = 0;
        parts.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
        continue;
      }
      if (parts.length > 0 && (!e || e.type !== "dir")) return undefined;
      done.push(c);
    }
    return done.join("/");
  }

  lstat(path: string, cwd = ""): FsEntry | undefined {
    const real = this.resolve(path, false, cwd);
    return real === undefined ? undefined : this.at(real);
  }

  stat(path: string, cwd = ""): FsEntry | undefined {
    const real = this.resolve(path, true, cwd);
    if (real === undefined) return undefined;
    const e = this.at(real);
    if (e?.type === "hardlink" && e.linkname !== undefined) return this.at(e.linkname);
    return e;
  }

  realpath(path: string, cwd = ""): string | undefined {
    const real = this.resolve(path, true, cwd);
    return real !== undefined && this.at(real) ? real : undefined;
  }

  async readFile(path: string, cwd = ""): Promise<Buffer> {
    const e = this.stat(path, cwd);
    if (!e || e.type !== "file" || !e.content) throw new FsError(`${path}: No such file`);
    return readContent(e.content);
  }

  readdir(path: string, cwd = ""): string[] {
    const real = this.resolve(path, true, cwd);
    if (real === undefined) return [];
    const e = this.at(real);
    if (!e || e.type !== "dir") return [];
    const names = new Set<string>();
    const fromBase = this.isRemoved(real) ? [] : this.base.readdir(real);
    for (const n of fromBase) if (this.at(joinPath(real, n))) names.add(n);
    for (const n of this.added.get(real) ?? []) if (this.at(joinPath(real, n))) names.add(n);
    return [...names].sort(compareBytes);
  }

  // ---- writing ----------------------------------------------------------------------------

  /** Sets the entry at a real path (its parent must exist as a directory). */
  put(entry: FsEntry): void {
    const parent = parentOf(entry.path);
    const p = this.at(parent);
    if (!p || p.type !== "dir") throw new FsError(`/${parent}: not a directory`);
    this.changed.set(entry.path, entry);
    let kids = this.added.get(parent);
    if (!kids) this.added.set(parent, (kids = new Set()));
    kids.add(baseName(entry.path));
  }

  /** Removes the node at a real path and everything under it. */
  remove(real: string): void {
    if (real === "") throw new KilnError("buildFailed", "a maintainer script may not remove the root directory");
    for (const k of [...this.changed.keys()]) if (k === real || k.startsWith(`${real}/`)) this.changed.delete(k);
    if (!this.isRemoved(real) && this.base.lstat(real)) this.removed.add(real);
  }

  /** A regular file with these bytes at a real path. */
  writeFile(real: string, data: Buffer | string, mode: number, uid: number, gid: number): void {
    this.put({ path: real, type: "file", mode, uid, gid, content: bufferContent(data) });
  }

  // ---- the result -------------------------------------------------------------------------

  /** What changed: entries (parents first) and removed paths, as a fix-up result. */
  result(): { entries: FsEntry[]; remove?: string[] } {
    const entries = [...this.changed.values()].sort((a, b) => depth(a.path) - depth(b.path) || compareBytes(a.path, b.path));
    // Removals are applied before entries: a path removed then made again loses what was under it.
    const remove = [...this.removed].sort(compareBytes);
    return remove.length > 0 ? { entries, remove } : { entries };
  }
}

function depth(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/** All the bytes of a content reference. */
export async function readContent(content: ContentRef): Promise<Buffer> {
  if (content.readSync) {
    const b = content.readSync();
    if (b) return b;
  }
  if (content.read) return content.read();
  const chunks: Buffer[] = [];
  for await (const c of content.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
