/**
 * The remaining programs maintainer scripts call that Kiln models: file capabilities (`setcap`,
 * `getcap`), debconf's shell API (`db_get`, ...: the unattended answers, which are the
 * templates' defaults), ucf's configuration-file registry, `find` (selection and `-delete`),
 * `logger`.
 */
import { createHash } from "node:crypto";
import { getopt, lookupGroup, lookupUser, readText, shown, writePath } from "./files.js";
import type { Interpreter, Invocation, Tool } from "./interpret.js";
import { readContent } from "./overlay.js";
import { compareBytes, joinPath } from "../tree.js";
import { globRegExp, Unknown, type Status } from "./values.js";

// ---- capabilities ----------------------------------------------------------------------------

/** Linux capability names by number (include/uapi/linux/capability.h). */
export const CAPABILITIES = [
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "linux_immutable",
  "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
  "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
  "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
  "checkpoint_restore",
];

export interface FileCaps {
  permitted: bigint;
  inheritable: bigint;
  effective: boolean;
}

/** libcap's `cap_from_text` for file capabilities (`cap_net_raw+ep`, `cap_a,cap_b=ep`, `=ep`). */
export function parseCapText(text: string): FileCaps | undefined {
  const all = (1n << BigInt(CAPABILITIES.length)) - 1n;
  const caps = { e: 0n, p: 0n, i: 0n };
  for (const clause of text.trim().split(/\s+/)) {
    const m = /^([a-z_0-9,]*)((?:[=+-][eip]*)+)$/i.exec(clause);
    if (!m) return undefined;
    let set = 0n;
    if (m[1] === "" || m[1]!.toLowerCase() === "all") set = all;
    else {
      for (const name of m[1]!.toLowerCase().split(",")) {
        const n = CAPABILITIES.indexOf(name.replace(/^cap_/, ""));
        if (n < 0) return undefined;
        set |= 1n << BigInt(n);
      }
    }
    for (const [, op, flags] of m[2]!.matchAll(/([=+-])([eip]*)/gi)) {
      if (op === "=") for (const f of ["e", "p", "i"] as const) caps[f] &= ~set;
      for (const f of flags!.toLowerCase()) {
        const k = f as "e" | "p" | "i";
        if (op === "-") caps[k] &= ~set;
        else caps[k] |= set;
      }
    }
  }
  return { permitted: caps.p, inheritable: caps.i, effective: caps.e !== 0n };
}

/** The `security.capability` value setcap writes (VFS_CAP_REVISION_2, 20 bytes, little endian). */
export function capXattr(c: FileCaps): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000000 | (c.effective ? 1 : 0), 0);
  b.writeUInt32LE(Number(c.permitted & 0xffffffffn), 4);
  b.writeUInt32LE(Number(c.inheritable & 0xffffffffn), 8);
  b.writeUInt32LE(Number(c.permitted >> 32n), 12);
  b.writeUInt32LE(Number(c.inheritable >> 32n), 16);
  return b;
}

/** getcap's text for a `security.capability` value (`cap_net_raw=ep`). */
export function capText(x: Buffer): string | undefined {
  if (x.length < 12) return undefined;
  const magic = x.readUInt32LE(0);
  const effective = (magic & 1) !== 0;
  let p = BigInt(x.readUInt32LE(4));
  let i = BigInt(x.readUInt32LE(8));
  if (x.length >= 20) {
    p |= BigInt(x.readUInt32LE(12)) << 32n;
    i |= BigInt(x.readUInt32LE(16)) << 32n;
  }
  const groups = new Map<string, string[]>();
  CAPABILITIES.forEach((name, n) => {
    const bit = 1n << BigInt(n);
    const f = `${effective && (p | i) & bit ? "e" : ""}${i & bit ? "i" : ""}${p & bit ? "p" : ""}`;
    if (f === "") return;
    const list = groups.get(f) ?? [];
    list.push(`cap_${name}`);
    groups.set(f, list);
  });
  return [...groups].map(([f, names]) => `${names.join(",")}=${f}`).join(" ");
}

const setcap: Tool = async (inv) => {
  const sh = inv.sh;
  const args = inv.argv.slice(1).filter((a) => a !== "-q" && a !== "-v");
  const remove = args[0] === "-r";
  const [spec, path] = remove ? [undefined, args[1]] : [args[0], args[1]];
  if (path === undefined) return 1;
  const real = sh.fs.realpath(path, sh.cwd);
  const e = real === undefined ? undefined : sh.fs.lstat(real);
  if (!e || e.type !== "file" || real === undefined) return 1;
  if (remove) {
    if (!e.xattrs?.["security.capability"]) return 0;
    await sh.emulate(`setcap -r ${path}`, () => {
      const { "security.capability": _, ...rest } = e.xattrs ?? {};
      sh.fs.put({ ...e, path: real, xattrs: rest });
    });
    return 0;
  }
  const caps = spec === undefined ? undefined : parseCapText(spec);
  if (!caps) return 1;
  await sh.emulate(`setcap ${spec} ${path} (the security.capability attribute)`, () => {
    sh.fs.put({ ...e, path: real, xattrs: { ...(e.xattrs ?? {}), "security.capability": capXattr(caps) } });
  });
  return 0;
};

const getcap: Tool = (inv) => {
  for (const p of inv.argv.slice(1).filter((a) => !a.startsWith("-"))) {
    const x = inv.sh.fs.stat(p, inv.sh.cwd)?.xattrs?.["security.capability"];
    const text = x ? capText(x) : undefined;
    if (text) inv.out.write(`${p} ${text}\n`);
  }
  return 0;
};

// ---- debconf ---------------------------------------------------------------------------------

/** One question's template, from a package's `templates` control member. */
interface Template {
  type: string;
  default: string;
  choices: string;
}

/** The debconf database an unattended installation works with: templates' defaults, then what scripts set. */
export class Debconf {
  private readonly values = new Map<string, string>();
  private readonly flags = new Map<string, string>();
  private readonly substs = new Map<string, Map<string, string>>();
  private templates: Map<string, Template> | undefined;

  constructor(private readonly packages: Interpreter["host"]["packages"]) {}

  private template(q: string): Template | undefined {
    if (!this.templates) {
      this.templates = new Map();
      for (const p of this.packages) {
        const text = p.controlFiles.get("templates")?.toString("utf8");
        if (!text) continue;
        for (const stanza of text.split(/\n\s*\n/)) {
          const field = (n: string): string | undefined => new RegExp(`^${n}:[ \\t]?(.*)$`, "mi").exec(stanza)?.[1];
          const name = field("Template");
          if (name) this.templates.set(name.trim(), { type: field("Type")?.trim() ?? "string", default: field("Default") ?? "", choices: field("Choices") ?? "" });
        }
      }
    }
    return this.templates.get(q);
  }

  get(q: string): string | undefined {
    return this.values.get(q) ?? this.template(q)?.default;
  }

  set(q: string, v: string): void {
    this.values.set(q, v);
  }

  metaget(q: string, field: string): string | undefined {
    const t = this.template(q);
    if (!t) return undefined;
    const raw = field === "choices" ? t.choices : field === "type" ? t.type : field === "default" ? t.default : undefined;
    if (raw === undefined) return undefined;
    return raw.replace(/\$\{([^}]+)\}/g, (m, v: string) => this.substs.get(q)?.get(v) ?? "");
  }

  subst(q: string, key: string, value: string): void {
    const m = this.substs.get(q) ?? new Map<string, string>();
    m.set(key, value);
    this.substs.set(q, m);
  }

  fget(q: string, flag: string): string {
    return this.flags.get(`${q}\0${flag}`) ?? "false";
  }

  fset(q: string, flag: string, v: string): void {
    this.flags.set(`${q}\0${flag}`, v);
  }

  exists(q: string): boolean {
    return this.values.has(q) || this.template(q) !== undefined;
  }
}

function debconfTool(fn: (db: Debconf, args: string[], inv: Invocation) => { status: number; ret: string }): Tool {
  return (inv) => {
    const db = inv.sh.host.debconf;
    const { status, ret } = fn(db, inv.argv.slice(1), inv);
    inv.sh.setVar("RET", ret);
    return status;
  };
}

const DEBCONF_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["db_version", debconfTool(() => ({ status: 0, ret: "2.0" }))],
  ["db_get", debconfTool((db, [q]) => (q !== undefined && db.exists(q) ? { status: 0, ret: db.get(q) ?? "" } : { status: 10, ret: `${q} doesn't exist` }))],
  ["db_set", debconfTool((db, [q, ...v]) => {
    if (q === undefined) return { status: 20, ret: "" };
    db.set(q, v.join(" "));
    return { status: 0, ret: "value set" };
  })],
  ["db_metaget", debconfTool((db, [q, f]) => {
    const v = q === undefined || f === undefined ? undefined : db.metaget(q, f);
    return v === undefined ? { status: 10, ret: `${q} doesn't exist` } : { status: 0, ret: v };
  })],
  ["db_subst", debconfTool((db, [q, k, ...v]) => {
    if (q !== undefined && k !== undefined) db.subst(q, k, v.join(" "));
    return { status: 0, ret: "" };
  })],
  ["db_fget", debconfTool((db, [q, f]) => ({ status: 0, ret: q !== undefined && f !== undefined ? db.fget(q, f) : "false" }))],
  ["db_fset", debconfTool((db, [q, f, v]) => {
    if (q !== undefined && f !== undefined) db.fset(q, f, v ?? "");
    return { status: 0, ret: "true" };
  })],
  ...["db_capb", "db_title", "db_settitle", "db_input", "db_go", "db_stop", "db_beginblock", "db_endblock", "db_register", "db_unregister", "db_purge", "db_clear", "db_reset", "db_x_loadtemplatefile", "db_progress", "db_info", "db_data", "db_x_save"].map(
    (n): [string, Tool] => [n, debconfTool((_db, _a, inv) => {
      // An unattended (noninteractive) frontend asks nothing: db_input says so with status 30.
      return { status: inv.name === "db_input" ? 30 : 0, ret: "" };
    })],
  ),
];

// ---- ucf -------------------------------------------------------------------------------------

/**
 * `ucf new dest` at first installation: the file is copied into place when absent and its md5
 * recorded in `/var/lib/ucf/hashfile`; a copy of the new file (`cp -p`) goes to ucf's cache,
 * `/var/lib/ucf/cache/:etc:dir:name`, when it is smaller than 25600 bytes or `--three-way` asks
 * for it (ucf's own rule: the cache feeds its three-way merges on upgrades). `ucfr package dest`
 * records the owner in `/var/lib/ucf/registry` (`package \t path`). Both files get each new line
 * at their end, as ucf and ucfr write them.
 */
const ucf: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, operands } = getopt(inv.argv.slice(1), new Set(["--sum-file", "--src-dir", "--state-dir", "-s"]));
  if (flags.has("--purge") || flags.has("-p")) return 0;
  const [src, dest] = operands;
  if (src === undefined || dest === undefined) return 1;
  const from = sh.fs.stat(src, sh.cwd);
  if (from?.type !== "file") return 1;
  const exists = sh.fs.stat(dest, sh.cwd);
  const md5 = createHash("md5").update(await readContent(from.content!)).digest("hex");
  await sh.emulate(`ucf ${shown([src, dest])}: installs ${dest} when absent and records its md5sum`, async () => {
    if (!exists) {
      const real = writePath(sh, dest);
      if (real !== undefined) sh.fs.put({ path: real, type: "file", mode: 0o644, uid: 0, gid: 0, content: from.content! });
    }
    await upsertLine(sh, "/var/lib/ucf/hashfile", dest, `${md5}  ${dest}`, (l) => l.replace(/^\S+\s+/, ""));
    const cacheDir = writePath(sh, "/var/lib/ucf/cache");
    if (cacheDir === undefined) return;
    if (!sh.fs.lstat(cacheDir)) sh.fs.put({ path: cacheDir, type: "dir", mode: 0o755 & ~sh.umask, uid: 0, gid: 0 });
    if (flags.has("--three-way") || (from.content?.size ?? 0) < 25600) {
      sh.fs.put({ path: joinPath(cacheDir, dest.replace(/\//g, ":")), type: "file", mode: from.mode, uid: from.uid, gid: from.gid, content: from.content! });
    }
  });
  return 0;
};

const ucfr: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, operands } = getopt(inv.argv.slice(1));
  if (flags.has("--purge") || flags.has("-p")) return 0;
  const [pkg, dest] = operands;
  if (pkg === undefined || dest === undefined) return 1;
  await sh.emulate(`ucfr ${pkg} ${dest}: records ${pkg} as the owner of ${dest}`, () => upsertLine(sh, "/var/lib/ucf/registry", dest, `${pkg} \t ${dest}`, (l) => l.replace(/^\S+\s+/, "")));
  return 0;
};

/** Replaces `key`'s line of a state file by one at the end (`grep -v` then `>>`, as ucf and ucfr do). */
async function upsertLine(sh: Interpreter, file: string, key: string, line: string, keyOf: (l: string) => string): Promise<void> {
  const real = writePath(sh, file);
  if (real === undefined) return;
  const lines = (await readText(sh, file)).split("\n").filter((l) => l !== "" && keyOf(l) !== key);
  lines.push(line);
  sh.fs.writeFile(real, lines.map((l) => `${l}\n`).join(""), 0o644, 0, 0);
}

// ---- find ------------------------------------------------------------------------------------

/** `find PATH... [-maxdepth N] [-mindepth N] [-type f|d|l] [-name P] [-empty] [-print|-delete]`. */
/** An emacs regular expression (find's default `-regex` syntax) as a JS one over the whole path. */
function emacsRegExp(re: string): RegExp {
  let out = "";
  for (let i = 0; i < re.length; i++) {
    const c = re[i]!;
    if (c === "\\" && i + 1 < re.length) {
      const n = re[++i]!;
      out += "()|{}".includes(n) ? n : `\\${n}`;
    } else out += "()|{}".includes(c) ? `\\${c}` : c;
  }
  return new RegExp(`^(?:${out})$`, "s");
}

type FindTest = (path: string, real: string) => boolean;

/**
 * `find PATH... EXPRESSION`: `-maxdepth`, `-mindepth`, `-follow`; tests `-type f|d|l`, `-name`,
 * `-regex`, `-empty`, `-uid`, `-gid`, `-user`, `-group`; `!`/`-not`, `-a`, `-o`, `( )`; actions
 * `-print`, `-print0`, `-printf` (`%p`, `%f`) and `-delete`. Names come in the tree's order, sorted.
 */
const find: Tool = async (inv) => {
  const sh = inv.sh;
  const args = inv.argv.slice(1);
  const roots: string[] = [];
  let k = 0;
  for (; k < args.length && !args[k]!.startsWith("-") && args[k] !== "!" && args[k] !== "("; k++) roots.push(args[k]!);
  let maxdepth = Infinity;
  let mindepth = 0;
  let hasAction = false;
  const printed: string[] = [];
  const deleted: Array<{ path: string; real: string }> = [];
  const idOf = async (kind: "user" | "group", v: string): Promise<number | undefined> => (kind === "user" ? (await lookupUser(sh, v))?.uid : lookupGroup(sh, v));
  let bad = false;

  const primary = async (): Promise<FindTest> => {
    const a = args[k++];
    const v = args[k];
    if (a === "(") {
      const inner = await or();
      if (args[k++] !== ")") bad = true;
      return inner;
    }
    if (a === "!" || a === "-not") {
      const t = await primary();
      return (p, r) => !t(p, r);
    }
    if (a === "-maxdepth" && v !== undefined) maxdepth = Number(args[k++]);
    else if (a === "-mindepth" && v !== undefined) mindepth = Number(args[k++]);
    else if (a === "-follow" || a === "-depth") {
      // `-follow` matters only for links under the roots, which the scripts' directories lack.
    } else if (a === "-type" && v !== undefined) {
      const t = { f: "file", d: "dir", l: "symlink" }[args[k++]!];
      if (!t) bad = true;
      return (_, real) => sh.fs.lstat(real)?.type === t;
    } else if (a === "-name" && v !== undefined) {
      const re = globRegExp(args[k++]!);
      return (p) => re.test(p.slice(p.lastIndexOf("/") + 1));
    } else if (a === "-regex" && v !== undefined) {
      const re = emacsRegExp(args[k++]!);
      return (p) => re.test(p);
    } else if (a === "-empty") {
      return (_, real) => {
        const e = sh.fs.lstat(real);
        return e?.type === "dir" ? sh.fs.readdir(real).length === 0 : e?.type === "file" && (e.content?.size ?? 0) === 0;
      };
    } else if ((a === "-uid" || a === "-gid" || a === "-user" || a === "-group") && v !== undefined) {
      const value = args[k++]!;
      const want = /^[0-9]+$/.test(value) ? Number(value) : await idOf(a === "-user" ? "user" : "group", value);
      if (want === undefined) bad = true;
      const field = a === "-uid" || a === "-user" ? "uid" : "gid";
      return (_, real) => sh.fs.lstat(real)?.[field] === want;
    } else if (a === "-print" || a === "-print0") {
      hasAction = true;
      const end = a === "-print" ? "\n" : "\0";
      return (p) => (printed.push(`${p}${end}`), true);
    } else if (a === "-printf" && v !== undefined) {
      hasAction = true;
      const format = args[k++]!;
      if (/%[^pf%]/.test(format)) bad = true;
      return (p) => {
        const name = p.slice(p.lastIndexOf("/") + 1);
        printed.push(format.replace(/%([pf%])|\\([n0t\\])/g, (_m, f: string | undefined, esc: string | undefined) => (f === "p" ? p : f === "f" ? name : f === "%" ? "%" : esc === "n" ? "\n" : esc === "0" ? "\0" : esc === "t" ? "\t" : "\\")));
        return true;
      };
    } else if (a === "-delete") {
      hasAction = true;
      return (p, real) => (deleted.push({ path: p, real }), true);
    } else bad = true;
    return () => true;
  };
  const and = async (): Promise<FindTest> => {
    const parts = [await primary()];
    while (k < args.length && args[k] !== "-o" && args[k] !== "-or" && args[k] !== ")") {
      if (args[k] === "-a" || args[k] === "-and") k++;
      parts.push(await primary());
    }
    return (p, r) => parts.every((t) => t(p, r));
  };
  const or = async (): Promise<FindTest> => {
    const parts = [await and()];
    while (args[k] === "-o" || args[k] === "-or") {
      k++;
      parts.push(await and());
    }
    return (p, r) => parts.some((t) => t(p, r));
  };
  const expression = k < args.length ? await or() : () => true;
  if (bad || k < args.length) return unknownFind(inv);
  // -delete works depth first; the rest lists a directory before its content.
  const depthFirst = args.includes("-delete");
  const visit = (path: string, real: string, depth: number): void => {
    const e = sh.fs.lstat(real);
    if (!e) return;
    const test = (): void => {
      if (depth >= mindepth && expression(path, real) && !hasAction) printed.push(`${path}\n`);
    };
    if (!depthFirst) test();
    if (e.type === "dir" && depth < maxdepth) for (const n of [...sh.fs.readdir(real)].sort(compareBytes)) visit(`${path}/${n}`, joinPath(real, n), depth + 1);
    if (depthFirst) test();
  };
  let status: Status = 0;
  for (const r of roots.length > 0 ? roots : ["."]) {
    const real = sh.fs.resolve(r, true, sh.cwd);
    if (real === undefined || !sh.fs.lstat(real)) {
      status = 1;
      continue;
    }
    visit(r, real, 0);
  }
  inv.out.write(printed.join(""));
  for (const f of deleted) await sh.emulate(`find -delete: removes ${f.path}`, () => sh.fs.remove(f.real));
  return status;
};
/**
 * `xargs [-0] [-r] command [arg...]`: the command once, with the input's items after its own
 * arguments (split on NULs with `-0`, else on blanks and newlines); none at all with `-r`
 * (`--no-run-if-empty`) and an empty input.
 */
const xargs: Tool = async (inv) => {
  const args = inv.argv.slice(1);
  let k = 0;
  let nul = false;
  let skipEmpty = false;
  for (; k < args.length && args[k]!.startsWith("-"); k++) {
    const a = args[k]!;
    if (a === "-0" || a === "--null") nul = true;
    else if (a === "-r" || a === "--no-run-if-empty") skipEmpty = true;
    else if (/^-[0r]+$/.test(a)) {
      nul ||= a.includes("0");
      skipEmpty ||= a.includes("r");
    } else return unreproducedXargs(inv, `its option ${a}`);
  }
  const input = inv.stdin ?? "";
  if (typeof input !== "string") return unreproducedXargs(inv, input.why);
  const items = (nul ? input.split("\0") : input.split(/[ \t\n]+/)).filter((x) => x !== "");
  if (items.length === 0 && skipEmpty) return 0;
  const argv = [...(args.length > k ? args.slice(k) : ["echo"]), ...items];
  return inv.sh.invoke(argv, inv.out, undefined, shown(argv));
};
/** xargs runs a command: what it cannot know is reported, never guessed. */
function unreproducedXargs(inv: Invocation, why: string): Status {
  inv.sh.unreproduced(`runs \`${inv.text}\`, whose items are not known at build time (${why})`);
  return new Unknown(`the result of \`${inv.text}\``);
}

function unknownFind(inv: Invocation): Status {
  const why = `the result of \`${inv.text}\``;
  inv.out.write(new Unknown(why));
  return new Unknown(why);
}

// ---- locales --------------------------------------------------------------------------------

/**
 * `locale-gen`: compiles the locales `/etc/locale.gen` selects. With none selected (debconf's
 * default) it does nothing; compiling (localedef) is not reproduced.
 */
const localeGen: Tool = async (inv) => {
  const selected = (await readText(inv.sh, "/etc/locale.gen")).split("\n").filter((l) => /^[^#\s]/.test(l));
  if (selected.length === 0) {
    inv.sh.notNeeded("locale-gen: no locale is selected in /etc/locale.gen, so there is nothing to compile");
    return 0;
  }
  inv.sh.unreproduced(`compiles the locales selected in /etc/locale.gen (${selected.join(", ")}) into /usr/lib/locale/locale-archive`);
  return new Unknown("locale-gen");
};

/** `update-locale [--no-checks] [VAR[=value]]...` on `/etc/default/locale` (locales 2.36). */
const updateLocale: Tool = async (inv) => {
  const sh = inv.sh;
  const { values, operands } = getopt(inv.argv.slice(1), new Set(["--locale-file"]));
  const file = values.get("--locale-file") ?? "/etc/default/locale";
  const cur = sh.fs.stat(file, sh.cwd);
  const vars = new Map<string, string>();
  let content: string;
  if (cur?.type === "file") {
    content = await readText(sh, file);
    for (const line of content.split("\n")) {
      const m = /^(\w+)=(.*)/.exec(line);
      if (m && !inv.argv.includes("--reset")) vars.set(m[1]!, m[2]!);
    }
    content = content.replace(/^(\s*\w+=)/gm, "#$1");
    if (!content.endsWith("\n")) content += "\n";
  } else content = "#  File generated by update-locale\n";
  for (const a of operands) {
    const m = /^(\w+)=(.*)$/.exec(a);
    if (m) vars.set(m[1]!, m[2]!);
    else vars.delete(a);
  }
  for (const [k, v] of vars) {
    const re = new RegExp(`^#\\s*${k}=.*$`, "m");
    if (re.test(content)) content = content.replace(re, `${k}=${v}`);
    else content += `${k}=${v}\n`;
  }
  const real = writePath(sh, file);
  if (real === undefined) return 1;
  await sh.emulate(`update-locale ${operands.join(" ")}: writes ${file}`, () => sh.fs.writeFile(real, content, cur?.mode ?? 0o644, cur?.uid ?? 0, cur?.gid ?? 0));
  return 0;
};

// ---- Apache's a2enmod, a2enconf, a2ensite ------------------------------------------------------

/**
 * `a2enmod`/`a2enconf`/`a2ensite [-m] [-q] name...` (apache2 2.4): a link in `*-enabled` to
 * `../*-available/<name>.load|.conf` (a module's `.conf` too), a module's `# Depends:` enabled
 * first, and the marker `/var/lib/apache2/<module|conf|site>/enabled_by_<maint|admin>/<name>`.
 * A conflicting module enabled, or a conf/site whose module dependency is not, fails as a2enmod does.
 */
function a2enTool(kind: "mod" | "conf" | "site"): Tool {
  const obj = kind === "mod" ? "module" : kind;
  const dir = kind === "mod" ? "mods" : kind === "conf" ? "conf" : "sites";
  const sffx = kind === "mod" ? ".load" : ".conf";
  return async (inv) => {
    const sh = inv.sh;
    const { flags, operands } = getopt(inv.argv.slice(1));
    const mode = flags.has("-m") || flags.has("--maintmode") ? "maint" : "admin";
    const avail = `etc/apache2/${dir}-available`;
    const enabled = `etc/apache2/${dir}-enabled`;
    const header = async (file: string, field: "Depends" | "Conflicts"): Promise<string[]> => {
      for (const line of (await readText(sh, `/${file}`)).split("\n")) {
        const m = new RegExp(`^# ${field}:\\s+(.*?)\\s*$`).exec(line);
        if (m) return m[1]!.split(/\s+/);
        if (!/^\s*(?:#.*)?$/.test(line)) break;
      }
      return [];
    };
    const link = async (target: string, at: string): Promise<void> => {
      const real = writePath(sh, `/${at}`);
      if (real !== undefined) sh.fs.put({ path: real, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: `../${dir}-available/${target}` });
    };
    const doit = async (name: string, seen: Set<string>): Promise<boolean> => {
      if (seen.has(name)) return true;
      seen.add(name);
      if (sh.fs.stat(`/${avail}/${name}${sffx}`)?.type !== "file") return false;
      if (kind === "mod") {
        for (const d of await header(`${avail}/${name}.load`, "Depends")) if (!(await doit(d, seen))) return false;
        for (const c of await header(`${avail}/${name}.load`, "Conflicts")) if (sh.fs.stat(`/${enabled}/${c}.load`)) return false;
      } else {
        for (const d of await header(`${avail}/${name}${sffx}`, "Depends")) if (!sh.fs.stat(`/etc/apache2/mods-enabled/${d}.load`)) return false;
      }
      if (sh.fs.stat(`/${enabled}/${name}${sffx}`)) return true;
      await sh.emulate(`a2en${kind} ${name}: links ${enabled}/${name}${sffx}${kind === "mod" && sh.fs.stat(`/${avail}/${name}.conf`) ? ` and ${name}.conf` : ""}, marks it enabled_by_${mode}`, async () => {
        if (kind === "mod" && sh.fs.stat(`/${avail}/${name}.conf`) && !sh.fs.lstat(`/${enabled}/${name}.conf`)) await link(`${name}.conf`, `${enabled}/${name}.conf`);
        await link(`${name}${sffx}`, `${enabled}/${name}${sffx}`);
        const markers = `var/lib/apache2/${obj}/enabled_by_${mode}`;
        let cur = "";
        for (const c of markers.split("/")) {
          cur = cur === "" ? c : `${cur}/${c}`;
          if (!sh.fs.stat(cur)) sh.fs.put({ path: sh.fs.resolve(cur, false) ?? cur, type: "dir", mode: 0o777 & ~sh.umask, uid: 0, gid: 0 });
        }
        sh.fs.writeFile(`${sh.fs.realpath(markers) ?? markers}/${name}`, "", 0o666 & ~sh.umask, 0, 0);
      });
      return true;
    };
    let status: Status = 0;
    for (const arg of operands) {
      const name = arg.endsWith(sffx) ? arg.slice(0, -sffx.length) : arg;
      if (!(await doit(name, new Set()))) status = 1;
    }
    return status;
  };
}

export const MISC_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["xargs", xargs],
  ["a2enmod", a2enTool("mod")],
  ["a2enconf", a2enTool("conf")],
  ["a2ensite", a2enTool("site")],
  ["locale-gen", localeGen],
  ["update-locale", updateLocale],
  ["setcap", setcap],
  ["getcap", getcap],
  ["ucf", ucf],
  ["ucfr", ucfr],
  ["find", find],
  ["logger", () => 0],
  ...DEBCONF_TOOLS,
];
