/**
 * The study of Debian 13 (trixie)'s minbase maintainer scripts (the 78 packages of
 * `mmdebstrap --variant=minbase --include=apt trixie`, tools/minbase-trixie.txt), made like
 * bookworm's and compared the same way (test/rootfs/fixups/trixie.test.ts, and
 * bench/fidelity/trixie.mjs for the times). Scripts whose text did not
 * change since bookworm (base-passwd's preinst, libc-bin's postinst, libpam0g's and
 * libpam-runtime's postinst) keep bookworm's verdicts through their pins; what changed:
 *
 * - /usr is merged by the packages themselves (base-files ships the links; no usr-is-merged in
 *   minbase), and the DEP 17 protective diversions (`/lib64/ld-linux-x86-64.so.2` by libc6,
 *   `/lib32`, `/libo32`, `/libx32` by base-files) are `dpkg-divert --no-rename` calls the
 *   interpreter now records in /var/lib/dpkg/diversions;
 * - dash ships `/usr/bin/sh -> dash` and no longer diverts it (fix-up bin-sh reads its postinst);
 * - tzdata rewrites /etc/timezone only when it exists (fix-up tzdata reads its postinst);
 * - debianutils' update-shells lists a shell once (fix-up shells reads update-shells);
 * - t64 libraries (`libssl3t64`, ...) and apt's `sqv` verifier need nothing: ordinary packages.
 */
import type { CommandClaim, ScriptStudy } from "./types.js";

export const TRIXIE_SCRIPTS: readonly ScriptStudy[] = [
  {
    package: "base-files",
    script: "postinst",
    sha256: ["c3afcbe1aa12e56b"],
    effects: [
      {
        outcome: "emulated",
        by: "base-files",
        effect: "root's and the system's profile, motd, /usr/local, /var/run and /var/lock links, empty wtmp/btmp/lastlog, info dir (fix-up base-files)",
      },
      { outcome: "not-needed", effect: "removes the /lib64 protective diversion of its preinst: base-files ships /lib64 itself in trixie" },
    ],
  },
  {
    package: "base-passwd",
    script: "postinst",
    sha256: ["1cff0ea9b8dd12bc"],
    effects: [
      { outcome: "emulated", by: "accounts", effect: "creates empty /etc/subuid and /etc/subgid (fix-up accounts)" },
      { outcome: "not-needed", effect: "update-passwd only merges changes on upgrades; the first install's files come from the preinst" },
    ],
  },
  {
    package: "dash",
    script: "postinst",
    sha256: ["7f90d7fdae7590c8"],
    effects: [{ outcome: "not-needed", effect: "claim_binsh and drop_obsolete_diversion remove diversions an older dash or bash left; dash ships /usr/bin/sh itself (fix-up bin-sh)" }],
  },
  {
    package: "libc6",
    script: "postinst",
    sha256: ["ff2a3a7a0e74ceac"],
    effects: [{ outcome: "not-needed", effect: "restarts services on upgrades: nothing in a new image" }],
  },
];

export const TRIXIE_CLAIMS: readonly CommandClaim[] = [
  {
    package: "libc6",
    script: "preinst",
    program: "perl",
    outcome: "not-needed",
    effect: "checks for perl, to ask through debconf which services to restart on upgrades: nothing to restart in a new image",
    status: 1,
  },
  ...(
    [
      ["-s", "Linux"],
      ["-r", "6.12.0"],
    ] as const
  ).map(
    ([flag, answer]): CommandClaim => ({
      package: "libc6",
      script: "preinst",
      program: "uname",
      args: new RegExp(`^${flag}$`),
      outcome: "not-needed",
      effect: `the running kernel (uname ${flag}), checked against glibc's minimum: irrelevant to an image, whose kernel is the host's at run time (answered ${answer})`,
      output: `${answer}\n`,
    }),
  ),
];
