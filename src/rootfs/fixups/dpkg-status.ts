/**
 * A package's stanza of `/var/lib/dpkg/status`, written the way dpkg 1.21 writes it
 * (lib/dpkg/dump.c over the `fieldinfos` table of lib/dpkg/parse.c):
 *
 * - known fields in dpkg's order — Package, Essential, Protected, Status, Priority, Section,
 *   Installed-Size, Origin, Maintainer, Bugs, Architecture, Multi-Arch, Source, Version, Replaces,
 *   Provides, Depends, Pre-Depends, Recommends, Suggests, Breaks, Conflicts, Enhances, Conffiles,
 *   Description — then every other field in the order of the control file;
 * - `Essential`/`Protected` only when `yes`, `Multi-Arch` only when not `no`;
 * - relationship fields re-formatted (`name:arch (op version)`, `, ` and ` | ` separators; the
 *   obsolete `<`/`>` read as `<=`/`>=`);
 * - `Status: install ok installed`, and `Conffiles:` with each conffile's MD5 as found on disk;
 * - fields that only exist in a repository index (`Filename`, `Size`, `MD5sum`, `SHA256`,
 *   `Description-md5`, ...) dropped: dpkg never sees them when it installs a `.deb`.
 */
import type { Paragraph } from "../../debian/types.js";

/** dpkg's known fields, in the order it writes them, with their canonical spelling. */
const KNOWN_ORDER = [
  "Package",
  "Essential",
  "Protected",
  "Status",
  "Priority",
  "Section",
  "Installed-Size",
  "Origin",
  "Maintainer",
  "Bugs",
  "Architecture",
  "Multi-Arch",
  "Source",
  "Version",
  "Config-Version",
  "Replaces",
  "Provides",
  "Depends",
  "Pre-Depends",
  "Recommends",
  "Suggests",
  "Breaks",
  "Conflicts",
  "Enhances",
  "Conffiles",
  "Description",
  "Triggers-Pending",
  "Triggers-Awaited",
] as const;

const RELATION_FIELDS = new Set(["replaces", "provides", "depends", "pre-depends", "recommends", "suggests", "breaks", "conflicts", "enhances"]);

/**
 * Fields dpkg does not record for an installed package: index-only fields, the available-file
 * fields, and the ones dpkg computes itself.
 */
const DROPPED = new Set(["filename", "size", "md5sum", "msdos-filename", "sha1", "sha256", "sha512", "description-md5", "phased-update-percentage", "status", "conffiles", "config-version", "triggers-pending", "triggers-awaited"]);

/** dpkg's spelling of a relation: `libc6 (>= 2.34)`, `python3:any`. */
export function formatRelations(raw: string): string {
  const text = raw.replace(/\s*\n\s*/g, " ").trim();
  if (text === "") return "";
  return text
    .split(",")
    .map((group) =>
      group
        .split("|")
        .map((alt) => {
          const m = /^\s*([^\s(]+)\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*$/.exec(alt);
          if (!m) return alt.trim().replace(/\s+/g, " ");
          const op = m[2] === "<" ? "<=" : m[2] === ">" ? ">=" : m[2];
          return op ? `${m[1]} (${op} ${m[3]})` : m[1]!;
        })
        .join(" | "),
    )
    .join(", ");
}

/** `Name: value` with continuation lines as written (first line trimmed, others indented by one space). */
function fieldText(name: string, value: string): string {
  const [first, ...rest] = value.split("\n");
  return `${name}:${first === "" ? "" : ` ${first}`}${rest.map((l) => `\n ${l}`).join("")}\n`;
}

/** One status stanza (ending with its blank separator line). */
export function formatStatusStanza(control: Paragraph, conffiles: ReadonlyArray<readonly [path: string, md5: string]>): string {
  const known = new Map<string, string>();
  const canonical = new Map(KNOWN_ORDER.map((n) => [n.toLowerCase(), n]));
  const others: Array<[string, string]> = [];
  for (const [name, value] of control.fields) {
    const key = name.toLowerCase();
    if (DROPPED.has(key)) continue;
    if (canonical.has(key)) known.set(canonical.get(key)!, value);
    else others.push([name, value]);
  }
  known.set("Status", "install ok installed");
  if (conffiles.length > 0) known.set("Conffiles", `\n${conffiles.map(([p, h]) => `${p} ${h}`).join("\n")}`);
  let out = "";
  for (const name of KNOWN_ORDER) {
    let value = known.get(name);
    if (value === undefined) continue;
    if ((name === "Essential" || name === "Protected") && value !== "yes") continue;
    if (name === "Multi-Arch" && value === "no") continue;
    if (RELATION_FIELDS.has(name.toLowerCase())) {
      value = formatRelations(value);
      if (value === "") continue;
    }
    out += fieldText(name, value);
  }
  for (const [name, value] of others) out += fieldText(name, value);
  return `${out}\n`;
}
