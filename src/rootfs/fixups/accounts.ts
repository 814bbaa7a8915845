/**
 * The system accounts: `/etc/passwd`, `/etc/group`, `/etc/shadow`, `/etc/gshadow`.
 *
 * Replaces, in the order dpkg runs them at first install:
 * 1. base-passwd's preinst/postinst: `/etc/passwd` and `/etc/group` are copies of
 *    `/usr/share/base-passwd/{passwd,group}.master` when absent (update-passwd only runs on
 *    upgrades). Without them nothing can resolve `root`.
 * 2. passwd's postinst `shadowconfig on`, in the form its `DPKG_ROOT` branch documents as
 *    bit-identical to `pwconv`/`grpconv` on unchanged master files: every `name:*:` becomes
 *    `name:x:` in passwd and group; `/etc/shadow` gets `name:*:<lastchg>:0:99999:7:::` (a locked
 *    password, `lastchg` = days since the epoch of the build clock, never today's date, so the
 *    image is reproducible) and `/etc/gshadow` `name:*::`. Both 0640 root:shadow; passwd and group
 *    0644 root:root. passwd's `groupadd -g 42 shadow` is a no-op: base-passwd has `shadow:42`.
 *
 * An `/etc/passwd` already in the tree (from a package or the user) is left alone, as base-passwd
 * would. Without the passwd package (no `shadowconfig`) no shadow files are made. Skipped: the
 * `passwd-`/`group-` backups and `.pwd.lock` that the shadow tools leave behind.
 *
 * Without base-passwd (a `--profile none` image) nothing would define `root`, and `getpwuid(0)`
 * would fail in every program that asks who it runs as. Such an image gets the accounts
 * distroless images have: `root` (0) and `nonroot` (65532, the uid distroless and Chainguard
 * images run as), with homes `/root` and `/home/nonroot` (0700, owned by them), the shell
 * `/sbin/nologin` (there may be no shell at all), and locked shadow entries.
 *
 * Accounts other packages create in their scripts (`adduser --system`, `useradd -r`, ...) are
 * made by the maintainer-scripts fix-up, which runs after this one (script/accounts-tools.ts).
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import { controlText } from "./options.js";
import { EntrySet, readText } from "./tree.js";
import { groupId } from "./base-files.js";

/** `name:*:` → `name:x:` on every line (shadowconfig's `sed 's/^\([^:]\+\):\*:/\1:x:/'`). */
function markShadowed(text: string): string {
  return text.replace(/^([^:\n]+):\*:/gm, "$1:x:");
}

function names(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.replace(/:.*$/, ""));
}

/** Days since the epoch for shadow's `lastchg` (`epoch/60/60/24` in shadowconfig). */
export function shadowDay(clock: Date): number {
  return Math.floor(Math.floor(clock.getTime() / 1000) / 86400);
}

/** `/etc/shadow` for these passwd lines. */
export function shadowFor(passwd: string, clock: Date): string {
  return names(passwd)
    .map((n) => `${n}:*:${shadowDay(clock)}:0:99999:7:::\n`)
    .join("");
}

/** `/etc/gshadow` for these group lines. */
export function gshadowFor(group: string): string {
  return names(group)
    .map((n) => `${n}:*::\n`)
    .join("");
}

/** The uid and gid of the unprivileged account of an image without base-passwd. */
export const NONROOT_ID = 65532;

const DISTROLESS_PASSWD = `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_ID}:${NONROOT_ID}:nonroot:/home/nonroot:/sbin/nologin\n`;
const DISTROLESS_GROUP = `root:x:0:\nnonroot:x:${NONROOT_ID}:\n`;

/** The account files of an image without base-passwd (see the module comment). */
function distrolessAccounts(set: EntrySet, fs: RootfsView, clock: Date): void {
  set.file("etc/passwd", DISTROLESS_PASSWD);
  set.file("etc/group", DISTROLESS_GROUP);
  set.file("etc/shadow", shadowFor(DISTROLESS_PASSWD, clock), 0o640);
  set.file("etc/gshadow", gshadowFor(DISTROLESS_GROUP), 0o640);
  if (!fs.lstat("root")) set.dir("root", 0o700);
  if (!fs.lstat("home/nonroot")) {
    if (!fs.lstat("home")) set.dir("home");
    set.dir("home/nonroot", 0o700, NONROOT_ID, NONROOT_ID);
  }
}

async function hasShadowTools(ctx: FixupContext, fs: RootfsView): Promise<boolean> {
  return ctx.packages.some((p) => p.pkg.name === "passwd") || fs.stat("usr/sbin/shadowconfig") !== undefined;
}

/** The accounts fix-up. */
export function accountsFixup(): Fixup {
  return {
    name: "accounts",
    replaces: "base-passwd preinst/postinst (first install) and passwd postinst (shadowconfig on); root and nonroot without base-passwd",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      // trixie's base-passwd postinst creates empty /etc/subuid and /etc/subgid (bookworm's login did).
      const basePasswd = ctx.packages.find((p) => p.pkg.name === "base-passwd");
      const subIds = ((basePasswd && controlText(basePasswd, "postinst")) ?? "").includes('touch "$DPKG_ROOT/etc/subuid"');
      for (const f of subIds ? ["etc/subuid", "etc/subgid"] : []) if (!fs.lstat(f)) set.file(f, "", 0o644);
      const passwdMaster = await readText(fs, "usr/share/base-passwd/passwd.master");
      const groupMaster = await readText(fs, "usr/share/base-passwd/group.master");
      if (!fs.lstat("etc/passwd") && !fs.lstat("etc/group") && passwdMaster !== undefined && groupMaster !== undefined) {
        if (!(await hasShadowTools(ctx, fs))) {
          set.file("etc/passwd", passwdMaster);
          set.file("etc/group", groupMaster);
        } else {
          const written = { passwd: markShadowed(passwdMaster), group: markShadowed(groupMaster) };
          set.file("etc/passwd", written.passwd);
          set.file("etc/group", written.group);
          const shadowGid = /^shadow:[^:]*:([0-9]+):/m.exec(written.group)?.[1];
          const gid = shadowGid !== undefined ? Number(shadowGid) : ((await groupId(fs, "shadow")) ?? 42);
          set.file("etc/shadow", shadowFor(written.passwd, ctx.clock), 0o640, 0, gid);
          set.file("etc/gshadow", gshadowFor(written.group), 0o640, 0, gid);
        }
      } else if (!fs.lstat("etc/passwd") && !fs.lstat("etc/group") && passwdMaster === undefined && !ctx.packages.some((p) => p.pkg.name === "base-passwd")) {
        distrolessAccounts(set, fs, ctx.clock);
      }
      return set.result();
    },
  };
}
