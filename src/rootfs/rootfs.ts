/**
 * The virtual filesystem packages are unpacked into: metadata for every node in memory, file
 * bytes left on disk (a {@link ContentRef} per file). Nothing is ever written to the host's tree,
 * so no archive can reach outside it; the rules below still refuse what would escape an install
 * root, so the same packages stay safe for anyone who unpacks them for real.
 *
 * How it mirrors dpkg (src/archives.c, `tarobject`):
 * - A directory that already exists (or a symlink that leads to one) is kept as it is: the first
 *   package's mode and owner stay, later packages only list it. dpkg does the same (it returns
 *   early for an existing directory), and debootstrap's merged-/usr links are treated this way.
 * - A symlink shipped where a directory exists keeps the directory (dpkg's "symlink exists as
 *   directory"); any other non-directory over a directory, and a directory over a non-directory,
 *   fail the install.
 * - A file or link shipped by a later package replaces an earlier package's one when the later
 *   one `Replaces` the earlier (with its version relation satisfied by the installed version); the
 *   path then leaves the earlier package's file list, as dpkg drops it from its `.list`. When the
 *   *installed* package `Replaces` the newcomer instead, the installed file stays and the newcomer
 *   does not list it. Without `Replaces`, dpkg refuses ("trying to overwrite ...") unless forced.
 *   Kiln refuses too by default (`fileConflicts: "refuse"`): packages from bundles are the
 *   untrusted input, while Debian's own archive does not need forcing. `"overwrite"` behaves like
 *   `--force-overwrite`: the later package wins and a warning is recorded.
 * - Paths are resolved through symlinks already in the tree, like the kernel would during a real
 *   unpack, except that writing through a symlink that climbs above the root (`../../..`) or
 *   leads to the root itself (`/`, `/.`, `.`) is refused.
 */
import { KilnError } from "../domain/errors.js";
import { satisfiesVersion } from "../debian/version.js";
import type { BinaryPackage } from "../debian/types.js";
import { baseName, joinPath, listPath, normaliseArchivePath, normaliseViewPath, parentPath, UnsafePathError } from "./paths.js";
import type { ContentRef, FsEntry, InstalledPackage, NodeType, RootfsView } from "./types.js";
import type { UnpackedPackage } from "./unpack.js";

/** The top-level directories Debian 12 keeps under `/usr` (merged /usr). */
export const MERGED_USR_DIRS: readonly string[] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/** Owner of nodes the tree makes itself (the merged-/usr links and their target directories). */
export const ROOTFS_OWNER = "<rootfs>";

/** Owner of nodes a fix-up wrote. */
export function fixupOwner(name: string): string {
  return `<fixup:${name}>`;
}

export interface RootfsOptions {
  /**
   * Top-level directories that live under `usr/` (pass {@link MERGED_USR_DIRS} for bookworm and
   * later; a distribution without merged /usr passes nothing). Package entries under them are
   * stored under `usr/`, and the tree holds `bin -> usr/bin` style links from the start, as
   * debootstrap makes them.
   */
  usrMerge?: readonly string[];
  /** What a file shipped by two packages without `Replaces` does; see the module comment. */
  fileConflicts?: "refuse" | "overwrite";
}

interface Node {
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  content?: ContentRef;
  xattrs?: Readonly<Record<string, Buffer>>;
  /** Package name, {@link ROOTFS_OWNER} or `<fixup:name>`. */
  owner: string;
  /** The owner package's `.list` path for it (`/bin/bash` for `usr/bin/bash`). */
  listed?: string;
  /** Directories: names of the children. */
  children?: Set<string>;
}

interface PackageRecord {
  pkg: BinaryPackage;
  controlFiles: ReadonlyMap<string, Buffer>;
  /** `.list` paths in archive order. */
  files: string[];
  /** `.list` paths another package took over. */
  lost: Set<string>;
}

/** A path could not be resolved for writing; the message completes "entry <name> ...". */
class ResolveError extends Error {}

interface WalkContext {
  write: boolean;
  hops: number;
  /** Owner for missing parent directories (write mode outside symlink targets). */
  createOwner?: string;
}

const MAX_SYMLINK_HOPS = 40;

function describe(node: Node): string {
  return node.type === "dir" ? "directory" : node.type === "hardlink" ? "hard link" : node.type;
}

/** A tree of filesystem nodes assembled from packages and fix-ups. */
export class Rootfs implements RootfsView {
  private readonly nodes = new Map<string, Node>();
  /** Hard link target → the links to it. */
  private readonly hardlinks = new Map<string, Set<string>>();
  private readonly records: PackageRecord[] = [];
  private readonly byName = new Map<string, PackageRecord>();
  private readonly aliases: ReadonlySet<string>;
  private readonly conflictPolicy: "refuse" | "overwrite";
  private journal: Array<() => void> | undefined;
  /** File conflicts let through under `fileConflicts: "overwrite"`. */
  readonly warnings: string[] = [];

  constructor(options: RootfsOptions = {}) {
    this.aliases = new Set(options.usrMerge ?? []);
    this.conflictPolicy = options.fileConflicts ?? "refuse";
    this.nodes.set("", { type: "dir", mode: 0o755, uid: 0, gid: 0, owner: ROOTFS_OWNER, children: new Set() });
    for (const dir of this.aliases) {
      if (!/^[^/]+$/.test(dir) || dir === "usr" || dir === "." || dir === "..") throw new Error(`"${dir}" cannot be a merged-/usr directory`);
      const dirNode = (): Node => ({ type: "dir", mode: 0o755, uid: 0, gid: 0, owner: ROOTFS_OWNER, children: new Set() });
      if (!this.nodes.has("usr")) this.rawSet("usr", dirNode());
      this.rawSet(`usr/${dir}`, dirNode());
      this.rawSet(dir, { type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: `usr/${dir}`, owner: ROOTFS_OWNER });
    }
  }

  // ---- reading (RootfsView) -------------------------------------------------------------

  lstat(path: string): FsEntry | undefined {
    const real = this.lookup(path, false);
    const node = real === undefined ? undefined : this.nodes.get(real);
    return node && toEntry(real!, node);
  }

  /** Follows symlinks, and hard links to the file they share (the entry keeps the link's path). */
  stat(path: string): FsEntry | undefined {
    const real = this.lookup(path, true);
    if (real === undefined) return undefined;
    let node = this.nodes.get(real);
    if (node?.type === "hardlink") node = this.nodes.get(node.linkname!);
    return node && toEntry(real, node);
  }

  realpath(path: string): string | undefined {
    const real = this.lookup(path, true);
    return real !== undefined && this.nodes.has(real) ? real : undefined;
  }

  async readFile(path: string): Promise<Buffer> {
    const entry = this.stat(path);
    if (!entry) throw new KilnError("notFound", `rootfs: ${path} does not exist`);
    if (entry.type !== "file" || !entry.content) throw new KilnError("internal", `rootfs: ${path} is a ${entry.type}, not a regular file`);
    const chunks: Buffer[] = [];
    for await (const chunk of entry.content.open()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Sorted names in a directory (following symlinks); `[]` when it does not exist. */
  readdir(path: string): string[] {
    const real = this.lookup(path, true);
    const node = real === undefined ? undefined : this.nodes.get(real);
    if (!node) return [];
    if (node.type !== "dir") throw new KilnError("internal", `rootfs: ${path} is a ${describe(node)}, not a directory`);
    return [...node.children!].sort();
  }

  /** Who wrote the node at `path` (not following a final symlink): a package name, `<fixup:…>` or {@link ROOTFS_OWNER}. */
  owner(path: string): string | undefined {
    const real = this.lookup(path, false);
    return real === undefined ? undefined : this.nodes.get(real)?.owner;
  }

  /**
   * Every node (the root excepted) whose owner passes `filter`, plus the directories above them
   * with their metadata (a layer needs its files' parents), sorted by path so parents come first.
   * Hard links always share their target's owner, so a layer holding a link holds its target.
   */
  entries(filter?: (owner: string) => boolean): FsEntry[] {
    const selected = new Set<string>();
    for (const [p, node] of this.nodes) {
      if (p === "" || (filter && !filter(node.owner))) continue;
      for (let q = p; q !== "" && !selected.has(q); q = parentPath(q)) selected.add(q);
    }
    return [...selected].sort().map((p) => toEntry(p, this.nodes.get(p)!));
  }

  /** The packages recorded so far, in install order, with their current file lists. */
  installedPackages(): InstalledPackage[] {
    return this.records.map((r) => ({
      pkg: r.pkg,
      controlFiles: r.controlFiles,
      files: r.lost.size === 0 ? [...r.files] : r.files.filter((f) => !r.lost.has(f)),
    }));
  }

  /** Number of nodes, the root excepted. */
  get size(): number {
    return this.nodes.size - 1;
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * Records an unpacked package into the tree, all or nothing: on any refusal the tree is left
   * exactly as before.
   *
   * @throws KilnError `unsafeArchive` for an entry that would escape the root or replace it,
   *   `buildFailed` for a file conflict or a directory/non-directory clash.
   */
  install(unpacked: UnpackedPackage, pkg: BinaryPackage): InstalledPackage {
    if (this.byName.has(pkg.name)) throw new KilnError("buildFailed", `${pkg.name} is unpacked twice`);
    const record: PackageRecord = { pkg, controlFiles: unpacked.controlFiles, files: [], lost: new Set() };
    const listed = new Set<string>();
    const realOf = new Map<string, string>();
    this.transaction(() => {
      unpacked.entries.forEach((e, i) => {
        const list = listPath(e.path);
        const keep = this.installEntry(record, unpacked, i, realOf);
        if (keep && !listed.has(list)) {
          listed.add(list);
          record.files.push(list);
        }
      });
    });
    this.records.push(record);
    this.byName.set(pkg.name, record);
    return { pkg, controlFiles: record.controlFiles, files: [...record.files] };
  }

  /**
   * Adds or replaces one node for `owner` (a fix-up, or a caller assembling a tree by hand).
   * Parents are resolved through symlinks and created as `0755 root:root` directories when
   * missing. A directory over a directory changes its metadata and keeps its children; a
   * non-directory may replace only an empty directory. A hard link to another owner's file is
   * stored as a copy (same content), so a layer never holds a link without its target.
   */
  addEntry(entry: FsEntry, owner: string): void {
    let p: string;
    try {
      p = normaliseViewPath(entry.path);
    } catch (err) {
      throw new KilnError("internal", `${owner}: path ${JSON.stringify(entry.path)} ${(err as Error).message}`, { cause: err });
    }
    if (p === "") throw new KilnError("internal", `${owner}: cannot replace the root directory`);
    const parts = p.split("/");
    const ctx: WalkContext = { write: true, hops: 0, createOwner: owner };
    let parent: string;
    try {
      parent = this.resolveParent(parts, ctx);
    } catch (err) {
      if (err instanceof ResolveError) throw new KilnError("internal", `${owner}: ${p} ${err.message}`, { cause: err });
      throw err;
    }
    const real = joinPath(parent, parts[parts.length - 1]!);
    const existing = this.nodes.get(real);
    const node: Node = { type: entry.type, mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, owner };
    if (entry.xattrs && Object.keys(entry.xattrs).length > 0) node.xattrs = entry.xattrs;
    if (entry.type === "dir") {
      if (existing && existing.type !== "dir") throw new KilnError("internal", `${owner}: cannot replace the ${describe(existing)} ${real} with a directory`);
      this.rawSet(real, node);
      return;
    }
    if (existing?.type === "dir") {
      if (existing.children!.size > 0) throw new KilnError("internal", `${owner}: cannot replace the non-empty directory ${real} with a ${entry.type}`);
    }
    if (entry.type === "symlink") {
      if (!entry.linkname) throw new KilnError("internal", `${owner}: symlink ${p} has no target`);
      node.linkname = entry.linkname;
    } else if (entry.type === "hardlink") {
      const target = this.lookup(entry.linkname ?? "", false);
      let tnode = target === undefined ? undefined : this.nodes.get(target);
      let treal = target;
      if (tnode?.type === "hardlink") {
        treal = tnode.linkname!;
        tnode = this.nodes.get(treal);
      }
      if (!tnode || tnode.type !== "file" || treal === real) throw new KilnError("internal", `${owner}: hard link ${p} -> ${entry.linkname} does not lead to another regular file`);
      if (tnode.owner === owner) node.linkname = treal;
      else {
        node.type = "file";
        node.content = tnode.content;
      }
    } else if (entry.type === "file") {
      if (!entry.content) throw new KilnError("internal", `${owner}: file ${p} has no content`);
      node.content = entry.content;
    } else if (entry.type === "char" || entry.type === "block") {
      node.devmajor = entry.devmajor ?? 0;
      node.devminor = entry.devminor ?? 0;
    }
    this.replaceNode(real, node);
  }

  /**
   * Removes the node at `path` (not following a final symlink) and, for a directory, everything
   * under it. Returns false when there was nothing. Package file lists are not changed: like
   * dpkg's path exclusions, the package still shipped the path.
   */
  remove(path: string): boolean {
    const real = this.lookup(path, false);
    if (real === "") throw new KilnError("internal", "rootfs: cannot remove the root directory");
    if (real === undefined || !this.nodes.has(real)) return false;
    this.removeTree(real);
    return true;
  }

  /** Applies a fix-up's result (removals first, then entries) with owner `<fixup:name>`, all or nothing. */
  applyFixup(name: string, result: { entries: readonly FsEntry[]; remove?: readonly string[] }): void {
    this.transaction(() => {
      for (const p of result.remove ?? []) this.remove(p);
      for (const e of result.entries) this.addEntry(e, fixupOwner(name));
    });
  }

  // ---- internals -------------------------------------------------------------------------

  /** Runs `fn`; if it throws, every node change it made is undone. Nested calls join the outer one. */
  private transaction(fn: () => void): void {
    if (this.journal) return fn();
    const journal: Array<() => void> = [];
    this.journal = journal;
    try {
      fn();
    } catch (err) {
      this.journal = undefined;
      for (let i = journal.length - 1; i >= 0; i--) journal[i]!();
      throw err;
    } finally {
      this.journal = undefined;
    }
  }

  /**
   * The one place nodes change: keeps parents' child sets and the hard link index right, and
   * journals the previous state when inside a transaction.
   */
  private rawSet(path: string, node: Node | undefined): void {
    const prev = this.nodes.get(path);
    if (this.journal) this.journal.push(() => this.rawSet(path, prev));
    if (prev?.type === "hardlink") {
      const links = this.hardlinks.get(prev.linkname!);
      links?.delete(path);
      if (links?.size === 0) this.hardlinks.delete(prev.linkname!);
    }
    if (node?.type === "hardlink") {
      let links = this.hardlinks.get(node.linkname!);
      if (!links) this.hardlinks.set(node.linkname!, (links = new Set()));
      links.add(path);
    }
    if (node) {
      if (node.type === "dir") node.children = prev?.type === "dir" ? prev.children : (node.children ?? new Set());
      this.nodes.set(path, node);
      if (!prev) this.nodes.get(parentPath(path))!.children!.add(baseName(path));
    } else if (prev) {
      this.nodes.delete(path);
      this.nodes.get(parentPath(path))?.children?.delete(baseName(path));
    }
  }

  /**
   * Replaces (or creates) a non-directory node. Hard links to a file being replaced keep the
   * old bytes, as they would on disk: the first link becomes the file, the others point to it.
   */
  private replaceNode(real: string, node: Node): void {
    this.detachLinks(real);
    this.rawSet(real, node);
  }

  private detachLinks(target: string): void {
    const links = this.hardlinks.get(target);
    if (!links || links.size === 0) return;
    const old = this.nodes.get(target)!;
    const [heir, ...rest] = [...links].sort();
    const heirNode = this.nodes.get(heir!)!;
    this.rawSet(heir!, { ...heirNode, type: "file", linkname: undefined, content: old.content });
    for (const m of rest) this.rawSet(m, { ...this.nodes.get(m)!, linkname: heir! });
  }

  private removeTree(real: string): void {
    const node = this.nodes.get(real)!;
    if (node.type === "dir") for (const child of [...node.children!]) this.removeTree(joinPath(real, child));
    this.detachLinks(real);
    this.rawSet(real, undefined);
  }

  /**
   * Resolves `path` (a view path) to a real path, following symlinks in its directories and,
   * when `followLast`, at its end. Returns undefined when a directory on the way is missing;
   * the final node itself may not exist.
   */
  private lookup(path: string, followLast: boolean): string | undefined {
    let parts: string[];
    try {
      parts = path === "" ? [] : normaliseViewPath(path).split("/");
    } catch {
      return undefined;
    }
    if (parts.length === 1 && parts[0] === "") parts = [];
    try {
      return this.resolvePath("", parts, followLast, { write: false, hops: 0 });
    } catch (err) {
      if (err instanceof ResolveError) return undefined;
      throw err;
    }
  }

  /** Resolves `parts` from the real directory `start`; see {@link lookup}. */
  private resolvePath(start: string, parts: readonly string[], followLast: boolean, ctx: WalkContext): string | undefined {
    const clean = parts.filter((p) => p !== "" && p !== ".");
    if (clean.length === 0) return start;
    const last = clean.pop()!;
    const dir = this.resolveDir(start, clean, ctx);
    if (dir === undefined) return undefined;
    if (last === "..") {
      if (dir === "") {
        if (ctx.write) throw new ResolveError("climbs out of the root");
        return "";
      }
      return parentPath(dir);
    }
    const real = joinPath(dir, last);
    const node = this.nodes.get(real);
    if (followLast && node?.type === "symlink") {
      if (++ctx.hops > MAX_SYMLINK_HOPS) {
        if (ctx.write) throw new ResolveError(`meets a symlink loop at /${real}`);
        return undefined;
      }
      const target = node.linkname!;
      return this.resolvePath(target.startsWith("/") ? "" : dir, target.split("/"), true, { ...ctx, createOwner: undefined });
    }
    return real;
  }

  /**
   * Resolves directory components from `start`, following symlinks. In write mode a symlink
   * that climbs above the root or leads to the root itself is refused, and missing directories
   * are created for `ctx.createOwner` (but never inside a symlink's target).
   */
  private resolveDir(start: string, parts: readonly string[], ctx: WalkContext): string | undefined {
    let cur = start;
    for (const part of parts) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (cur === "") {
          if (ctx.write) throw new ResolveError("climbs out of the root");
          continue;
        }
        cur = parentPath(cur);
        continue;
      }
      const next = joinPath(cur, part);
      const node = this.nodes.get(next);
      if (!node) {
        if (ctx.createOwner !== undefined) {
          this.rawSet(next, { type: "dir", mode: 0o755, uid: 0, gid: 0, owner: ctx.createOwner, children: new Set() });
          cur = next;
          continue;
        }
        if (ctx.write) throw new ResolveError(`needs /${next}, which does not exist`);
        return undefined;
      }
      if (node.type === "dir") {
        cur = next;
        continue;
      }
      if (node.type === "symlink") {
        if (++ctx.hops > MAX_SYMLINK_HOPS) {
          if (ctx.write) throw new ResolveError(`meets a symlink loop at /${next}`);
          return undefined;
        }
        const target = node.linkname!;
        const sub = this.resolvePath(target.startsWith("/") ? "" : cur, target.split("/"), true, { ...ctx, createOwner: undefined, hops: ctx.hops });
        if (sub === undefined || (sub !== "" && this.nodes.get(sub)?.type !== "dir")) {
          if (ctx.write) throw new ResolveError(`goes through symlink /${next} -> ${target}, which does not lead to a directory`);
          return undefined;
        }
        if (sub === "" && ctx.write) throw new ResolveError(`goes through symlink /${next} -> ${target}, which leads to the root`);
        cur = sub;
        continue;
      }
      if (ctx.write) throw new ResolveError(`needs /${next} to be a directory, but it is a ${describe(node)}`);
      return undefined;
    }
    return cur;
  }

  /** The real directory that will hold the last of `parts`, for writing (throws {@link ResolveError}). */
  private resolveParent(parts: readonly string[], ctx: WalkContext): string {
    const dir = this.resolveDir("", parts.slice(0, -1), ctx);
    // Write mode creates or throws; undefined would be a bug in resolveDir.
    if (dir === undefined) throw new ResolveError("has a parent that cannot be resolved");
    return dir;
  }

  /** Whether the symlink at `real` leads (within the root, not to the root) to a directory. */
  private linksToDir(real: string): boolean {
    try {
      const sub = this.resolvePath(parentPath(real), [baseName(real)], true, { write: true, hops: 0 });
      return sub !== undefined && sub !== "" && this.nodes.get(sub)?.type === "dir";
    } catch (err) {
      if (err instanceof ResolveError) return false;
      throw err;
    }
  }

  /** Records one package entry; returns whether the package lists the path. */
  private installEntry(record: PackageRecord, unpacked: UnpackedPackage, index: number, realOf: Map<string, string>): boolean {
    const e = unpacked.entries[index]!;
    const name = record.pkg.name;
    const list = listPath(e.path);
    const unsafe = (why: string): KilnError => new KilnError("unsafeArchive", `${name}: entry ${JSON.stringify(list)} ${why}`);
    // Manifests are Kiln's own, but the same rules apply to every path that enters the tree.
    try {
      if (normaliseArchivePath(e.path) !== e.path) throw unsafe("is not a normalised path");
    } catch (err) {
      if (err instanceof UnsafePathError) throw unsafe(err.message);
      throw err;
    }
    if (e.path === "") {
      if (e.type !== "dir") throw unsafe("would replace the root directory");
      return true;
    }
    let parts = e.path.split("/");
    if (this.aliases.has(parts[0]!)) {
      if (parts.length === 1 && e.type === "symlink" && sameAliasLink(e.linkname!, parts[0]!)) return true;
      if (parts.length === 1 && e.type !== "dir") {
        throw new KilnError("buildFailed", `${name}: ships ${list} as a ${e.type}, but in this merged-/usr tree ${list} is a link to /usr${list}`);
      }
      parts = ["usr", ...parts];
    }
    let parent: string;
    try {
      parent = this.resolveParent(parts, { write: true, hops: 0, createOwner: name });
    } catch (err) {
      if (err instanceof ResolveError) throw unsafe(err.message);
      throw err;
    }
    const real = joinPath(parent, parts[parts.length - 1]!);
    realOf.set(e.path, real);
    const existing = this.nodes.get(real);

    if (e.type === "dir") {
      if (!existing) {
        this.rawSet(real, { type: "dir", mode: e.mode, uid: e.uid, gid: e.gid, owner: name, listed: list, children: new Set() });
        return true;
      }
      if (existing.type === "dir" || (existing.type === "symlink" && this.linksToDir(real))) return true;
      throw new KilnError("buildFailed", `${name}: trying to overwrite ${describe(existing)} '${list}'${this.ownedBy(existing)} with a directory`);
    }

    const node: Node = { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, owner: name, listed: list };
    if (e.type === "file") node.content = unpacked.content(index);
    else if (e.type === "symlink") node.linkname = e.linkname!;
    else if (e.type === "char" || e.type === "block") {
      node.devmajor = e.devmajor ?? 0;
      node.devminor = e.devminor ?? 0;
    } else if (e.type === "hardlink") {
      let target = realOf.get(e.linkname!);
      let tnode = target === undefined ? undefined : this.nodes.get(target);
      if (tnode?.type === "hardlink") {
        target = tnode.linkname!;
        tnode = this.nodes.get(target);
      }
      if (!tnode || tnode.type !== "file") throw unsafe(`is a hard link to /${e.linkname}, which is not a regular file of the package`);
      if (target === real) throw unsafe("is a hard link to itself");
      // The target may have stayed another package's (it Replaces this one): copy, don't link across owners.
      if (tnode.owner === name) node.linkname = target;
      else {
        node.type = "file";
        node.content = tnode.content;
      }
    }

    if (existing) {
      if (existing.type === "dir") {
        if (e.type === "symlink") return true;
        throw new KilnError("buildFailed", `${name}: trying to overwrite directory '${list}'${this.ownedBy(existing)} with nondirectory`);
      }
      if (!this.mayOverwrite(record, existing, list)) return false;
    }
    this.replaceNode(real, node);
    return true;
  }

  /** ` in package foo`, ` of <fixup:bar>`, or nothing for the tree's own nodes. */
  private ownedBy(node: Node): string {
    if (this.byName.has(node.owner)) return ` in package ${node.owner}`;
    return node.owner === ROOTFS_OWNER ? "" : ` of ${node.owner}`;
  }

  /**
   * Decides a file conflict with an installed package as dpkg does; returns false when the
   * installed file stays. Takes the path off the loser's list.
   */
  private mayOverwrite(record: PackageRecord, existing: Node, list: string): boolean {
    const other = this.byName.get(existing.owner);
    if (!other || other === record) return true;
    if (!replacesPackage(record.pkg, other.pkg)) {
      if (replacesPackage(other.pkg, record.pkg)) return false;
      const what = `'${list}', which is also in package ${other.pkg.name} ${other.pkg.version}`;
      if (this.conflictPolicy === "refuse") throw new KilnError("buildFailed", `${record.pkg.name}: trying to overwrite ${what} (no Replaces)`);
      this.warnings.push(`${record.pkg.name}: overwrote ${what} without Replaces`);
      this.journal?.push(() => this.warnings.pop());
    }
    const lost = existing.listed ?? list;
    if (!other.lost.has(lost)) {
      other.lost.add(lost);
      this.journal?.push(() => other.lost.delete(lost));
    }
    return true;
  }
}

/** Whether `pkg`'s Replaces names `installed` with a satisfied version relation (dpkg's `does_replace`). */
function replacesPackage(pkg: BinaryPackage, installed: BinaryPackage): boolean {
  return pkg.replaces.some((group) =>
    group.some((r) => r.name === installed.name && (r.op === undefined || satisfiesVersion(installed.version, r.op, r.version!))),
  );
}

/** `bin -> usr/bin` (or `/usr/bin`): a package shipping the merged-/usr link itself. */
function sameAliasLink(target: string, dir: string): boolean {
  return target.replace(/^\/+/, "").replace(/\/+$/, "") === `usr/${dir}`;
}

function toEntry(path: string, node: Node): FsEntry {
  const e: FsEntry = { path, type: node.type, mode: node.mode, uid: node.uid, gid: node.gid };
  if (node.linkname !== undefined) e.linkname = node.linkname;
  if (node.devmajor !== undefined) e.devmajor = node.devmajor;
  if (node.devminor !== undefined) e.devminor = node.devminor;
  if (node.content) e.content = node.content;
  if (node.xattrs) e.xattrs = node.xattrs;
  return e;
}
