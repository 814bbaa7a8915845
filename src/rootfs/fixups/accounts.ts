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
 * Accounts other packages create in their postinst (`adduser`, `addgroup`, `useradd`,
 * `groupadd`, `systemd-sysusers`) are not invented: uids would depend on install order and on
 * the running system. Each such call naming an account the files do not have is reported through
 * `warn` (apt's `_apt` and passwd's `shadow` are in base-passwd's master files, so minbase needs
 * none).
 */
import type { Fixup, FixupContext, InstalledPackage, RootfsView } from "../types.js";
import { controlText, postinstEnv, type FixupOptions } from "./options.js";
import { findCommands } from "./shell-words.js";
import { EntrySet, readText } from "./tree.js";
import { groupId } from "./base-files.js";

const ACCOUNT_TOOLS = ["adduser", "addgroup", "useradd", "groupadd", "systemd-sysusers"];

/** Options of adduser/addgroup/useradd/groupadd that take an argument. */
const OPTIONS_WITH_ARGUMENT = new Set([
  "--home", "--shell", "--uid", "--gid", "--ingroup", "--gecos", "--comment", "--firstuid", "--lastuid", "--firstgid", "--lastgid", "--conf", "--key", "--add_extra_groups",
  "-b", "-c", "-d", "-e", "-f", "-g", "-G", "-k", "-K", "-p", "-s", "-u", "-R", "-P", "-Z",
  "--base-dir", "--home-dir", "--expiredate", "--inactive", "--groups", "--skel", "--password", "--root", "--prefix", "--selinux-user", "--users",
]);

/** The account names a user/group creation command names (its non-option words). */
export function accountNames(words: readonly string[]): string[] {
  const out: string[] = [];
  let options = true;
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (options && w === "--") {
      options = false;
      continue;
    }
    if (options && w.startsWith("-")) {
      if (OPTIONS_WITH_ARGUMENT.has(w)) i++;
      continue;
    }
    out.push(w);
  }
  return out;
}

/** Reports account creations of postinst scripts that the account files do not satisfy. */
function reportAccountCreations(packages: readonly InstalledPackage[], known: Set<string>, warn: (m: string) => void): void {
  for (const p of packages) {
    const script = controlText(p, "postinst");
    if (!script || !ACCOUNT_TOOLS.some((t) => script.includes(t))) continue;
    const { commands, unresolved } = findCommands(script, ACCOUNT_TOOLS, postinstEnv(p));
    for (const u of unresolved) warn(`${p.pkg.name} postinst line ${u.line}: account creation not replayed (${u.reason}): ${u.text}`);
    for (const c of commands) {
      if (c.words[0] === "systemd-sysusers") {
        warn(`${p.pkg.name} postinst line ${c.line}: systemd-sysusers not replayed; create its accounts in /etc/passwd and /etc/group`);
        continue;
      }
      const missing = accountNames(c.words).filter((n) => !known.has(n));
      if (missing.length > 0) warn(`${p.pkg.name} postinst line ${c.line}: ${c.words[0]} would create ${missing.join(", ")}; Kiln does not create accounts, add them to the image yourself`);
    }
  }
}

async function knownAccounts(fs: RootfsView, passwd: string | undefined, group: string | undefined): Promise<Set<string>> {
  const names = new Set<string>();
  for (const text of [passwd ?? (await readText(fs, "etc/passwd")), group ?? (await readText(fs, "etc/group"))]) {
    for (const line of (text ?? "").split("\n")) if (line.includes(":")) names.add(line.slice(0, line.indexOf(":")));
  }
  return names;
}

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
function distrolessAccounts(set: EntrySet, fs: RootfsView, clock: Date): { passwd: string; group: string } {
  set.file("etc/passwd", DISTROLESS_PASSWD);
  set.file("etc/group", DISTROLESS_GROUP);
  set.file("etc/shadow", shadowFor(DISTROLESS_PASSWD, clock), 0o640);
  set.file("etc/gshadow", gshadowFor(DISTROLESS_GROUP), 0o640);
  if (!fs.lstat("root")) set.dir("root", 0o700);
  if (!fs.lstat("home/nonroot")) {
    if (!fs.lstat("home")) set.dir("home");
    set.dir("home/nonroot", 0o700, NONROOT_ID, NONROOT_ID);
  }
  return { passwd: DISTROLESS_PASSWD, group: DISTROLESS_GROUP };
}

async function hasShadowTools(ctx: FixupContext, fs: RootfsView): Promise<boolean> {
  return ctx.packages.some((p) => p.pkg.name === "passwd") || fs.stat("usr/sbin/shadowconfig") !== undefined;
}

/** The accounts fix-up. */
export function accountsFixup(options: FixupOptions = {}): Fixup {
  const warn = options.warn ?? (() => {});
  return {
    name: "accounts",
    replaces: "base-passwd preinst/postinst (first install) and passwd postinst (shadowconfig on); root and nonroot without base-passwd",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      const passwdMaster = await readText(fs, "usr/share/base-passwd/passwd.master");
      const groupMaster = await readText(fs, "usr/share/base-passwd/group.master");
      let written: { passwd: string; group: string } | undefined;
      if (!fs.lstat("etc/passwd") && !fs.lstat("etc/group") && passwdMaster !== undefined && groupMaster !== undefined) {
        if (!(await hasShadowTools(ctx, fs))) {
          written = { passwd: passwdMaster, group: groupMaster };
          set.file("etc/passwd", passwdMaster);
          set.file("etc/group", groupMaster);
        } else {
          written = { passwd: markShadowed(passwdMaster), group: markShadowed(groupMaster) };
          set.file("etc/passwd", written.passwd);
          set.file("etc/group", written.group);
          const shadowGid = /^shadow:[^:]*:([0-9]+):/m.exec(written.group)?.[1];
          const gid = shadowGid !== undefined ? Number(shadowGid) : ((await groupId(fs, "shadow")) ?? 42);
          set.file("etc/shadow", shadowFor(written.passwd, ctx.clock), 0o640, 0, gid);
          set.file("etc/gshadow", gshadowFor(written.group), 0o640, 0, gid);
        }
      } else if (!fs.lstat("etc/passwd") && !fs.lstat("etc/group") && passwdMaster === undefined && !ctx.packages.some((p) => p.pkg.name === "base-passwd")) {
        written = distrolessAccounts(set, fs, ctx.clock);
      }
      reportAccountCreations(ctx.packages, await knownAccounts(fs, written?.passwd, written?.group), warn);
      return set.result();
    },
  };
}
