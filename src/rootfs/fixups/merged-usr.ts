/**
 * The merged-/usr layout of bookworm: `/bin`, `/sbin`, `/lib` and the multilib directories are
 * symlinks into `/usr`.
 *
 * Replaces: debootstrap's `merge_usr` (bookworm installs `usr-is-merged`, whose preinst refuses
 * an unmerged system) and libc6's preinst, which creates `lib64 -> usr/lib64` on amd64 when `/lib`
 * is already a link.
 *
 * Kiln's unpacker already stores a package's `/bin/x` as `usr/bin/x`; this fix-up guarantees the
 * links exist in the exact form debootstrap writes (relative: `bin -> usr/bin`). `bin`, `sbin`
 * and `lib` always; `lib32`/`lib64`/`libx32`/`libo32` when something lives there (`usr/lib64`
 * is not empty), and `lib64` always on amd64 (the ELF interpreter path `/lib64/ld-linux-x86-64.so.2`).
 * An alias nothing uses is removed with its empty `/usr` directory (the unpacker makes every
 * alias up front), as debootstrap's and mmdebstrap's bookworm trees have none.
 * A real directory found at an alias (a tree built without aliasing) is merged into `/usr` the way
 * `merge_usr` does it — its content moves under `usr/`, a clash with a different node is an
 * error — and then replaced by the link.
 */
import { KilnError } from "../../domain/errors.js";
import type { FsEntry, Fixup, FixupContext, RootfsView } from "../types.js";
import { EntrySet, joinPath, walkTree } from "./tree.js";

const ALWAYS = ["bin", "sbin", "lib"];
const MULTILIB = ["lib32", "lib64", "libx32", "libo32"];

/**
 * Moves everything under `from` to `to` (a directory that exists or is created), as entries of
 * `set`, and removes `from`'s children. Directories merge; any other clash is an error.
 */
export function moveTree(fs: RootfsView, set: EntrySet, from: string, to: string): void {
  for (const e of walkTree(fs, from)) {
    const rel = e.path.slice(from.length + 1);
    const dest = joinPath(to, rel);
    const there = fs.lstat(dest);
    if (there) {
      if (there.type === "dir" && e.type === "dir") continue;
      if (sameNode(there, e)) continue;
      throw new KilnError("buildFailed", `cannot merge /${from} into /${to}: /${e.path} and /${dest} both exist`);
    }
    const moved: FsEntry = { ...e, path: dest };
    if (e.type === "hardlink" && e.linkname && (e.linkname === from || e.linkname.startsWith(`${from}/`))) {
      moved.linkname = joinPath(to, e.linkname.slice(from.length + 1));
    }
    set.add(moved);
  }
  for (const name of fs.readdir(from)) set.remove(joinPath(from, name));
}

function sameNode(a: FsEntry, b: FsEntry): boolean {
  return a.type === "symlink" && b.type === "symlink" && a.linkname === b.linkname;
}

/** The merged-/usr fix-up. */
export function mergedUsrFixup(): Fixup {
  return {
    name: "merged-usr",
    replaces: "debootstrap merge_usr and libc6 preinst (lib64 link)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      const wanted = [...ALWAYS];
      for (const d of MULTILIB) {
        const usr = ctx.fs.lstat(`usr/${d}`);
        const top = ctx.fs.lstat(d);
        const used = (usr?.type === "dir" && ctx.fs.readdir(`usr/${d}`).length > 0) || (top !== undefined && top.type !== "symlink");
        if (used || (d === "lib64" && ctx.arch === "amd64")) wanted.push(d);
        else if (top?.type === "symlink" && top.linkname === `usr/${d}` && usr?.type === "dir") {
          set.remove(d);
          set.remove(`usr/${d}`);
        }
      }
      for (const d of wanted) {
        const target = `usr/${d}`;
        const cur = ctx.fs.lstat(d);
        if (cur?.type === "symlink" && cur.linkname === target) continue;
        if (cur && cur.type !== "symlink" && cur.type !== "dir") {
          throw new KilnError("buildFailed", `/${d} is a ${cur.type}, not a directory or a link to /${target}`);
        }
        if (cur?.type === "symlink" && ctx.fs.realpath(d) !== target) {
          throw new KilnError("buildFailed", `/${d} links to ${cur.linkname}, not to /${target}`);
        }
        const usr = ctx.fs.lstat(target);
        if (!usr) set.dir(target);
        else if (usr.type !== "dir") throw new KilnError("buildFailed", `/${target} is a ${usr.type}, not a directory`);
        if (cur?.type === "dir") moveTree(ctx.fs, set, d, target);
        set.add({ path: d, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: target });
      }
      return set.result();
    },
  };
}
