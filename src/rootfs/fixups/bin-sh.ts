/**
 * `/bin/sh`, and the diversions dash's postinst registers for it.
 *
 * bookworm's dash ships `/bin/sh -> dash` itself; its postinst (`claim_binsh`) then diverts
 * `/bin/sh` to `/bin/sh.distrib` and `/usr/share/man/man1/sh.1.gz` to `sh.distrib.1.gz` (the latter
 * only when `/usr/share/man/man1/` exists) on behalf of dash, and re-creates the links. Those
 * diversions matter later: they are how dpkg knows that another package's `/bin/sh` (bash ships
 * none today, but has) must not replace dash's. Without dash, bash's postinst links
 * `/bin/sh -> bash` when nothing is there, so a shell exists either way.
 *
 * Writes `/var/lib/dpkg/diversions` (dpkg-divert's format: from, to, package), in dpkg's order.
 */
import type { Fixup, FixupContext } from "../types.js";
import { controlText } from "./options.js";
import { EntrySet, isDirectory } from "./tree.js";

/** One `dpkg-divert` record. */
export interface Diversion {
  from: string;
  to: string;
  pkg: string;
}

/**
 * The bin of dpkg's file-name hash table a path falls in: bookworm's dpkg (1.21) hashes the path
 * without its leading slash with FNV-1a into 262139 bins (checked against its dpkg-divert: a
 * dozen diversions come out in exactly this order).
 */
function fsysHashBin(path: string): number {
  let h = 2166136261;
  // dpkg hashes `char`s, signed on x86: a byte above 127 is sign-extended before the xor.
  for (const b of Buffer.from(path.replace(/^\/+/, ""))) h = Math.imul((h ^ (b > 127 ? b - 256 : b)) >>> 0, 16777619) >>> 0;
  return h % 262139;
}

/**
 * `/var/lib/dpkg/diversions` for these diversions. dpkg-divert writes the file by walking its
 * file-name hash table, so the records come in the order of their paths' hash bins — not the
 * order they were made in; dpkg reads them as a set, but the file's bytes follow that order.
 */
export function formatDiversions(diversions: readonly Diversion[]): string {
  return [...diversions]
    .sort((a, b) => fsysHashBin(a.from) - fsysHashBin(b.from))
    .map((d) => `${d.from}\n${d.to}\n${d.pkg}\n`)
    .join("");
}

/** The /bin/sh fix-up. */
export function binShFixup(): Fixup {
  return {
    name: "bin-sh",
    replaces: "dash postinst (claim_binsh, diversions) and bash postinst (/bin/sh fallback)",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      const installed = new Set(ctx.packages.map((p) => p.pkg.name));
      const hasDash = installed.has("dash") && fs.stat("bin/dash") !== undefined;
      const hasBash = installed.has("bash") && fs.stat("bin/bash") !== undefined;
      const shPath = set.realTarget("bin/sh");
      // bookworm's dash postinst adds the diversions; trixie's ships `/usr/bin/sh -> dash` and
      // only removes diversions an older dash left, which a first installation has none of.
      const dash = ctx.packages.find((p) => p.pkg.name === "dash");
      const divertsSh = dash !== undefined && /dpkg-divert[^\n]*--add/.test(controlText(dash, "postinst") ?? "");
      if (hasDash && !divertsSh) {
        if (!fs.lstat(shPath)) set.symlink(shPath, "dash");
      } else if (hasDash) {
        set.symlink(shPath, "dash");
        const diversions: Diversion[] = [{ from: "/bin/sh", to: "/bin/sh.distrib", pkg: "dash" }];
        if (isDirectory(fs, "usr/share/man/man1")) {
          set.symlink("usr/share/man/man1/sh.1.gz", "dash.1.gz");
          diversions.push({ from: "/usr/share/man/man1/sh.1.gz", to: "/usr/share/man/man1/sh.distrib.1.gz", pkg: "dash" });
        }
        set.file("var/lib/dpkg/diversions", formatDiversions(diversions));
      } else if (hasBash && !fs.lstat(shPath)) {
        set.symlink(shPath, "bash");
      }
      return set.result();
    },
  };
}
