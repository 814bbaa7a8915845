/**
 * What login's and libpam-modules' postinsts create at first configuration.
 *
 * login (1:4.13): `/var/log/faillog` (0644 root:root, empty; only on first install) and
 * `/etc/subuid`, `/etc/subgid` (0644, empty) when absent — `useradd` and rootless container
 * tools inside the image expect them.
 * libpam-modules (1.5.2): `/etc/security/opasswd` (0600, empty: pam_pwhistory's store) and
 * `/etc/environment` (0644, empty: read by pam_env on every login).
 * Each only when its package is installed and the file is absent.
 */
import type { Fixup, FixupContext } from "../types.js";
import { EntrySet } from "./tree.js";

const CREATED: ReadonlyArray<{ pkg: string; path: string; mode: number }> = [
  { pkg: "login", path: "var/log/faillog", mode: 0o644 },
  { pkg: "login", path: "etc/subuid", mode: 0o644 },
  { pkg: "login", path: "etc/subgid", mode: 0o644 },
  { pkg: "libpam-modules", path: "etc/security/opasswd", mode: 0o600 },
  { pkg: "libpam-modules", path: "etc/environment", mode: 0o644 },
];

/** The login / libpam-modules fix-up. */
export function loginFilesFixup(): Fixup {
  return {
    name: "login-files",
    replaces: "login postinst (faillog, subuid, subgid) and libpam-modules postinst (opasswd, environment)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      const installed = new Set(ctx.packages.map((p) => p.pkg.name));
      for (const c of CREATED) {
        if (installed.has(c.pkg) && !ctx.fs.lstat(c.path)) set.file(c.path, "", c.mode);
      }
      return set.result();
    },
  };
}
