/**
 * dpkg's helpers as a maintainer script meets them at first installation: version comparisons,
 * queries of the package database (every package of the image counts as installed), diversions,
 * `dpkg-statoverride`, `dpkg-trigger`, `dpkg-maintscript-helper`, and the programs whose calls
 * other fix-ups replay (`update-alternatives`, `add-shell`), which are recorded here in order.
 */
import { compareVersions } from "../../../debian/version.js";
import type { InstalledPackage } from "../../types.js";
import { collectAlternatives } from "../alternatives.js";
import { formatDiversions } from "../bin-sh.js";
import { infoName } from "../dpkg-database.js";
import { compareBytes } from "../tree.js";
import { getopt, lookupGroup, lookupUser, readText, shown, writePath } from "./files.js";
import type { Invocation, Tool } from "./interpret.js";
import { Unknown, type Status } from "./values.js";

/** Calls other fix-ups replay after every script ran, in the order the scripts made them. */
export interface RecordedCalls {
  alternatives: Array<{ pkg: string; words: string[] }>;
  shells: Array<{ pkg: string; words: string[] }>;
  /** Named triggers activated by scripts (`dpkg-trigger`). */
  triggers: Set<string>;
}

/** The recorded calls of the host running `inv`. */
function calls(inv: Invocation): RecordedCalls {
  return inv.sh.host.calls;
}

/** dpkg's `--compare-versions`, where an empty version is the earliest (the `-nl` forms: the latest). */
export function compareVersionsOp(a: string, op: string, b: string): boolean | undefined {
  const nl = op.endsWith("-nl");
  const base = nl ? op.slice(0, -3) : op;
  const rank = (v: string): number => (v === "" ? (nl ? 1 : -1) : 0);
  let c: number;
  if (a === "" || b === "") c = a === b ? 0 : rank(a) - rank(b);
  else {
    try {
      c = compareVersions(a, b);
    } catch {
      return undefined;
    }
  }
  switch (base) {
    case "lt":
    case "<<":
    case "<":
      return c < 0;
    case "le":
    case "<=":
      return c <= 0;
    case "eq":
    case "=":
      return c === 0;
    case "ne":
      return c !== 0;
    case "ge":
    case ">=":
      return c >= 0;
    case "gt":
    case ">>":
    case ">":
      return c > 0;
    default:
      return undefined;
  }
}

function findPackage(inv: Invocation, spec: string): InstalledPackage | undefined {
  const [name, arch] = spec.split(":");
  return inv.sh.host.packages.find((p) => p.pkg.name === name && (arch === undefined || arch === p.pkg.architecture || (arch === "any" && true)));
}

const dpkg: Tool = (inv) => {
  const args = inv.argv.slice(1);
  const op = args[0];
  if (op === "--compare-versions") {
    const [a, rel, b] = args.slice(1);
    if (a === undefined || rel === undefined || b === undefined) return 2;
    const r = compareVersionsOp(a, rel, b);
    return r === undefined ? 2 : r ? 0 : 1;
  }
  if (op === "--print-architecture") {
    inv.out.write(`${inv.sh.host.arch}\n`);
    return 0;
  }
  if (op?.startsWith("--assert-")) return 0;
  if ((op === "-L" || op === "--listfiles") && args[1] !== undefined) {
    const p = findPackage(inv, args[1]);
    if (!p) return 1;
    inv.out.write(p.files.map((f) => `${f}\n`).join(""));
    return 0;
  }
  return unknown(inv);
};

function unknown(inv: Invocation): Status {
  const why = `the result of \`${inv.text}\``;
  inv.out.write(new Unknown(why));
  return new Unknown(why);
}

/** `dpkg-query -W [-f FORMAT] pkg...` and `-L pkg`. */
const dpkgQuery: Tool = (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-f", "--showformat"]));
  if (flags.has("-L") || flags.has("--listfiles")) {
    const p = operands[0] === undefined ? undefined : findPackage(inv, operands[0]);
    if (!p) return 1;
    inv.out.write(p.files.map((f) => `${f}\n`).join(""));
    return 0;
  }
  if (!flags.has("-W") && !flags.has("--show")) return unknown(inv);
  const format = values.get("-f") ?? values.get("--showformat") ?? "${binary:Package}\\t${Version}\\n";
  let status: Status = 0;
  let out = "";
  for (const spec of operands) {
    const p = findPackage(inv, spec);
    if (!p) {
      status = 1;
      continue;
    }
    let bad = false;
    out += format
      .replace(/\$\{([^}]+)\}/g, (m, field: string) => {
        const f = field.replace(/;-?[0-9]+$/, "");
        switch (f) {
          case "Package":
            return p.pkg.name;
          case "binary:Package":
            return infoName(p);
          case "Version":
            return p.pkg.version;
          case "Architecture":
            return p.pkg.architecture;
          case "Status":
            return "install ok installed";
          case "db:Status-Abbrev":
            return "ii ";
          case "db:Status-Want":
            return "install";
          case "db:Status-Status":
            return "installed";
          case "db:Status-Eflag":
            return "ok";
          default: {
            const v = p.pkg.paragraph.get(f);
            if (v === undefined) bad = true;
            return v ?? m;
          }
        }
      })
      .replace(/\\n/g, "\n")
      .replace(/\\t/g, "\t");
    if (bad) return unknown(inv);
  }
  inv.out.write(out);
  return status;
};

/** The diversions the tree records: `from` → `to`, by package. */
async function diversions(inv: Invocation): Promise<Array<{ from: string; to: string; by: string }>> {
  const ls = (await readText(inv.sh, "/var/lib/dpkg/diversions")).split("\n");
  const out: Array<{ from: string; to: string; by: string }> = [];
  for (let k = 0; k + 2 < ls.length; k += 3) out.push({ from: ls[k]!, to: ls[k + 1]!, by: ls[k + 2]! });
  return out;
}

const dpkgDivert: Tool = async (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["--package", "--divert", "--admindir", "--instdir", "--root"]));
  if (flags.has("--truename")) {
    const p = operands[0];
    if (p === undefined) return 2;
    const d = (await diversions(inv)).find((x) => x.from === p);
    inv.out.write(`${d ? d.to : p}\n`);
    return 0;
  }
  if (flags.has("--list") || flags.has("--listpackage")) {
    const all = await diversions(inv);
    const pat = operands[0];
    const hits = pat === undefined ? all : all.filter((d) => d.from === pat);
    inv.out.write(hits.map((d) => (flags.has("--listpackage") ? `${d.by}\n` : `diversion of ${d.from} to ${d.to} by ${d.by}\n`)).join(""));
    return 0;
  }
  if (flags.has("--add") || (operands.length === 1 && !flags.has("--remove"))) return addDiversion(inv, flags, values, operands);
  // --remove with --no-rename only drops the record (trixie's base-files removes the protective
  // `/lib64` diversion glibc's preinst adds, DEP 17): no file moves.
  const from = operands[0];
  if (flags.has("--remove") && flags.has("--no-rename") && !flags.has("--local") && from !== undefined && operands.length === 1) {
    const sh = inv.sh;
    const by = values.get("--package") ?? sh.pkg.pkg.name;
    const all = await diversions(inv);
    const mine = all.find((d) => d.from === from);
    // dpkg-divert: removing a diversion that is not there is a no-op; another package's is an error.
    if (!mine) return 0;
    if (mine.by !== by) return 2;
    const real = writePath(sh, "/var/lib/dpkg/diversions");
    if (real === undefined) return 2;
    const kept = all.filter((d) => d !== mine).map((d) => ({ from: d.from, to: d.to, pkg: d.by }));
    await sh.emulate(`${shown(inv.argv)}: removes the diversion of ${from}`, () => sh.fs.writeFile(real, formatDiversions(kept.reverse()), 0o644, 0, 0));
    return 0;
  }
  inv.sh.unreproduced(`${shown(inv.argv)} (a diversion Kiln does not make)`);
  return new Unknown("a diversion");
};

/**
 * `dpkg-divert [--package P | --local] [--divert TO] [--rename] --add FILE` at first installation.
 * dpkg-divert moves (`--rename`) a file that is on disk when the script runs: in Kiln's tree
 * every package is already unpacked, so a file of the diverting package itself (which dpkg
 * unpacks after its preinst, and never diverts from its own package) stays, and any other file
 * goes to the diverted name, where dpkg would have moved it or unpacked it.
 */
async function addDiversion(inv: Invocation, flags: ReadonlySet<string>, values: ReadonlyMap<string, string>, operands: readonly string[]): Promise<Status> {
  const sh = inv.sh;
  const from = operands[0];
  if (from === undefined || operands.length !== 1 || !from.startsWith("/")) return 2;
  const to = values.get("--divert") ?? `${from}.distrib`;
  const pkg = flags.has("--local") ? ":" : (values.get("--package") ?? sh.pkg.pkg.name);
  const all = await diversions(inv);
  const same = all.find((d) => d.from === from);
  if (same) return same.to === to && same.by === pkg ? 0 : 2;
  const rename = flags.has("--rename") && !sh.pkg.files.includes(from) && sh.fs.lstat(from) !== undefined;
  await sh.emulate(`${shown(inv.argv)}: records the diversion of ${from} to ${to}${rename ? " and moves the file there" : ""}`, async () => {
    if (rename) {
      const toReal = writePath(sh, to);
      const fromReal = sh.fs.resolve(from, false);
      if (toReal !== undefined && fromReal !== undefined) {
        sh.fs.put({ ...sh.fs.lstat(fromReal)!, path: toReal });
        sh.fs.remove(fromReal);
      }
    }
    const real = writePath(sh, "/var/lib/dpkg/diversions");
    if (real !== undefined) sh.fs.writeFile(real, formatDiversions([...all.map((d) => ({ from: d.from, to: d.to, pkg: d.by })), { from, to, pkg }]), 0o644, 0, 0);
  });
  return 0;
}

const MULTIARCH: Record<string, string> = { amd64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu", i386: "i386-linux-gnu", armhf: "arm-linux-gnueabihf", ppc64el: "powerpc64le-linux-gnu", s390x: "s390x-linux-gnu" };

const dpkgArchitecture: Tool = (inv) => {
  const args = inv.argv.slice(1).join(" ");
  const m = /-q\s*(DEB_(?:HOST|BUILD)_(ARCH|MULTIARCH|GNU_TYPE))/.exec(args);
  const arch = inv.sh.host.arch;
  if (!m) return unknown(inv);
  inv.out.write(`${m[2] === "ARCH" ? arch : MULTIARCH[arch] ?? new Unknown(`the multiarch triplet of ${arch}`)}\n`);
  return 0;
};

// ---- dpkg-statoverride -----------------------------------------------------------------------

export interface StatOverride {
  user: string;
  group: string;
  mode: number;
  path: string;
}

const STATOVERRIDE = "/var/lib/dpkg/statoverride";

export async function readStatOverrides(inv: Invocation): Promise<StatOverride[]> {
  return (await readText(inv.sh, STATOVERRIDE))
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [user, group, mode, ...path] = l.split(" ");
      return { user: user!, group: group!, mode: parseInt(mode!, 8), path: path.join(" ") };
    });
}

/**
 * The statoverride file as dpkg writes it: in the order of its file-name hash table (FNV-1a of
 * the path without its leading `/`, modulo 262139 bins), which is neither sorted nor insertion
 * order — checked against dpkg-statoverride of bookworm.
 */
export function formatStatOverrides(list: readonly StatOverride[]): string {
  const bin = (p: string): number => {
    let h = 2166136261;
    for (const c of Buffer.from(p.replace(/^\/+/, ""), "utf8")) {
      h ^= c;
      h = Math.imul(h, 16777619) >>> 0;
    }
    return h % 262139;
  };
  return [...list]
    .map((o, k) => ({ o, k, b: bin(o.path) }))
    .sort((x, y) => x.b - y.b || x.k - y.k)
    .map(({ o }) => `${o.user} ${o.group} ${o.mode.toString(8)} ${o.path}\n`)
    .join("");
}

const dpkgStatoverride: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1), new Set(["--admindir", "--root", "--instdir"]));
  const sh = inv.sh;
  const list = await readStatOverrides(inv);
  if (flags.has("--list")) {
    const hits = operands.length === 0 ? list : list.filter((o) => operands.includes(o.path));
    inv.out.write(formatStatOverrides(hits));
    return hits.length > 0 ? 0 : 1;
  }
  if (flags.has("--add")) {
    const [user, group, modeText, path] = operands;
    if (path === undefined || !/^[0-7]+$/.test(modeText!)) return 2;
    if (list.some((o) => o.path === path)) {
      // dpkg: "An override for '...' already exists", an error unless --force.
      return flags.has("--force") || flags.has("--force-all") ? 0 : 2;
    }
    const u = await lookupUser(sh, user!.replace(/^#/, ""));
    const g = await lookupGroup(sh, group!.replace(/^#/, ""));
    if (!u || g === undefined) return 2;
    const mode = parseInt(modeText!, 8);
    const next = [...list, { user: user!, group: group!, mode, path }];
    const real = writePath(sh, STATOVERRIDE);
    if (real === undefined) return 2;
    await sh.emulate(`dpkg-statoverride${flags.has("--update") ? " --update" : ""} --add ${user} ${group} ${modeText} ${path}`, () => {
      const cur = sh.fs.stat(real);
      sh.fs.writeFile(real, formatStatOverrides(next), cur?.mode ?? 0o644, 0, 0);
      if (flags.has("--update")) {
        const target = sh.fs.realpath(path);
        const e = target === undefined ? undefined : sh.fs.lstat(target);
        if (e && target !== undefined) sh.fs.put({ ...e, path: target, uid: u.uid, gid: g, mode });
      }
    });
    return 0;
  }
  if (flags.has("--remove")) {
    const path = operands[0];
    if (!list.some((o) => o.path === path)) return flags.has("--force") ? 0 : 2;
    const real = writePath(sh, STATOVERRIDE)!;
    await sh.emulate(`dpkg-statoverride --remove ${path}`, () => sh.fs.writeFile(real, formatStatOverrides(list.filter((o) => o.path !== path)), 0o644, 0, 0));
    return 0;
  }
  return unknown(inv);
};

const dpkgTrigger: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1), new Set(["--by-package", "--admindir"]));
  const name = operands[0];
  if (name === undefined || flags.has("--check-supported")) return 0;
  if (flags.has("--no-act")) return 0;
  await inv.sh.emulate(`activates the trigger ${name} (processed once every package is configured)`, () => {
    calls(inv).triggers.add(name);
  });
  return 0;
};

/** `dpkg-maintscript-helper <command> ... -- "$@"`: each command only acts on upgrades and removals. */
const maintscriptHelper: Tool = (inv) => {
  const args = inv.argv.slice(1);
  if (args[0] === "supports") return 0;
  const sep = args.indexOf("--");
  const scriptArgs = sep < 0 ? [] : args.slice(sep + 1);
  const [action, old] = scriptArgs;
  if ((action === "configure" || action === "install" || action === "upgrade") && (old === undefined || old === "")) {
    inv.sh.notNeeded(`dpkg-maintscript-helper ${args[0]} acts only when upgrading from an older version`);
    return 0;
  }
  inv.sh.unreproduced(`${shown(inv.argv)}`);
  return new Unknown("dpkg-maintscript-helper");
};

const updateAlternatives: Tool = async (inv) => {
  const args = inv.argv.slice(1);
  const action = args.find((a) => /^--(install|remove|remove-all|auto|set|config|display|query|list|get-selections|set-selections|all)$/.test(a));
  if (action === "--query") return queryAlternative(inv, args[args.indexOf("--query") + 1]);
  if (action === "--display" || action === "--list") return displayAlternative(inv, args[args.indexOf(action) + 1]);
  if (action === "--get-selections") return unknown(inv);
  if (action === "--config" || action === "--set-selections" || action === "--all") return unknown(inv);
  await inv.sh.emulate(shown(["update-alternatives", ...args.filter((a) => a !== "--quiet")]), () => {
    calls(inv).alternatives.push({ pkg: inv.sh.pkg.pkg.name, words: ["update-alternatives", ...args] });
  });
  return 0;
};

/**
 * `update-alternatives --query NAME`: the group as the calls recorded so far leave it (the
 * alternatives fix-up replays the same calls), in dpkg's machine-readable format; status 2 and
 * nothing on the output for a group that does not exist.
 */
function queryAlternative(inv: Invocation, name: string | undefined): Status {
  if (name === undefined) return 2;
  let doubt: string | undefined;
  const groups = collectAlternatives(calls(inv).alternatives, inv.sh.fs, (m) => (doubt ??= m));
  if (doubt !== undefined) return unknown(inv);
  const g = groups.find((x) => x.name === name);
  if (!g) return 2;
  const slaves = (m: ReadonlyMap<string, string>): string => (m.size === 0 ? "" : `Slaves:\n${[...m].map(([n, p]) => ` ${n} ${p}\n`).join("")}`);
  const head = `Name: ${g.name}\nLink: ${g.link}\n${slaves(g.slaves)}Status: auto\nBest: ${g.current}\nValue: ${g.current}\n`;
  const choices = [...g.choices].sort(([a], [b]) => compareBytes(a, b)).map(([path, c]) => `\nAlternative: ${path}\nPriority: ${c.priority}\n${slaves(c.slaves)}`);
  inv.out.write(head + choices.join(""));
  return 0;
}

/** `--display`/`--list NAME`: for a group no call made, dpkg's "no alternatives" (status 2). */
function displayAlternative(inv: Invocation, name: string | undefined): Status {
  if (name === undefined) return 2;
  let doubt: string | undefined;
  const groups = collectAlternatives(calls(inv).alternatives, inv.sh.fs, (m) => (doubt ??= m));
  if (doubt === undefined && !groups.some((g) => g.name === name)) return 2;
  // Its human-readable listing of an existing group is not modelled.
  return unknown(inv);
}

const shellsTool = (kind: "add-shell" | "remove-shell"): Tool =>
  async (inv) => {
    if (kind === "remove-shell") {
      inv.sh.unreproduced(shown(inv.argv));
      return 0;
    }
    await inv.sh.emulate(shown(inv.argv), () => {
      calls(inv).shells.push({ pkg: inv.sh.pkg.pkg.name, words: inv.argv });
    });
    return 0;
  };

export const DPKG_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["dpkg", dpkg],
  ["dpkg-query", dpkgQuery],
  ["dpkg-divert", dpkgDivert],
  ["dpkg-architecture", dpkgArchitecture],
  ["dpkg-statoverride", dpkgStatoverride],
  ["dpkg-trigger", dpkgTrigger],
  ["dpkg-maintscript-helper", maintscriptHelper],
  ["update-alternatives", updateAlternatives],
  ["add-shell", shellsTool("add-shell")],
  ["remove-shell", shellsTool("remove-shell")],
];
