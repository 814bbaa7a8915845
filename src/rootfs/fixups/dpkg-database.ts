/**
 * The dpkg database (`/var/lib/dpkg`), as `dpkg --install` of every package leaves it, so that
 * `dpkg -l`, `dpkg -L`, `dpkg -S`, `dpkg --verify` and apt work inside the image and a later
 * `apt install` upgrades instead of clobbering.
 *
 * Replaces what dpkg itself records while unpacking and configuring (there is no script to
 * replay, this *is* dpkg's job):
 * - `status`: one stanza per package, sorted by name then architecture (see {@link formatStatusStanza}),
 *   `Status: install ok installed`, conffile hashes computed from the bytes in the tree;
 * - `info/<pkg>.list`: the package's paths as shipped (`/.` for the root), in archive order;
 * - `info/<pkg>.<member>`: every control member but `control` (`md5sums`, `conffiles`,
 *   maintainer scripts 0755, `triggers`, `shlibs`, `symbols`, `templates`, ...); a package
 *   without `md5sums` gets one computed from its regular files in archive order (conffiles
 *   included), as dpkg generates it;
 * - `Multi-Arch: same` packages use `<pkg>:<arch>` in these names, as dpkg does;
 * - `triggers/`: the interests declared by `triggers` members (`File` for file triggers,
 *   `<name>` for named ones, `/noawait` for `interest-noawait`), and an empty `Unincorp`, so that
 *   packages installed later still activate `ldconfig` and `update-shells`;
 * - `info/format` (`1`), empty `available` and `diversions` (unless a fix-up wrote one), `arch`
 *   (the native architecture, as dpkg records it at its first run), and the `updates/`,
 *   `triggers/`, `alternatives/`, `info/` directories. `statoverride` only when a script added an
 *   override: dpkg creates it at the first `dpkg-statoverride --add`.
 * Not written: `lock*`, `status-old` and other backups.
 */
import type { InstalledPackage, Fixup, FixupContext, RootfsView } from "../types.js";
import { formatStatusStanza } from "./dpkg-status.js";
import type { FixupOptions } from "./options.js";
import { compareBytes, EntrySet, fileContent, md5Hex, regularFile, treePath } from "./tree.js";

const ADMIN = "var/lib/dpkg";
/** Control members dpkg runs: kept executable. */
const SCRIPTS = new Set(["preinst", "postinst", "prerm", "postrm", "config"]);

/** The name dpkg gives a package's info files: `libc6:amd64` for `Multi-Arch: same`. */
export function infoName(p: InstalledPackage): string {
  return p.pkg.multiArch === "same" ? `${p.pkg.name}:${p.pkg.architecture}` : p.pkg.name;
}

/** The paths of a `conffiles` member, without flagged entries that are not installed. */
export function conffilePaths(p: InstalledPackage): string[] {
  const text = p.controlFiles.get("conffiles")?.toString("utf8") ?? "";
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    // dpkg ≥ 1.20: "remove-on-upgrade /etc/x" marks a conffile the package no longer ships.
    if (!line.startsWith("/")) continue;
    out.push(line);
  }
  return out;
}

/** `info/<pkg>.list`: the shipped paths, the root as dpkg spells it (`/.`). */
export function formatList(files: readonly string[]): string {
  return files.map((f) => (f === "/" || f === "" ? "/." : f)).join("\n") + (files.length > 0 ? "\n" : "");
}

/**
 * The trigger interests of every package: file triggers and named triggers, in install order
 * (dpkg appends an interest when it unpacks the package declaring it).
 */
export function triggerInterests(packages: readonly InstalledPackage[]): { file: string; named: Map<string, string> } {
  let file = "";
  const named = new Map<string, string>();
  for (const p of packages) {
    const text = p.controlFiles.get("triggers")?.toString("utf8");
    if (!text) continue;
    for (const raw of text.split("\n")) {
      const line = raw.replace(/#.*$/, "").trim();
      const m = /^(interest|interest-await|interest-noawait)\s+(\S+)$/.exec(line);
      if (!m) continue;
      const who = `${infoName(p)}${m[1] === "interest-noawait" ? "/noawait" : ""}`;
      if (m[2]!.startsWith("/")) file += `${m[2]} ${who}\n`;
      else named.set(m[2]!, `${named.get(m[2]!) ?? ""}${who}\n`);
    }
  }
  return { file, named };
}

async function conffileHashes(fs: RootfsView, p: InstalledPackage, warn: (m: string) => void): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const path of conffilePaths(p)) {
    let file;
    try {
      file = regularFile(fs, treePath(path));
    } catch {
      file = undefined;
    }
    if (!file?.content) {
      warn(`${p.pkg.name}: conffile ${path} is not in the image; left out of the dpkg status`);
      continue;
    }
    out.push([path, await md5Hex(file.content)]);
  }
  return out;
}

/** An `md5sums` member for a package that has none, from its regular files in the tree. */
async function computedMd5sums(fs: RootfsView, set: EntrySet, p: InstalledPackage): Promise<string> {
  let out = "";
  for (const path of p.files) {
    if (path === "/" || path === "/.") continue;
    let rel: string;
    try {
      rel = treePath(path);
    } catch {
      continue;
    }
    const content = fileContent(fs, set.realTarget(rel));
    if (!content) continue;
    out += `${await md5Hex(content)}  ${rel}\n`;
  }
  return out;
}

/** The dpkg database fix-up; run it last, so conffile hashes see the final tree. */
export function dpkgDatabaseFixup(options: FixupOptions = {}): Fixup {
  const warn = options.warn ?? (() => {});
  return {
    name: "dpkg-database",
    replaces: "what dpkg records in /var/lib/dpkg while installing packages",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      for (const d of ["", "info", "updates", "triggers", "alternatives"]) {
        const path = d === "" ? ADMIN : `${ADMIN}/${d}`;
        if (!fs.stat(path)) set.dir(path);
      }
      const sorted = [...ctx.packages].sort((a, b) => compareBytes(a.pkg.name, b.pkg.name) || compareBytes(a.pkg.architecture, b.pkg.architecture));
      let status = "";
      for (const p of sorted) {
        status += formatStatusStanza(p.pkg.paragraph, await conffileHashes(fs, p, warn));
        const base = `${ADMIN}/info/${infoName(p)}`;
        set.file(`${base}.list`, formatList(p.files));
        for (const [member, data] of p.controlFiles) {
          if (member === "control" || member.includes("/")) continue;
          set.file(`${base}.${member}`, data, SCRIPTS.has(member) ? 0o755 : 0o644);
        }
        if (!p.controlFiles.has("md5sums")) set.file(`${base}.md5sums`, await computedMd5sums(fs, set, p));
      }
      set.file(`${ADMIN}/status`, status);
      set.file(`${ADMIN}/info/format`, "1\n");
      for (const f of ["available", "diversions"]) {
        if (!fs.lstat(`${ADMIN}/${f}`)) set.file(`${ADMIN}/${f}`, "");
      }
      if (!fs.lstat(`${ADMIN}/arch`)) set.file(`${ADMIN}/arch`, `${ctx.arch}\n`);
      const triggers = triggerInterests(ctx.packages);
      if (triggers.file !== "") set.file(`${ADMIN}/triggers/File`, triggers.file);
      for (const [name, text] of triggers.named) {
        if (/^[^\s/]+$/.test(name) && name !== "File" && name !== "Unincorp" && name !== "Lock") set.file(`${ADMIN}/triggers/${name}`, text);
        else warn(`trigger name ${JSON.stringify(name)} is not usable as a file name; interest not recorded`);
      }
      set.file(`${ADMIN}/triggers/Unincorp`, "");
      return set.result();
    },
  };
}
