/**
 * A RootfsView over a real directory, and the reverse: writing a fix-up's result into one. This
 * lets the fix-ups be tested against packages extracted with `dpkg-deb` and their output be read
 * by the real tools (dpkg-query, dpkg --verify, ldconfig, chroot) — independently of Kiln's own
 * virtual filesystem.
 */
import { createReadStream, createWriteStream, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, chmodSync, chownSync, type Stats } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import path from "node:path";
import type { Fixup, FixupContext, FsEntry, InstalledPackage, NodeType, RootfsView } from "../../../src/rootfs/types.js";

function typeOf(st: Stats): NodeType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  return "fifo";
}

/** Read access to a directory as if it were the root of an image. */
export class DirView implements RootfsView {
  constructor(readonly root: string) {}

  private abs(p: string): string {
    return p === "" ? this.root : path.join(this.root, p);
  }

  lstat(p: string): FsEntry | undefined {
    const abs = this.abs(p);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return undefined;
    const type = typeOf(st);
    const e: FsEntry = { path: p, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (type === "symlink") e.linkname = readlinkSync(abs);
    if (type === "file") e.content = { size: st.size, open: () => createReadStream(abs) };
    return e;
  }

  stat(p: string): FsEntry | undefined {
    const real = this.realpath(p);
    return real === undefined ? undefined : real === "" ? { path: "", type: "dir", mode: 0o755, uid: 0, gid: 0 } : this.lstat(real);
  }

  /** Resolves symlinks component by component, never leaving the root (like chroot_canon). */
  realpath(p: string): string | undefined {
    const todo = p.split("/").filter((c) => c !== "" && c !== ".");
    const cur: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === "..") {
        cur.pop();
        continue;
      }
      const candidate = [...cur, c].join("/");
      const st = lstatSync(this.abs(candidate), { throwIfNoEntry: false });
      if (!st) return undefined;
      if (st.isSymbolicLink()) {
        if (++links > 40) return undefined;
        const target = readlinkSync(this.abs(candidate));
        if (target.startsWith("/")) cur.length = 0;
        todo.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
        continue;
      }
      if (todo.length > 0 && !st.isDirectory()) return undefined;
      cur.push(c);
    }
    return cur.join("/");
  }

  async readFile(p: string): Promise<Buffer> {
    const real = this.realpath(p);
    const e = real === undefined ? undefined : this.lstat(real);
    if (!e || e.type !== "file") throw new Error(`${p} is not a regular file`);
    return readFileSync(this.abs(real!));
  }

  readdir(p: string): string[] {
    const real = this.realpath(p);
    if (real === undefined) return [];
    const st = lstatSync(this.abs(real), { throwIfNoEntry: false });
    if (!st?.isDirectory()) return [];
    return readdirSync(this.abs(real)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }
}

/**
 * Writes a fix-up result into the directory: removals first, then entries in order (a symlink or
 * file replaces whatever was at its path). Refuses paths that are not normalised.
 */
export async function applyResult(root: string, result: { entries: FsEntry[]; remove?: string[] }): Promise<void> {
  const abs = (p: string): string => {
    if (p === "" || p.startsWith("/") || p.split("/").some((c) => c === ".." || c === "." || c === "")) throw new Error(`bad entry path ${JSON.stringify(p)}`);
    return path.join(root, p);
  };
  // A moved node's content may live at a removed path (like Kiln's content store, the bytes
  // must outlive the node): read every file entry before removing anything.
  const bytes = new Map<FsEntry, Buffer>();
  for (const e of result.entries) {
    if (e.type !== "file") continue;
    const chunks: Buffer[] = [];
    for await (const c of e.content!.open()) chunks.push(c as Buffer);
    bytes.set(e, Buffer.concat(chunks));
  }
  for (const p of result.remove ?? []) rmSync(abs(p), { recursive: true, force: true });
  for (const e of result.entries) {
    const a = abs(e.path);
    mkdirSync(path.dirname(a), { recursive: true });
    const cur = lstatSync(a, { throwIfNoEntry: false });
    if (e.type === "dir") {
      if (cur && !cur.isDirectory()) rmSync(a, { recursive: true, force: true });
      if (!cur || !cur.isDirectory()) mkdirSync(a);
      chownSync(a, e.uid, e.gid);
      chmodSync(a, e.mode);
    } else if (e.type === "symlink") {
      if (cur) rmSync(a, { recursive: true, force: true });
      symlinkSync(e.linkname!, a);
      lchownSync(a, e.uid, e.gid);
    } else if (e.type === "file") {
      if (cur) rmSync(a, { recursive: true, force: true });
      await pipeline(Readable.from([bytes.get(e)!]), createWriteStream(a));
      chownSync(a, e.uid, e.gid);
      chmodSync(a, e.mode);
    } else {
      throw new Error(`test adapter cannot write ${e.type} ${e.path}`);
    }
  }
}

/** Runs fix-ups in order over the directory, each seeing the previous ones' output. */
export async function runFixups(root: string, fixups: readonly Fixup[], ctx: Omit<FixupContext, "fs">): Promise<Map<string, { entries: FsEntry[]; remove?: string[] }>> {
  const results = new Map<string, { entries: FsEntry[]; remove?: string[] }>();
  for (const f of fixups) {
    const result = await f.apply({ ...ctx, fs: new DirView(root) });
    results.set(f.name, result);
    await applyResult(root, result);
  }
  return results;
}

/** Reads a fix-up entry's content (awaiting the whole stream). */
export async function entryBytes(e: FsEntry | undefined): Promise<Buffer> {
  if (!e?.content) throw new Error(`no content for ${e?.path}`);
  const chunks: Buffer[] = [];
  for await (const c of e.content.open()) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  if (all.length !== e.content.size) throw new Error(`${e.path}: stream gave ${all.length} bytes, size says ${e.content.size}`);
  return all;
}

/** Reads a fix-up entry's content as text. */
export async function entryText(e: FsEntry | undefined): Promise<string> {
  return (await entryBytes(e)).toString("utf8");
}

/** Context fields for synthetic tests. */
export function syntheticContext(packages: InstalledPackage[] = [], clock = new Date(Date.UTC(2024, 0, 2, 3, 4, 5))): Omit<FixupContext, "fs"> {
  return { packages, arch: "amd64", clock };
}
