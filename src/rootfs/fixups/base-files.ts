/**
 * What base-files' postinst does at first configuration (bookworm 12.4), and the few files
 * debootstrap itself writes into every new system.
 *
 * base-files postinst, `configure` with no previous version:
 * - copies the defaults `/usr/share/base-files/{dot.profile,dot.bashrc,profile,motd}` to
 *   `/root/.profile`, `/root/.bashrc`, `/etc/profile`, `/etc/motd` unless present (`cp -p`:
 *   mode and owner of the source);
 * - creates `/mnt /srv /opt /etc/opt /var/opt /media` (0755 root), `/var/mail` (2775 root:mail),
 *   `/run/lock` (1777), the link `/var/spool/mail -> ../mail`;
 * - turns `/var/run` into `-> /run` and `/var/lock` into `-> /run/lock` (the package ships them
 *   as directories; content a package put there moves along, as it would have landed in `/run`
 *   had the link existed when that package was unpacked);
 * - creates `/usr/local/{,share,share/man,bin,games,lib,include,sbin,src,etc}` (root:staff 2775
 *   only if `/etc/staff-group-for-usr-local` exists, else plain 0755) and
 *   `/usr/local/man -> share/man`;
 * - creates `/var/log/wtmp` (0664 root:utmp), `/var/log/btmp` (0660 root:utmp),
 *   `/var/log/lastlog` (0664 root:utmp), empty;
 * - copies `info.dir` to `/usr/share/info/dir` (0644) when `/usr/share/info` exists;
 * - links `/etc/dpkg/origins/default -> debian`.
 *
 * debootstrap's own steps kept here: `/tmp` with mode 1777 (always), and for a base system
 * `/etc/fstab` ("# UNCONFIGURED FSTAB FOR BASE SYSTEM") and, with apt, `/var/lib/dpkg/cmethopt`
 * ("apt apt", the dselect access method).
 * Group ids (mail, utmp, staff) come from `/etc/group`, so this runs after the accounts fix-up.
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import { moveTree } from "./merged-usr.js";
import { controlText } from "./options.js";
import { EntrySet, readText, regularFile } from "./tree.js";

/** Looks a group up in the tree's /etc/group (falling back to base-passwd's master file). */
export async function groupId(fs: RootfsView, name: string): Promise<number | undefined> {
  for (const file of ["etc/group", "usr/share/base-passwd/group.master"]) {
    const text = await readText(fs, file);
    if (text === undefined) continue;
    for (const line of text.split("\n")) {
      const f = line.split(":");
      if (f[0] === name && f.length >= 3 && /^[0-9]+$/.test(f[2]!)) return Number(f[2]);
    }
  }
  return undefined;
}

const FROM_DEFAULTS: ReadonlyArray<[string, string]> = [
  ["dot.profile", "root/.profile"],
  ["dot.bashrc", "root/.bashrc"],
  ["profile", "etc/profile"],
  ["motd", "etc/motd"],
];

const LOCAL_DIRS = ["usr/local", "usr/local/share", "usr/local/share/man", "usr/local/bin", "usr/local/games", "usr/local/lib", "usr/local/include", "usr/local/sbin", "usr/local/src", "usr/local/etc"];

/** Replaces a directory by a symlink (base-files' `migrate_directory`), moving its content. */
function migrateDirectory(ctx: FixupContext, set: EntrySet, dir: string, target: string): void {
  const cur = ctx.fs.lstat(dir);
  if (cur?.type === "symlink") return;
  if (cur?.type === "dir" && ctx.fs.readdir(dir).length > 0) moveTree(ctx.fs, set, dir, set.realDir(target.replace(/^\//, "")));
  set.symlink(dir, target);
}

/** The base-files (and debootstrap skeleton) fix-up. */
export function baseFilesFixup(): Fixup {
  return {
    name: "base-files",
    replaces: "base-files postinst (first configure) and debootstrap's fstab, cmethopt and /tmp",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      const hasBaseFiles = ctx.packages.some((p) => p.pkg.name === "base-files") || fs.lstat("usr/share/base-files") !== undefined;

      // debootstrap: first_stage_install and setup_dselect_method, for a base system with apt.
      set.dir("tmp", 0o1777);
      if (ctx.packages.some((p) => p.pkg.name === "apt")) set.file("var/lib/dpkg/cmethopt", "apt apt\n");

      if (hasBaseFiles) {
        if (!fs.lstat("etc/fstab")) set.file("etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n");
        if (!fs.lstat("etc/dpkg/origins/default") && fs.lstat("etc/dpkg/origins/debian")) set.symlink("etc/dpkg/origins/default", "debian");
        for (const [src, dest] of FROM_DEFAULTS) {
          const from = regularFile(fs, `usr/share/base-files/${src}`);
          if (!from || regularFile(fs, dest)) continue;
          set.add({ path: dest, type: "file", mode: from.mode, uid: from.uid, gid: from.gid, content: from.content! });
        }
        const mail = (await groupId(fs, "mail")) ?? 0;
        for (const [dir, mode, gid] of [
          ["mnt", 0o755, 0],
          ["srv", 0o755, 0],
          ["opt", 0o755, 0],
          ["etc/opt", 0o755, 0],
          ["var/opt", 0o755, 0],
          ["media", 0o755, 0],
          ["var/mail", 0o2775, mail],
        ] as const) {
          if (!fs.stat(dir)) set.dir(dir, mode, 0, gid);
        }
        if (fs.lstat("var/spool/mail")?.type !== "symlink") set.symlink("var/spool/mail", "../mail");
        if (!fs.stat("run/lock")) set.dir("run/lock", 0o1777);
        migrateDirectory(ctx, set, "var/run", "/run");
        migrateDirectory(ctx, set, "var/lock", "/run/lock");
        const staff = fs.lstat("etc/staff-group-for-usr-local") ? await groupId(fs, "staff") : undefined;
        // trixie's postinst adds /usr/local/libexec to bookworm's list.
        const base = ctx.packages.find((p) => p.pkg.name === "base-files");
        const libexec = ((base && controlText(base, "postinst")) ?? "").includes("install_local_dir /usr/local/libexec");
        for (const dir of libexec ? [...LOCAL_DIRS, "usr/local/libexec"] : LOCAL_DIRS) {
          if (staff !== undefined) set.dir(dir, 0o2775, 0, staff);
          else if (!fs.stat(dir)) set.dir(dir);
        }
        set.symlink("usr/local/man", "share/man");
        const utmp = (await groupId(fs, "utmp")) ?? 0;
        for (const [file, mode] of [
          ["var/log/wtmp", 0o664],
          ["var/log/btmp", 0o660],
          ["var/log/lastlog", 0o664],
        ] as const) {
          const cur = regularFile(fs, file);
          if (cur) set.add({ ...cur, path: file, uid: 0, gid: utmp, mode });
          else set.file(file, "", mode, 0, utmp);
        }
        const infoDir = regularFile(fs, "usr/share/base-files/info.dir");
        if (infoDir && fs.stat("usr/share/info")?.type === "dir" && !regularFile(fs, "usr/info/dir") && !regularFile(fs, "usr/share/info/dir")) {
          set.add({ path: "usr/share/info/dir", type: "file", mode: 0o644, uid: infoDir.uid, gid: infoDir.gid, content: infoDir.content! });
        }
      }
      return set.result();
    },
  };
}
