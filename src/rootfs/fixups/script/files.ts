/**
 * File operations as the coreutils a maintainer script calls would do them (`mkdir`, `install`,
 * `ln`, `chown`, `chgrp`, `chmod`, `rm`, `rmdir`, `touch`, `cp`, `mv`, writes through `>`), on
 * the interpreter's overlay. Each is recorded as an emulated effect with its expanded words, or —
 * under a condition Kiln cannot decide — reported and not applied.
 */
import { bufferContent, type FsEntry } from "../../types.js";
import type { Interpreter, Invocation, Tool } from "./interpret.js";
import { readContent } from "./overlay.js";
import { baseName, joinPath, parentOf } from "../tree.js";
import { isUnknown, type Status, type Value } from "./values.js";

/** Splits `-abc` style options from operands; `withValue` options take the next word. */
export function getopt(args: readonly string[], withValue: ReadonlySet<string> = new Set()): { flags: Set<string>; values: Map<string, string>; operands: string[] } {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const operands: string[] = [];
  let options = true;
  for (let k = 0; k < args.length; k++) {
    const a = args[k]!;
    if (options && a === "--") {
      options = false;
      continue;
    }
    if (options && a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a : a.slice(0, eq);
      if (eq >= 0) values.set(name, a.slice(eq + 1));
      else if (withValue.has(name)) values.set(name, args[++k] ?? "");
      else flags.add(name);
      continue;
    }
    if (options && a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const f = `-${a[j]}`;
        if (withValue.has(f)) {
          values.set(f, j + 1 < a.length ? a.slice(j + 1) : (args[++k] ?? ""));
          break;
        }
        flags.add(f);
      }
      continue;
    }
    operands.push(a);
  }
  return { flags, values, operands };
}

/** How a command line is shown in the report: its expanded words. */
export function shown(argv: readonly string[]): string {
  return argv.map((a) => (a === "" || /[\s'"\\$`]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(" ");
}

/** The real path a command writes `path` at: its directory resolved, the last component kept. */
export function writePath(sh: Interpreter, path: string): string | undefined {
  const abs = path.startsWith("/") ? path : `/${joinPath(sh.cwd, path)}`;
  const trimmed = abs.replace(/\/+$/, "") || "/";
  const dir = sh.fs.resolve(parentOf(trimmed.slice(1)), true);
  if (dir === undefined || (dir !== "" && sh.fs.lstat(dir)?.type !== "dir")) return undefined;
  const name = baseName(trimmed);
  if (name === "" || name === "." || name === "..") return undefined;
  return joinPath(dir, name);
}

/** A user's uid (and login group) from the tree's `/etc/passwd`, or a number given as such. */
export async function lookupUser(sh: Interpreter, name: string): Promise<{ uid: number; gid: number } | undefined> {
  if (/^[0-9]+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  for (const line of (await readText(sh, "/etc/passwd")).split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** A group's gid from the tree's `/etc/group`, or a number given as such. */
export async function lookupGroup(sh: Interpreter, name: string): Promise<number | undefined> {
  if (/^[0-9]+$/.test(name)) return Number(name);
  for (const line of (await readText(sh, "/etc/group")).split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 3) return Number(f[2]);
  }
  return undefined;
}

/** A text file of the tree, or "" when it is not a regular file. */
export async function readText(sh: Interpreter, path: string): Promise<string> {
  const e = sh.fs.stat(path, sh.cwd);
  if (e?.type !== "file") return "";
  return (await sh.fs.readFile(path, sh.cwd)).toString("utf8");
}

/** `owner[:group]`, `owner.group`, `:group`, `owner:` (the user's login group). */
async function parseOwner(sh: Interpreter, spec: string): Promise<{ uid?: number; gid?: number } | string> {
  const m = /^([^:.]*)(?:[:.](.*))?$/.exec(spec);
  if (!m) return `invalid owner ${spec}`;
  const [, user, group] = m;
  const out: { uid?: number; gid?: number } = {};
  if (user) {
    const u = await lookupUser(sh, user);
    if (!u) return `invalid user: '${spec}'`;
    out.uid = u.uid;
    if (group === "") out.gid = u.gid;
  }
  if (group) {
    const g = await lookupGroup(sh, group);
    if (g === undefined) return `invalid group: '${spec}'`;
    out.gid = g;
  }
  return out;
}

/** A mode from `chmod`'s syntax (octal, or symbolic like `u+s`, `go-w`, `a=rx,u+w`), applied to `cur`. */
export function applyMode(spec: string, cur: number, isDir: boolean, umask: number): number | undefined {
  if (/^[0-7]+$/.test(spec) && parseInt(spec, 8) <= 0o7777) {
    const n = parseInt(spec, 8);
    // GNU chmod keeps a directory's set-id bits unless the octal mode has five digits (`00755`,
    // `04755`) or sets them itself (`2755`).
    return isDir && spec.length < 5 ? (cur & 0o6000) | n : n;
  }
  let mode = cur;
  for (const clause of spec.split(",")) {
    const m = /^([ugoa]*)([-+=])([rwxXst]*|[ugo])$/.exec(clause);
    if (!m) return undefined;
    const [, whoText, op, permText] = m;
    const who = whoText === "" ? "a" : whoText!;
    let bits = 0;
    for (const p of permText!) {
      if (p === "r") bits |= 0o444;
      else if (p === "w") bits |= 0o222;
      else if (p === "x") bits |= 0o111;
      else if (p === "X") bits |= isDir || (cur & 0o111) !== 0 ? 0o111 : 0;
      else if (p === "s") bits |= 0o6000;
      else if (p === "t") bits |= 0o1000;
    }
    let mask = 0;
    if (who.includes("u") || who.includes("a")) mask |= 0o4700;
    if (who.includes("g") || who.includes("a")) mask |= 0o2070;
    if (who.includes("o") || who.includes("a")) mask |= 0o1007;
    let eff = bits & mask;
    // Without a "who", + and = respect the umask (chmod(1)).
    if (whoText === "") eff &= ~umask | 0o7000;
    if (op === "+") mode |= eff;
    else if (op === "-") mode &= ~eff;
    else mode = (mode & ~mask) | eff;
  }
  return mode & 0o7777;
}

function fail(inv: Invocation, message: string): Status {
  void message;
  return 1;
}

/** Replaces an entry's metadata in the overlay (content and type kept). */
function changeEntry(sh: Interpreter, real: string, change: Partial<Pick<FsEntry, "mode" | "uid" | "gid" | "xattrs">>): void {
  const e = sh.fs.lstat(real)!;
  sh.fs.put({ ...e, ...change, path: real });
}

const mkdir: Tool = async (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-m", "--mode"]));
  const parents = flags.has("-p") || flags.has("--parents");
  const modeSpec = values.get("-m") ?? values.get("--mode");
  const sh = inv.sh;
  let status: Status = 0;
  for (const op of operands) {
    const made = await makeDirs(sh, op, parents, modeSpec);
    if (typeof made === "string") {
      status = 1;
      continue;
    }
    if (made.length > 0) {
      const mode = modeSpec === undefined ? 0o777 & ~sh.umask : applyMode(modeSpec, 0o777 & ~sh.umask, true, sh.umask);
      if (mode === undefined) return 1;
      await sh.emulate(`mkdir ${made.map((m) => `/${m}`).join(" ")}${modeSpec !== undefined ? ` (mode ${mode.toString(8)})` : ""}`, () => {
        for (const [k, m] of made.entries()) {
          const last = k === made.length - 1;
          sh.fs.put({ path: m, type: "dir", mode: last ? mode : 0o777 & ~sh.umask, uid: 0, gid: 0 });
        }
      });
    }
  }
  return status;
};

/** The directories `mkdir [-p]` would create (parents first), or an error. */
async function makeDirs(sh: Interpreter, path: string, parents: boolean, modeSpec: string | undefined): Promise<string[] | string> {
  void modeSpec;
  const abs = path.startsWith("/") ? path : `/${joinPath(sh.cwd, path)}`;
  const comps = abs.split("/").filter((c) => c !== "" && c !== ".");
  const made: string[] = [];
  let real = "";
  for (let k = 0; k < comps.length; k++) {
    const c = comps[k]!;
    const last = k === comps.length - 1;
    if (c === "..") {
      real = parentOf(real);
      continue;
    }
    const next = joinPath(real, c);
    if (made.length === 0) {
      const e = sh.fs.stat(next);
      if (e) {
        if (e.type !== "dir") return `${abs}: Not a directory`;
        if (last && !parents) return `${abs}: File exists`;
        real = sh.fs.realpath(next) ?? next;
        continue;
      }
      if (sh.fs.lstat(next)?.type === "symlink") return `${abs}: dangling symlink`;
    }
    if (!last && !parents) return `${abs}: No such file or directory`;
    made.push(next);
    real = next;
  }
  return made;
}

/** `install -d [-m mode] [-o owner] [-g group] dir...` and `install [-m] [-o] [-g] src dest`. */
const install: Tool = async (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-m", "-o", "-g", "--mode", "--owner", "--group", "-t", "--target-directory", "-S", "--suffix"]));
  const sh = inv.sh;
  const modeSpec = values.get("-m") ?? values.get("--mode");
  const ownerName = values.get("-o") ?? values.get("--owner");
  const groupName = values.get("-g") ?? values.get("--group");
  const uid = ownerName === undefined ? 0 : (await lookupUser(sh, ownerName))?.uid;
  const gid = groupName === undefined ? 0 : await lookupGroup(sh, groupName);
  if (uid === undefined || gid === undefined) return 1;
  if (flags.has("-d") || flags.has("--directory")) {
    const mode = modeSpec === undefined ? 0o755 : applyMode(modeSpec, 0o755, true, 0);
    if (mode === undefined) return 1;
    for (const op of operands) {
      const made = await makeDirs(sh, op, true, undefined);
      if (typeof made === "string") return 1;
      const real = made.length > 0 ? made[made.length - 1]! : sh.fs.realpath(op, sh.cwd);
      if (real === undefined) return 1;
      const cur = sh.fs.lstat(real);
      if (made.length === 0 && cur && cur.mode === mode && cur.uid === uid && cur.gid === gid) continue;
      await sh.emulate(`${shown(["install", "-d", ...(modeSpec ? ["-m", modeSpec] : []), ...(ownerName ? ["-o", ownerName] : []), ...(groupName ? ["-g", groupName] : []), op])}`, () => {
        for (const m of made.slice(0, -1)) sh.fs.put({ path: m, type: "dir", mode: 0o755, uid: 0, gid: 0 });
        sh.fs.put({ path: real, type: "dir", mode, uid, gid });
      });
    }
    return 0;
  }
  const target = values.get("-t") ?? values.get("--target-directory");
  const sources = target !== undefined ? operands : operands.slice(0, -1);
  const dest = target ?? operands[operands.length - 1];
  if (dest === undefined || sources.length === 0) return 1;
  const mode = modeSpec === undefined ? 0o755 : applyMode(modeSpec, 0o755, false, 0);
  if (mode === undefined) return 1;
  for (const src of sources) {
    const from = sh.fs.stat(src, sh.cwd);
    if (from?.type !== "file") return 1;
    const destDir = sh.fs.stat(dest, sh.cwd)?.type === "dir";
    const to = writePath(sh, destDir ? `${dest}/${baseName(src)}` : dest);
    if (to === undefined) return 1;
    await sh.emulate(`installs ${src} as /${to} (mode ${mode.toString(8)})`, () => sh.fs.put({ path: to, type: "file", mode, uid, gid, content: from.content! }));
  }
  return 0;
};

const ln: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1), new Set(["-t", "--target-directory", "-S", "--suffix"]));
  const sh = inv.sh;
  const symbolic = flags.has("-s") || flags.has("--symbolic");
  const force = flags.has("-f") || flags.has("--force");
  const noDeref = flags.has("-n") || flags.has("-T") || flags.has("--no-dereference") || flags.has("--no-target-directory");
  if (operands.length === 0) return 1;
  const target = operands[0]!;
  let name = operands[1] ?? baseName(target);
  if (operands.length > 2) return 1;
  // An existing directory (or a link to one, unless -n) as the link name means "inside it".
  const existing = sh.fs.lstat(name, sh.cwd);
  const followed = sh.fs.stat(name, sh.cwd);
  if (existing?.type === "dir" || (!noDeref && existing?.type === "symlink" && followed?.type === "dir")) name = `${name.replace(/\/+$/, "")}/${baseName(target)}`;
  const real = writePath(sh, name);
  if (real === undefined) return 1;
  const cur = sh.fs.lstat(real);
  if (cur && !force) return 1;
  if (cur?.type === "dir") return 1;
  if (!symbolic) {
    const t = sh.fs.stat(target, sh.cwd);
    if (t?.type !== "file") return 1;
    await sh.emulate(`ln ${shown([target, `/${real}`])}`, () => sh.fs.put({ ...t, path: real }));
    return 0;
  }
  if (cur?.type === "symlink" && cur.linkname === target) return 0;
  await sh.emulate(`ln -s ${shown([target, `/${real}`])}`, () => sh.fs.put({ path: real, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: target }));
  return 0;
};

/** Every real path under `real` (itself first), for `-R`. */
function walk(sh: Interpreter, real: string): string[] {
  const out = [real];
  if (sh.fs.lstat(real)?.type === "dir") for (const n of sh.fs.readdir(real)) out.push(...walk(sh, joinPath(real, n)));
  return out;
}

function ownership(kind: "chown" | "chgrp"): Tool {
  return async (inv) => {
    const { flags, operands } = getopt(inv.argv.slice(1), new Set(["--reference", "--from"]));
    const sh = inv.sh;
    const [spec, ...paths] = operands;
    if (spec === undefined || paths.length === 0) return 1;
    const owner = await parseOwner(sh, kind === "chgrp" ? `:${spec}` : spec);
    if (typeof owner === "string") return fail(inv, owner);
    const recursive = flags.has("-R") || flags.has("--recursive");
    let status: Status = 0;
    for (const p of paths) {
      const real = flags.has("-h") || flags.has("--no-dereference") ? sh.fs.resolve(p, false, sh.cwd) : sh.fs.realpath(p, sh.cwd);
      if (real === undefined || !sh.fs.lstat(real)) {
        status = 1;
        continue;
      }
      const targets = recursive ? walk(sh, real) : [real];
      const changes: FsEntry[] = [];
      for (const t of targets) {
        const e = sh.fs.lstat(t)!;
        // Linux clears set-user-id, and set-group-id with group execute, when a file's owner is
        // set — by root too (chown(2)), even to the same owner.
        const mode = e.type === "file" ? e.mode & ~0o4000 & ~((e.mode & 0o010) !== 0 ? 0o2000 : 0) : e.mode;
        const next = { ...e, path: t, uid: owner.uid ?? e.uid, gid: owner.gid ?? e.gid, mode };
        if (next.uid !== e.uid || next.gid !== e.gid || next.mode !== e.mode) changes.push(next);
      }
      if (changes.length === 0) continue;
      await sh.emulate(`${kind}${recursive ? " -R" : ""} ${shown([spec, p])}`, () => {
        for (const c of changes) sh.fs.put(c);
      });
    }
    return status;
  };
}

const chmod: Tool = async (inv) => {
  const args = inv.argv.slice(1);
  const sh = inv.sh;
  // A symbolic mode like -x looks like an option: take the first non -R/-f/-v word as the mode.
  let recursive = false;
  const rest: string[] = [];
  for (const a of args) {
    if (a === "-R" || a === "--recursive") recursive = true;
    else if (a === "-f" || a === "-v" || a === "-c" || a === "--silent" || a === "--quiet") continue;
    else rest.push(a);
  }
  const [spec, ...paths] = rest;
  if (spec === undefined || paths.length === 0) return 1;
  let status: Status = 0;
  for (const p of paths) {
    const real = sh.fs.realpath(p, sh.cwd);
    if (real === undefined) {
      status = 1;
      continue;
    }
    const targets = recursive ? walk(sh, real) : [real];
    const changes: Array<[string, number]> = [];
    for (const t of targets) {
      const e = sh.fs.lstat(t)!;
      if (e.type === "symlink") continue;
      const mode = applyMode(spec, e.mode, e.type === "dir", sh.umask);
      if (mode === undefined) return 1;
      if (mode !== e.mode) changes.push([t, mode]);
    }
    if (changes.length === 0) continue;
    await sh.emulate(`chmod${recursive ? " -R" : ""} ${shown([spec, p])}`, () => {
      for (const [t, mode] of changes) changeEntry(sh, t, { mode });
    });
  }
  return status;
};

const rm: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const sh = inv.sh;
  const recursive = flags.has("-r") || flags.has("-R") || flags.has("--recursive");
  const force = flags.has("-f") || flags.has("--force");
  let status: Status = 0;
  for (const p of operands) {
    const real = sh.fs.resolve(p, false, sh.cwd);
    const e = real === undefined ? undefined : sh.fs.lstat(real);
    if (!e || real === undefined) {
      if (!force) status = 1;
      continue;
    }
    if (e.type === "dir" && !recursive) {
      status = 1;
      continue;
    }
    await sh.emulate(`rm${recursive ? " -r" : ""} /${real}`, () => sh.fs.remove(real));
  }
  return status;
};

const rmdir: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const sh = inv.sh;
  const ignore = flags.has("--ignore-fail-on-non-empty");
  const parents = flags.has("-p") || flags.has("--parents");
  let status: Status = 0;
  for (const p of operands) {
    let real = sh.fs.resolve(p, false, sh.cwd);
    while (real !== undefined && real !== "") {
      const e = sh.fs.lstat(real);
      if (e?.type !== "dir") {
        status = 1;
        break;
      }
      if (sh.fs.readdir(real).length > 0) {
        if (!ignore) status = 1;
        break;
      }
      const r = real;
      await sh.emulate(`rmdir /${r}`, () => sh.fs.remove(r));
      if (!parents) break;
      real = parentOf(real);
    }
  }
  return status;
};

const touch: Tool = async (inv) => {
  const { operands } = getopt(inv.argv.slice(1), new Set(["-d", "-t", "-r", "--date", "--reference"]));
  const sh = inv.sh;
  for (const p of operands) {
    if (sh.fs.stat(p, sh.cwd)) continue;
    const real = writePath(sh, p);
    if (real === undefined) return 1;
    await sh.emulate(`touch /${real}`, () => sh.fs.writeFile(real, "", 0o666 & ~sh.umask, 0, 0));
  }
  return 0;
};

/**
 * `mktemp [-d] [-t | -p DIR | --tmpdir[=DIR]] [TEMPLATE]`: a new empty file (0600) or directory
 * (0700) whose name is the template's trailing Xs replaced. The real name is random; Kiln's is
 * the first free one of a fixed sequence, so that the same build makes the same tree. Scripts
 * remove their temporary files; one left behind is in /tmp, which image builders empty.
 */
const mktemp: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-p"]));
  const template = operands[0] ?? "tmp.XXXXXXXXXX";
  const xs = /X{3,}$/.exec(template)?.[0].length;
  if (xs === undefined) return 1;
  const envTmp = sh.getVar("TMPDIR");
  const tmpdir = typeof envTmp === "string" && envTmp !== "" ? envTmp : "/tmp";
  const inTmp = operands.length === 0 || flags.has("-t") || flags.has("--tmpdir") || values.has("--tmpdir") || values.has("-p");
  const dir = values.get("--tmpdir") || values.get("-p") || (inTmp ? tmpdir : "");
  const stem = template.slice(0, -xs);
  for (let n = 0; n < 1000; n++) {
    const name = `${stem}${n.toString(36).padStart(xs, "0")}`;
    const path = dir === "" ? name : `${dir.replace(/\/+$/, "")}/${name}`;
    if (sh.fs.lstat(path, sh.cwd)) continue;
    const real = writePath(sh, path);
    if (real === undefined) return 1;
    const isDir = flags.has("-d") || flags.has("--directory");
    await sh.emulate(`mktemp: creates ${path}`, () => {
      if (isDir) sh.fs.put({ path: real, type: "dir", mode: 0o700, uid: 0, gid: 0 });
      else sh.fs.writeFile(real, "", 0o600, 0, 0);
    });
    inv.out.write(`${path}\n`);
    return 0;
  }
  return 1;
};

/** `cp [-p|-a] src dest`, files (and `-r`/`-a` trees). */
const cp: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1), new Set(["-t", "--target-directory", "-S", "--suffix"]));
  const sh = inv.sh;
  const keep = flags.has("-p") || flags.has("-a") || flags.has("--archive") || flags.has("--preserve");
  const recursive = flags.has("-r") || flags.has("-R") || flags.has("-a") || flags.has("--archive") || flags.has("--recursive");
  if (operands.length < 2) return 1;
  const dest = operands[operands.length - 1]!;
  for (const src of operands.slice(0, -1)) {
    const from = sh.fs.stat(src, sh.cwd);
    if (!from) return 1;
    if (from.type === "dir" && !recursive) return 1;
    const destIsDir = sh.fs.stat(dest, sh.cwd)?.type === "dir";
    const to = writePath(sh, destIsDir ? `${dest}/${baseName(src)}` : dest);
    if (to === undefined) return 1;
    const fromReal = sh.fs.realpath(src, sh.cwd)!;
    await sh.emulate(`cp${keep ? " -p" : ""}${recursive ? " -r" : ""} ${shown([src, `/${to}`])}`, () => copyTree(sh, fromReal, to, keep));
  }
  return 0;
};

function copyTree(sh: Interpreter, from: string, to: string, keep: boolean): void {
  const e = sh.fs.lstat(from)!;
  const existing = sh.fs.lstat(to);
  const meta = keep ? { mode: e.mode, uid: e.uid, gid: e.gid } : existing && existing.type === e.type ? { mode: existing.mode, uid: existing.uid, gid: existing.gid } : { mode: e.mode & ~sh.umask, uid: 0, gid: 0 };
  if (e.type === "dir") {
    sh.fs.put({ path: to, type: "dir", ...meta });
    for (const n of sh.fs.readdir(from)) copyTree(sh, joinPath(from, n), joinPath(to, n), keep);
    return;
  }
  if (e.type === "symlink") {
    sh.fs.put({ path: to, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: e.linkname! });
    return;
  }
  const content = e.type === "hardlink" ? sh.fs.lstat(e.linkname!)?.content : e.content;
  sh.fs.put({ path: to, type: "file", ...meta, content: content! });
}

const mv: Tool = async (inv) => {
  const { operands } = getopt(inv.argv.slice(1), new Set(["-t", "--target-directory", "-S", "--suffix"]));
  const sh = inv.sh;
  if (operands.length !== 2) return 1;
  const [src, dest] = operands as [string, string];
  const fromReal = sh.fs.resolve(src, false, sh.cwd);
  if (fromReal === undefined || !sh.fs.lstat(fromReal)) return 1;
  const destIsDir = sh.fs.stat(dest, sh.cwd)?.type === "dir";
  const to = writePath(sh, destIsDir ? `${dest}/${baseName(src)}` : dest);
  if (to === undefined) return 1;
  await sh.emulate(`mv ${shown([src, `/${to}`])}`, () => {
    copyTree(sh, fromReal, to, true);
    sh.fs.remove(fromReal);
  });
  return 0;
};

/** `cat [file...]`: the files' bytes (or the input) on the output. */
const cat: Tool = async (inv) => {
  const files = inv.argv.slice(1).filter((a) => a !== "-" && !a.startsWith("-"));
  if (files.length === 0) {
    inv.out.write(inv.stdin ?? "");
    return 0;
  }
  let status: Status = 0;
  for (const f of files) {
    // The host's /dev/null, not the tree's (which has no /dev): empty.
    if (f === "/dev/null") continue;
    const e = inv.sh.fs.stat(f, inv.sh.cwd);
    if (e?.type !== "file") {
      status = 1;
      continue;
    }
    inv.out.write((await inv.sh.fs.readFile(f, inv.sh.cwd)).toString("utf8"));
  }
  return status;
};

/**
 * Writes text a command produced into a file of the tree (`> file`, `>> file`, `tee`): an
 * existing file keeps its mode and owner, a new one is 0666 minus the umask, root's.
 */
export async function writeTextFile(sh: Interpreter, path: string, content: Value, append: boolean, effect: string): Promise<void> {
  if (isUnknown(content)) {
    sh.unreproduced(`${effect} with content not known at build time (${content.why})`);
    return;
  }
  const real = writePath(sh, path);
  if (real === undefined) {
    sh.unreproduced(`${effect}, whose directory does not exist`);
    return;
  }
  const cur = sh.fs.stat(real);
  if (cur && cur.type !== "file") {
    sh.unreproduced(`${effect}, which is a ${cur.type}`);
    return;
  }
  const target = sh.fs.realpath(real) ?? real;
  const before = cur && append ? (await readContent(cur.content!)).toString("utf8") : "";
  if (append && content === "") return;
  await sh.emulate(effect, () => {
    if (cur) sh.fs.put({ ...cur, path: target, content: bufferContent(before + content) });
    else sh.fs.writeFile(real, content, 0o666 & ~sh.umask, 0, 0);
  });
}


/** `tee [-a] file...`: the input to the files and to the output. */
const tee: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const input = inv.stdin ?? "";
  for (const f of operands) await writeTextFile(inv.sh, f, input, flags.has("-a") || flags.has("--append"), `writes ${f}`);
  inv.out.write(input);
  return 0;
};

export const FILE_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["mkdir", mkdir],
  ["install", install],
  ["ln", ln],
  ["chown", ownership("chown")],
  ["chgrp", ownership("chgrp")],
  ["chmod", chmod],
  ["rm", rm],
  ["rmdir", rmdir],
  ["touch", touch],
  ["mktemp", mktemp],
  ["cp", cp],
  ["mv", mv],
  ["cat", cat],
  ["tee", tee],
];
