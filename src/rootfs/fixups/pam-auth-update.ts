/**
 * `/etc/pam.d/common-{auth,account,password,session,session-noninteractive}` and the state in
 * `/var/lib/pam/`, as `pam-auth-update --package --force` writes them on libpam-runtime's first
 * configuration.
 *
 * Why: every PAM service file (`login`, `su`, `passwd`, `chpasswd`, ...) `@include`s the
 * common-* files; libpam-runtime does not ship them, so without this `su` and `passwd` inside the
 * image fail.
 *
 * The algorithm is pam-auth-update's (libpam-runtime 1.5.2), for a first install (no saved state,
 * no earlier choices, debconf unattended): the profiles of `/usr/share/pam-configs/` (names ending
 * in `~` or like `#x#` skipped; profiles naming `pam_tally` disabled) enabled when `Default: yes`,
 * sorted by `Priority` (highest first) then name (descending); each common file is built from its
 * template in `/usr/share/pam/`, the "Primary" block's `end` jumps replaced by the number of
 * lines left in the block (`success=end` → `success=1`), the first module using its `*-Initial`
 * lines, an empty Primary block getting `[default=1] pam_permit.so`, option words re-joined with
 * single spaces (hence the trailing space pam-auth-update leaves after a module without options).
 * Profiles that `Conflicts:` with an enabled one are dropped. Common files already in the tree
 * are left alone (pam-auth-update would keep local edits too).
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import { compareBytes, EntrySet, regularFile } from "./tree.js";

const CONFIGS = "usr/share/pam-configs";
const TYPES = ["auth", "account", "password", "session", "session-noninteractive"] as const;
const INVALID_MODULES = ["pam_tally"];

/** One `/usr/share/pam-configs/<name>` profile: its fields, as pam-auth-update parses them. */
export interface PamProfile {
  fields: Map<string, string>;
  conflicts: Set<string>;
  disabled: boolean;
}

/** pam-auth-update's `parse_pam_profile`. */
export function parsePamProfile(text: string): PamProfile {
  const fields = new Map<string, string>();
  const conflicts = new Set<string>();
  let disabled = false;
  let field: string | undefined;
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (const line of lines) {
    // Perl reads the line with its newline: "Field:\n" matches with an empty value.
    const header = /^(\S+):\s+(.*)\s*$/.exec(`${line}\n`);
    if (header) {
      field = header[1]!.replace(/-Final$/, "");
      const value = header[2]!;
      if (field === "Conflicts") for (const c of value.split(", ")) conflicts.add(c);
      else fields.set(field, value);
      continue;
    }
    if (field === undefined) continue;
    const trimmed = line.replace(/^\s+/, "").replace(/\s+$/, "");
    let value = fields.get(field) ?? "";
    if (trimmed !== "" && trimmed !== "0") value += `\n${trimmed}`;
    if (INVALID_MODULES.some((mod) => value.includes(mod))) disabled = true;
    fields.set(field, value.replace(/^[\n\s]+/, ""));
  }
  if (!fields.has("Session-Interactive-Only")) {
    for (const suffix of ["-Type", "", "-Initial"]) {
      const v = fields.get(`Session${suffix}`);
      if (v !== undefined) fields.set(`Session-noninteractive${suffix}`, v);
      else fields.delete(`Session-noninteractive${suffix}`);
    }
  }
  return { fields, conflicts, disabled };
}

/** Perl's numeric value of a string (`"256"` → 256, `""` → 0). */
function perlNumber(s: string | undefined): number {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(s ?? "");
  return m ? Number(m[1]) : 0;
}

/** Profiles enabled at first install, in pam-auth-update's order. */
export function enabledProfiles(profiles: Map<string, PamProfile>): { sorted: string[]; enabled: string[] } {
  const order = (a: string, b: string): number => {
    const pa = perlNumber(profiles.get(a)!.fields.get("Priority"));
    const pb = perlNumber(profiles.get(b)!.fields.get("Priority"));
    return pb - pa || compareBytes(b, a);
  };
  const sorted = [...profiles.keys()].sort(order);
  const enabled = sorted.filter((n) => profiles.get(n)!.fields.get("Default") === "yes");
  // Conflicts: for each enabled profile, drop the enabled ones it conflicts with.
  for (let k = 0; k < enabled.length; k++) {
    const elem = enabled[k]!;
    for (let i = enabled.length - 1; i >= 0; i--) {
      if (profiles.get(elem)?.conflicts.has(enabled[i]!)) {
        enabled.splice(i, 1);
        if (i < k) k--;
      }
    }
  }
  return { sorted, enabled };
}

function linesFor(p: PamProfile, uctype: string, modpos: number): string | undefined {
  if (modpos === 0 && p.fields.get(`${uctype}-Initial`)) return p.fields.get(`${uctype}-Initial`);
  return p.fields.get(uctype);
}

/** pam-auth-update's `merge_one_line` without saved state: `end` → count, options re-joined. */
function mergeOneLine(line: string, count: number): string {
  const m = /^((\[[^\]]+\]|\w+)\s+\S+)\s*(.*)/.exec(line);
  if (!m) return " \n";
  const opts = m[3]!.split(/\s+/).filter((o, i, all) => !(o === "" && (i === 0 || i === all.length - 1)));
  const modline = m[1]!.replace(/end/g, String(count));
  return `${modline} ${opts.join(" ")}\n`;
}

const PRIMARY = /^# here are the per-package modules \(the "Primary" block\)/;
const FALLBACK = /^# here's the fallback if no module succeeds/;
const ADDITIONAL = /^# and here are more per-package modules \(the "Additional" block\)/;
const END = /^# end of pam-auth-update config/;

/** One common-* file from its template (`create_from_template`); undefined if the template lacks a marker. */
export function commonFile(template: string, profiles: Map<string, PamProfile>, enabled: readonly string[], typeName: (typeof TYPES)[number]): string | undefined {
  const uctype = typeName[0]!.toUpperCase() + typeName.slice(1);
  const type = typeName.replace(/-noninteractive/, "");
  let state = 0;
  let out = "";
  const lines = template.split(/(?<=\n)/);
  for (const line of lines) {
    if (state === 1) {
      if (FALLBACK.test(line)) {
        out += line;
        state++;
      }
      continue;
    }
    if (state === 3) {
      if (END.test(line)) {
        out += line;
        state++;
      }
      continue;
    }
    out += line;
    let val: string;
    if (state === 0 && PRIMARY.test(line)) val = "Primary";
    else if (state === 2 && ADDITIONAL.test(line)) val = "Additional";
    else continue;
    const mods = enabled.filter((m) => profiles.get(m)?.fields.get(`${uctype}-Type`) === val);
    let count = 0;
    mods.forEach((m, i) => {
      count += (linesFor(profiles.get(m)!, uctype, i) ?? "").split(/\n+/).filter((x, k, all) => !(x === "" && k === all.length - 1)).length;
    });
    if (val === "Additional") count--;
    if (val === "Primary" && count === 0) out += `${type}\t[default=1]\t\t\tpam_permit.so\n`;
    mods.forEach((m, i) => {
      const output = linesFor(profiles.get(m)!, uctype, i) ?? "";
      for (const l of output === "" ? [] : output.split("\n")) {
        out += `${type}\t${mergeOneLine(l, count)}`;
        count--;
      }
    });
    state++;
  }
  return state < 4 ? undefined : out;
}

/** `/var/lib/pam/<type>`: the modules written, Primary ones first. */
export function savedState(profiles: Map<string, PamProfile>, enabled: readonly string[], typeName: (typeof TYPES)[number]): string {
  const uctype = typeName[0]!.toUpperCase() + typeName.slice(1);
  let out = "";
  let i = 0;
  for (const m of enabled) {
    const t = profiles.get(m)!.fields.get(`${uctype}-Type`);
    if (!t || t === "Additional") continue;
    const output = linesFor(profiles.get(m)!, uctype, i++);
    if (output) out += `Module: ${m}\n${output}\n`;
  }
  if (i === 0) out += "Module: null\n[default=1]\t\t\tpam_permit.so\n";
  i = 0;
  for (const m of enabled) {
    const t = profiles.get(m)!.fields.get(`${uctype}-Type`);
    if (!t || t === "Primary") continue;
    const output = linesFor(profiles.get(m)!, uctype, i++);
    if (output) out += `Module: ${m}\n${output}\n`;
  }
  return out;
}

async function loadProfiles(fs: RootfsView): Promise<Map<string, PamProfile>> {
  const profiles = new Map<string, PamProfile>();
  for (const name of fs.readdir(CONFIGS)) {
    if (name.endsWith("~") || /^#.+#$/.test(name)) continue;
    const path = `${CONFIGS}/${name}`;
    if (!regularFile(fs, path)) continue;
    const p = parsePamProfile((await fs.readFile(path)).toString("utf8"));
    if (!p.disabled) profiles.set(name, p);
  }
  return profiles;
}

/** The pam-auth-update fix-up. */
export function pamAuthUpdateFixup(): Fixup {
  return {
    name: "pam-auth-update",
    replaces: "libpam-runtime postinst (pam-auth-update --package --force)",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      if (!ctx.packages.some((p) => p.pkg.name === "libpam-runtime")) return set.result();
      if (TYPES.some((t) => fs.lstat(`etc/pam.d/common-${t}`))) return set.result();
      const profiles = await loadProfiles(fs);
      const { sorted, enabled } = enabledProfiles(profiles);
      const files = new Map<string, string>();
      for (const t of TYPES) {
        const template = regularFile(fs, `usr/share/pam/common-${t}`);
        if (!template) return set.result();
        const text = commonFile((await fs.readFile(`usr/share/pam/common-${t}`)).toString("utf8"), profiles, enabled, t);
        if (text === undefined) return set.result();
        files.set(t, text);
      }
      set.file("var/lib/pam/seen", sorted.map((s) => `${s}\n`).join(""));
      for (const t of TYPES) {
        set.file(`etc/pam.d/common-${t}`, files.get(t)!);
        set.file(`var/lib/pam/${t}`, savedState(profiles, enabled, t));
      }
      return set.result();
    },
  };
}
