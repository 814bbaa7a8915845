/**
 * The fix-ups that stand in for Debian's maintainer scripts and debootstrap, for bookworm.
 *
 * Kiln never runs package scripts: every `.deb` is unpacked into a virtual tree, then these
 * functions do, exactly and reproducibly, what the scripts would have left behind.
 *
 * Most of it is generic: the **maintainer-scripts** fix-up walks every `preinst`, `config`,
 * `postinst` and trigger run through a shell interpreter (script/) that reproduces the common
 * idioms — files, directories, links, owners and modes, system users and groups, statoverrides,
 * file capabilities, debconf's unattended answers — and hands `update-alternatives` and
 * `add-shell` calls to their fix-ups; what it does not know is reported (the build report lists
 * every effect: emulated, not-needed or unreproduced). The study (study/: programs common to
 * every release, then per-release scripts and claims) gives its verdicts. The dedicated fix-ups
 * below do what no script line can: debootstrap's own steps, and the work of a few programs for
 * every package at once (ldconfig, update-shells, pam-auth-update, update-ca-certificates).
 *
 * The table is the study of the 88 minbase packages and debootstrap's steps
 * (`/usr/share/debootstrap/functions`, `scripts/debian-common`), what each does at *first*
 * installation (`configure` with no previous version), and which fix-up does it. Checked against
 * a real `debootstrap --variant=minbase bookworm` (test/rootfs/fixups/bookworm.test.ts); the
 * corpus beyond minbase against mmdebstrap (scripted.test.ts, bench/fidelity/); trixie's minbase
 * against mmdebstrap's (trixie.test.ts).
 *
 * | source | effect at first install | Kiln |
 * | --- | --- | --- |
 * | debootstrap `merge_usr`, libc6 preinst | `bin sbin lib lib64 -> usr/...` | **merged-usr** |
 * | debootstrap | `/etc/fstab` "UNCONFIGURED FSTAB", `var/lib/dpkg/cmethopt` | **base-files** |
 * | debootstrap | `/etc/hostname`, `/etc/resolv.conf` copied from the build host | not made: the container runtime bind-mounts them, and the build host's names must not leak into images |
 * | debootstrap | `/dev` nodes and links, `/proc` and `/sys` mounts, `/etc/mtab` cleanup | not made: the runtime provides `/dev`, `/proc`, `/sys`; device nodes in a layer break rootless unpacking; no `/etc/mtab` (debootstrap leaves none either, util-linux reads `/proc/self/mountinfo`) |
 * | debootstrap | `ldconfig` in the target; `/etc/localtime -> .../UTC` | **ldconfig**; tzdata replaces the link (**tzdata**) |
 * | debootstrap | `policy-rc.d`, fake `start-stop-daemon` | not needed: removed at the end, nothing is started |
 * | debootstrap | `/etc/apt/sources.list` for the mirror | **apt-sources** (`debian.sources`), when the builder passes sources |
 * | debootstrap | `.deb` cache, `var/lib/apt/lists`, `var/log/{bootstrap,dpkg,alternatives}.log` | not made: caches and logs of the build (size, irreproducible dates); `apt update` fetches lists |
 * | dpkg itself | `var/lib/dpkg/{status,info/*,triggers/*,available,...}` | **dpkg-database** |
 * | base-files postinst | `/root/.profile`, `/root/.bashrc`, `/etc/profile`, `/etc/motd`; `/mnt /srv /opt /media /etc/opt /var/opt`, `/var/mail` (2775 mail), `/run/lock` (1777), `var/spool/mail -> ../mail`, `var/run -> /run`, `var/lock -> /run/lock`, `/usr/local/*`, `usr/local/man -> share/man`, `/var/log/{wtmp,btmp,lastlog}` (utmp), `/usr/share/info/dir`, `etc/dpkg/origins/default -> debian` | **base-files** (and `/tmp` 1777) |
 * | base-passwd preinst/postinst | `/etc/passwd`, `/etc/group` from the master files (update-passwd only on upgrade) | **accounts** |
 * | passwd postinst | `groupadd -g 42 shadow` (already in group.master), `shadowconfig on` | **accounts**: `/etc/shadow`, `/etc/gshadow`, `x` in passwd/group, `lastchg` from the build clock |
 * | passwd postinst | `systemd-tmpfiles --create passwd.conf` | not needed: only when systemd-tmpfiles exists (not in minbase) |
 * | apt postinst | `adduser --system _apt` unless present | nothing to do: `_apt` (uid 42) is in base-passwd's master file |
 * | apt, dpkg, e2fsprogs, util-linux postinsts | `deb-systemd-helper` enablement of timers (`apt-daily*`, `dpkg-db-backup`, `e2scrub*`, `fstrim`) | not made: no systemd in the image; a user adding systemd enables units themselves |
 * | util-linux-extra postinst | `update-rc.d hwclock.sh defaults` (`/etc/rc{0,6,S}.d` links) | not made: no init system in a container image; left to the user (a VM image needs it) |
 * | bash postinst | `/bin/sh -> bash` if missing; alternative `builtins.7.gz`; `update-menus` if installed | **bin-sh**, **alternatives**; menus: not installed |
 * | dash postinst | diverts `/bin/sh` and `sh.1.gz` to `*.distrib`, links `/bin/sh -> dash` | **bin-sh** (`var/lib/dpkg/diversions`) |
 * | debianutils postinst + file trigger | `/etc/shells` from the template, `update-shells` (shells.d of bash, dash), alternative `which` | **shells**, **alternatives** |
 * | mawk, tar, util-linux postinsts | alternatives `awk` (+`nawk`, man pages), `rmt`, `pager` | **alternatives** |
 * | libc-bin postinst + `ldconfig` trigger | `/etc/nsswitch.conf` from the default; `ldconfig` | **nsswitch**, **ldconfig** |
 * | libc6 preinst/postinst | kernel version check, `/etc/ld.so.nohwcap` created then removed, service restarts and `telinit u` on upgrade | not needed: net no-op in a new image; the build host's kernel is irrelevant |
 * | libpam-modules postinst | `/etc/security/opasswd` (0600), `/etc/environment` | **maintainer-scripts** (`umask 066; touch`) |
 * | libpam-runtime postinst | `pam-auth-update --package --force`: `/etc/pam.d/common-*`, `/var/lib/pam/*` | **pam-auth-update** |
 * | login postinst | `/var/log/faillog`, `/etc/subuid`, `/etc/subgid` | **maintainer-scripts** (`touch`, `chown`, `chmod`) |
 * | tzdata postinst (debconf unattended) | `/etc/localtime -> /usr/share/zoneinfo/Etc/UTC`, `/etc/timezone` | **tzdata** |
 * | debconf postinst, `*.templates`, `config` scripts | debconf's databases under `/var/cache/debconf` | not made: debconf creates them on first use, and `dpkg-reconfigure` reloads templates from `info/`; preseeding is left to the user |
 * | coreutils postinst | `/usr/bin/touch -> /bin/touch` if missing | not needed: on merged /usr it exists |
 * | usr-is-merged preinst/postinst | refuses an unmerged system; cleanups on upgrade | guaranteed by **merged-usr** |
 * | adduser, apt, debian-archive-keyring, dpkg, e2fsprogs, init-system-helpers, libgcrypt20, libpam0g, login, passwd, perl-base, tzdata | `dpkg-maintscript-helper` (rm_conffile, dir_to_symlink, symlink_to_dir), keyring/update-passwd/initramfs/service work | not needed: these only act when upgrading from an older version |
 * | every package | whatever its scripts do | **maintainer-scripts** (interpreted; the study decides the rest, unknown effects reported) |
 * | ca-certificates config, postinst, trigger | `/etc/ca-certificates.conf`, `/etc/ssl/certs` links, hash links, bundle | **ca-certificates** |
 * | ca-certificates-java postinst, trigger | the Java trust store `/etc/ssl/certs/java/cacerts` | **java-cacerts** (JKS, without Java) |
 * | apt | automatic marks of the packages it installs as dependencies | **extended-states** |
 * | shadow tools, ldconfig | `passwd-`, `group-`, `.pwd.lock`, `var/cache/ldconfig/aux-cache`, `run/mount` | not made: backups, locks and caches of a live system |
 *
 * Contract note for the builder: a fix-up result may list in `remove` the children of a
 * directory it replaces by a symlink (`var/run`) and, in `entries`, that symlink; removals must
 * be applied before entries, and the `ContentRef` of a moved file may be the one of a removed
 * node (its bytes must stay readable). Entries are listed parents first; their paths are real
 * paths (no symlink in a parent).
 */
import type { Fixup } from "../types.js";
import { accountsFixup } from "./accounts.js";
import { alternativesFixup } from "./alternatives.js";
import { aptSourcesFixup } from "./apt-sources.js";
import { baseFilesFixup } from "./base-files.js";
import { binShFixup } from "./bin-sh.js";
import { caCertificatesFixup } from "./ca-certificates.js";
import { javaCacertsFixup } from "./java-cacerts.js";
import { dpkgDatabaseFixup } from "./dpkg-database.js";
import { extendedStatesFixup } from "./extended-states.js";
import { ldconfigFixup } from "./ldconfig.js";
import { maintainerScriptsFixup, ScriptRun } from "./maintainer-scripts.js";
import { mergedUsrFixup } from "./merged-usr.js";
import { nsswitchFixup } from "./nsswitch.js";
import type { FixupOptions } from "./options.js";
import { pamAuthUpdateFixup } from "./pam-auth-update.js";
import { shellsFixup } from "./shells.js";
import { tzdataFixup } from "./tzdata.js";

export type { AptSource, FixupOptions } from "./options.js";
export { accountsFixup } from "./accounts.js";
export { alternativesFixup } from "./alternatives.js";
export { aptSourceFor, aptSourcesFixup } from "./apt-sources.js";
export { baseFilesFixup } from "./base-files.js";
export { binShFixup } from "./bin-sh.js";
export { caCertificatesFixup } from "./ca-certificates.js";
export { javaCacertsFixup, jksKeystore, readJks } from "./java-cacerts.js";
export { dpkgDatabaseFixup } from "./dpkg-database.js";
export { extendedStatesFixup } from "./extended-states.js";
export { ldconfigFixup } from "./ldconfig.js";
export { maintainerScriptsFixup, ScriptRun, type ScriptReportEntry } from "./maintainer-scripts.js";
export { mergedUsrFixup } from "./merged-usr.js";
export { nsswitchFixup } from "./nsswitch.js";
export { pamAuthUpdateFixup } from "./pam-auth-update.js";
export { shellsFixup } from "./shells.js";
export { tzdataFixup } from "./tzdata.js";

/**
 * The fix-ups for an image of a Debian release (`bookworm`, `trixie`: its study of maintainer
 * scripts is the release's own, study/index.ts), in the order the builder must apply them (each
 * sees the tree the previous ones left): the layout first, accounts before anything that looks
 * up a group, the link farms before `ldconfig` scans them, the dpkg database last so that its
 * conffile hashes see the final bytes. What the releases share is shared: the fix-ups read the
 * tree (merged /usr done by the release's own packages or not, its libraries' names), not the
 * release's name.
 */
export function fixupsFor(release: string, options: FixupOptions = {}): Fixup[] {
  const run = new ScriptRun(release);
  const withCalls: FixupOptions = { ...options, calls: run.calls };
  return [
    mergedUsrFixup(),
    accountsFixup(),
    baseFilesFixup(),
    nsswitchFixup(),
    tzdataFixup(),
    binShFixup(),
    maintainerScriptsFixup(run, options),
    shellsFixup(withCalls),
    alternativesFixup(withCalls),
    caCertificatesFixup(options),
    javaCacertsFixup(),
    pamAuthUpdateFixup(),
    aptSourcesFixup(options),
    extendedStatesFixup(options),
    ldconfigFixup(options),
    dpkgDatabaseFixup(options),
  ];
}

/** The fix-ups for a Debian 12 (bookworm) image. */
export function bookwormFixups(options: FixupOptions = {}): Fixup[] {
  return fixupsFor("bookworm", options);
}
