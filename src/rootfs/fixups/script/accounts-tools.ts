/**
 * System accounts as Debian's tools make them, on the tree's `/etc/passwd`, `/etc/group`,
 * `/etc/shadow` and `/etc/gshadow` — deterministic, since ids depend only on what the tree
 * already holds:
 *
 * - adduser 3.134 (bookworm): `adduser --system [--group|--ingroup G] [--home H]
 *   [--no-create-home] [--shell S] [--gecos C] [--uid N] name` takes the first free uid in
 *   100–999 (and, with `--group`, the first free gid in 100–999 for a group of the same name),
 *   primary group `nogroup` otherwise, home `/nonexistent` and shell `/usr/sbin/nologin` by
 *   default; it creates the home (0755, owned by the user) unless it exists, is `/nonexistent`,
 *   or `--no-create-home`; a `--gecos` becomes chfn's `full,room,work,home`. `addgroup --system`
 *   takes the first free gid in 100–999. An existing system account is left alone (exit 0).
 *   `adduser user group` adds a member.
 * - shadow 4.13's `useradd -r` / `groupadd -r`: the highest free id below 1000, a user group of
 *   the same name (gid = uid when free), home `/home/<name>` not created, shell `/bin/sh`.
 * - both write `name:!:<day>::::::` to shadow (the build clock's day, not today's) and
 *   `name:!::` to gshadow; passwd and group lines are appended.
 *
 * Checked against the real tools in a debootstrap chroot (test/rootfs/fixups/).
 */
import { getopt, readText, shown, writePath } from "./files.js";
import type { Interpreter, Tool } from "./interpret.js";
import { shadowDay } from "../accounts.js";
import { Unknown } from "./values.js";

interface Db {
  passwd: string[][];
  group: string[][];
}

async function readDb(sh: Interpreter): Promise<Db> {
  const parse = (text: string): string[][] => text.split("\n").filter((l) => l.includes(":")).map((l) => l.split(":"));
  return { passwd: parse(await readText(sh, "/etc/passwd")), group: parse(await readText(sh, "/etc/group")) };
}

const userByName = (db: Db, n: string): string[] | undefined => db.passwd.find((f) => f[0] === n);
const groupByName = (db: Db, n: string): string[] | undefined => db.group.find((f) => f[0] === n);
const uidUsed = (db: Db, id: number): boolean => db.passwd.some((f) => Number(f[2]) === id);
const gidUsed = (db: Db, id: number): boolean => db.group.some((f) => Number(f[2]) === id);

function firstFree(used: (id: number) => boolean, from: number, to: number, down = false): number | undefined {
  if (down) {
    for (let id = to; id >= from; id--) if (!used(id)) return id;
  } else for (let id = from; id <= to; id++) if (!used(id)) return id;
  return undefined;
}

/** Appends a line to one of the account files (kept with its mode and owner). */
async function append(sh: Interpreter, file: string, line: string, mode: number, gidName?: string): Promise<void> {
  const real = writePath(sh, file);
  if (real === undefined) return;
  const cur = sh.fs.stat(real);
  const text = cur?.type === "file" ? await readText(sh, file) : "";
  let gid = cur?.gid ?? 0;
  if (!cur && gidName !== undefined) {
    const g = groupByName(await readDb(sh), gidName);
    if (g) gid = Number(g[2]);
  }
  sh.fs.writeFile(real, `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${line}\n`, cur?.mode ?? mode, cur?.uid ?? 0, gid);
}

/** Rewrites the lines of an account file that `change` returns a replacement for. */
async function rewrite(sh: Interpreter, file: string, change: (fields: string[]) => string[] | undefined): Promise<void> {
  const real = writePath(sh, file);
  const cur = real === undefined ? undefined : sh.fs.stat(real);
  if (real === undefined || cur?.type !== "file") return;
  const text = await readText(sh, file);
  const out = text
    .split("\n")
    .map((l) => {
      if (!l.includes(":")) return l;
      const n = change(l.split(":"));
      return n ? n.join(":") : l;
    })
    .join("\n");
  sh.fs.writeFile(real, out, cur.mode, cur.uid, cur.gid);
}

const hasShadow = (sh: Interpreter): boolean => sh.fs.stat("/etc/shadow")?.type === "file";
const hasGshadow = (sh: Interpreter): boolean => sh.fs.stat("/etc/gshadow")?.type === "file";

async function addGroupLines(sh: Interpreter, name: string, gid: number): Promise<void> {
  await append(sh, "/etc/group", `${name}:x:${gid}:`, 0o644);
  if (hasGshadow(sh)) await append(sh, "/etc/gshadow", `${name}:!::`, 0o640, "shadow");
}

async function addUserLines(sh: Interpreter, f: { name: string; uid: number; gid: number; gecos: string; home: string; shell: string }): Promise<void> {
  await append(sh, "/etc/passwd", `${f.name}:x:${f.uid}:${f.gid}:${f.gecos}:${f.home}:${f.shell}`, 0o644);
  if (hasShadow(sh)) await append(sh, "/etc/shadow", `${f.name}:!:${shadowDay(sh.host.clock)}::::::`, 0o640, "shadow");
}

/** chfn's form of a comment: `full,room,work,home[,other]`. */
function gecosOf(comment: string): string {
  const parts = comment.split(",");
  const fields = [parts[0] ?? "", parts[1] ?? "", parts[2] ?? "", parts[3] ?? ""];
  if (parts.length > 4) fields.push(parts.slice(4).join(","));
  return fields.join(",");
}

/** Creates a home directory as adduser's `create_homedir` does (parents 0755 root). */
function makeHome(sh: Interpreter, home: string, uid: number, gid: number): void {
  const comps = home.split("/").filter(Boolean);
  let cur = "";
  for (let k = 0; k < comps.length; k++) {
    cur = cur === "" ? comps[k]! : `${cur}/${comps[k]}`;
    const real = sh.fs.realpath(cur) ?? cur;
    if (sh.fs.stat(real)) {
      cur = real;
      continue;
    }
    const last = k === comps.length - 1;
    sh.fs.put({ path: cur, type: "dir", mode: 0o755, uid: last ? uid : 0, gid: last ? gid : 0 });
  }
}

const ADDUSER_VALUES = new Set(["--home", "--shell", "--ingroup", "--uid", "--gid", "--gecos", "--comment", "--firstuid", "--lastuid", "--firstgid", "--lastgid", "--conf", "--add-extra-groups", "-c", "--key"]);

function adduserTool(invokedAs: "adduser" | "addgroup"): Tool {
  return async (inv) => {
    const sh = inv.sh;
    const { flags, values, operands } = getopt(inv.argv.slice(1), ADDUSER_VALUES);
    const system = flags.has("--system");
    const group = flags.has("--group") || invokedAs === "addgroup";
    const db = await readDb(sh);
    if (operands.length === 2 && !system && !flags.has("--group") && invokedAs === "adduser") {
      const [user, grp] = operands as [string, string];
      const g = groupByName(db, grp);
      if (!userByName(db, user) || !g) return 1;
      if ((g[3] ?? "").split(",").includes(user)) return 0;
      await sh.emulate(`adds ${user} to the group ${grp}`, () => addMember(sh, user, grp));
      return 0;
    }
    if (operands.length !== 1) return 1;
    const name = operands[0]!;
    const uidOpt = values.get("--uid");
    const gidOpt = values.get("--gid");
    if (group && (invokedAs === "addgroup" || !system)) {
      // addgroup [--system] name
      const existing = groupByName(db, name);
      if (existing) return system && Number(existing[2]) >= 100 && Number(existing[2]) <= 999 ? 0 : 1;
      const gid = gidOpt !== undefined ? Number(gidOpt) : firstFree((id) => gidUsed(db, id), system ? 100 : 1000, system ? 999 : 59999);
      if (gid === undefined || gidUsed(db, gid)) return 1;
      await sh.emulate(`${invokedAs}${system ? " --system" : ""} ${name}: creates the group ${name} (gid ${gid})`, () => addGroupLines(sh, name, gid));
      return 0;
    }
    if (!system) {
      sh.unreproduced(`${shown(inv.argv)} (an interactive, non-system user)`);
      return new Unknown("adduser");
    }
    // adduser --system
    const existing = userByName(db, name);
    if (existing) {
      const uid = Number(existing[2]);
      return uid >= 100 && uid <= 999 && (uidOpt === undefined || Number(uidOpt) === uid) ? 0 : 1;
    }
    const ingroup = values.get("--ingroup");
    let uid: number | undefined;
    let gid: number | undefined;
    let makeGroup = false;
    if (uidOpt !== undefined) uid = Number(uidOpt);
    else uid = firstFree((id) => uidUsed(db, id), Number(values.get("--firstuid") ?? 100), Number(values.get("--lastuid") ?? 999));
    if (uid === undefined || uidUsed(db, uid)) return 1;
    if (flags.has("--group")) {
      makeGroup = !groupByName(db, name);
      gid = makeGroup ? (uidOpt !== undefined ? uid : firstFree((id) => gidUsed(db, id), Number(values.get("--firstgid") ?? 100), Number(values.get("--lastgid") ?? 999))) : Number(groupByName(db, name)![2]);
    } else if (ingroup !== undefined) {
      const g = groupByName(db, ingroup);
      if (!g) return 1;
      gid = Number(g[2]);
    } else if (gidOpt !== undefined) gid = Number(gidOpt);
    else gid = Number(groupByName(db, "nogroup")?.[2] ?? 65534);
    if (gid === undefined) return 1;
    const home = values.get("--home") ?? "/nonexistent";
    const shell = values.get("--shell") ?? "/usr/sbin/nologin";
    const comment = values.get("--gecos") ?? values.get("--comment");
    const gecos = comment === undefined ? "" : gecosOf(comment);
    const createHome = !/^\/+nonexistent(\/|$)/.test(home) && !flags.has("--no-create-home") && !sh.fs.stat(home);
    const g = gid;
    const u = uid;
    await sh.emulate(`adduser --system ${name}: creates the user ${name} (uid ${u}, gid ${g}, home ${home}${createHome ? ", created" : ""})${makeGroup ? ` and its group (gid ${g})` : ""}`, async () => {
      if (makeGroup) await addGroupLines(sh, name, g);
      await addUserLines(sh, { name, uid: u, gid: g, gecos, home, shell });
      if (createHome) makeHome(sh, home, u, g);
    });
    return 0;
  };
}

async function addMember(sh: Interpreter, user: string, grp: string): Promise<void> {
  const add = (list: string): string => (list === "" ? user : `${list},${user}`);
  await rewrite(sh, "/etc/group", (f) => (f[0] === grp ? [f[0]!, f[1]!, f[2]!, add(f[3] ?? "")] : undefined));
  if (hasGshadow(sh)) await rewrite(sh, "/etc/gshadow", (f) => (f[0] === grp ? [f[0]!, f[1]!, f[2] ?? "", add(f[3] ?? "")] : undefined));
}

const USERADD_VALUES = new Set(["-u", "--uid", "-g", "--gid", "-G", "--groups", "-d", "--home-dir", "-s", "--shell", "-c", "--comment", "-K", "--key", "-b", "--base-dir", "-e", "-f", "-k", "-p", "-R", "--root", "-P", "--prefix", "-Z"]);

/** shadow's `useradd` (system accounts only: `-r`). */
const useradd: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, values, operands } = getopt(inv.argv.slice(1), USERADD_VALUES);
  const name = operands[0];
  if (name === undefined || operands.length !== 1) return 2;
  if (!flags.has("-r") && !flags.has("--system")) {
    sh.unreproduced(`${shown(inv.argv)} (a non-system user)`);
    return new Unknown("useradd");
  }
  const db = await readDb(sh);
  if (userByName(db, name)) return 9;
  const uidOpt = values.get("-u") ?? values.get("--uid");
  const uid = uidOpt !== undefined ? Number(uidOpt) : firstFree((id) => uidUsed(db, id), 100, 999, true);
  if (uid === undefined) return 1;
  const groupOpt = values.get("-g") ?? values.get("--gid");
  let gid: number | undefined;
  let makeGroup = false;
  if (groupOpt !== undefined) {
    const g = /^[0-9]+$/.test(groupOpt) ? db.group.find((f) => f[2] === groupOpt) : groupByName(db, groupOpt);
    if (!g) return 6;
    gid = Number(g[2]);
  } else if (flags.has("-N") || flags.has("--no-user-group")) gid = 100;
  else {
    if (groupByName(db, name)) return 9;
    makeGroup = true;
    gid = !gidUsed(db, uid) ? uid : firstFree((id) => gidUsed(db, id), 100, 999, true);
  }
  if (gid === undefined) return 4;
  const home = values.get("-d") ?? values.get("--home-dir") ?? `/home/${name}`;
  const shell = values.get("-s") ?? values.get("--shell") ?? "/bin/sh";
  const comment = values.get("-c") ?? values.get("--comment") ?? "";
  const g = gid;
  await sh.emulate(`useradd -r ${name}: creates the user ${name} (uid ${uid}, gid ${g})`, async () => {
    if (makeGroup) await addGroupLines(sh, name, g);
    await addUserLines(sh, { name, uid, gid: g, gecos: comment, home, shell });
    if (flags.has("-m") || flags.has("--create-home")) makeHome(sh, home, uid, g);
  });
  return 0;
};

/** shadow's `groupadd` (system groups only: `-r`). */
const groupadd: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-g", "--gid", "-K", "--key", "-p", "-R", "--root", "-P"]));
  const name = operands[0];
  if (name === undefined) return 2;
  const db = await readDb(sh);
  if (groupByName(db, name)) return flags.has("-f") || flags.has("--force") ? 0 : 9;
  const gidOpt = values.get("-g") ?? values.get("--gid");
  if (gidOpt === undefined && !flags.has("-r") && !flags.has("--system")) {
    sh.unreproduced(`${shown(inv.argv)} (a non-system group)`);
    return new Unknown("groupadd");
  }
  const gid = gidOpt !== undefined ? Number(gidOpt) : firstFree((id) => gidUsed(db, id), 100, 999, true);
  if (gid === undefined || gidUsed(db, gid)) return 4;
  await sh.emulate(`groupadd ${name}: creates the group ${name} (gid ${gid})`, () => addGroupLines(sh, name, gid));
  return 0;
};

/** `usermod -a -G group[,group] user` (supplementary groups). */
const usermod: Tool = async (inv) => {
  const sh = inv.sh;
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-G", "--groups", "-d", "-s", "-c", "-g", "-u", "-l", "-e", "-f", "-p"]));
  const groups = values.get("-G") ?? values.get("--groups");
  const user = operands[0];
  if (user === undefined || groups === undefined || !(flags.has("-a") || flags.has("--append")) || values.size > 1) {
    sh.unreproduced(shown(inv.argv));
    return new Unknown("usermod");
  }
  const db = await readDb(sh);
  if (!userByName(db, user)) return 6;
  for (const grp of groups.split(",")) {
    const g = groupByName(db, grp);
    if (!g) return 6;
    if ((g[3] ?? "").split(",").includes(user)) continue;
    await sh.emulate(`adds ${user} to the group ${grp}`, () => addMember(sh, user, grp));
  }
  return 0;
};

export const ACCOUNT_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["adduser", adduserTool("adduser")],
  ["addgroup", adduserTool("addgroup")],
  ["useradd", useradd],
  ["groupadd", groupadd],
  ["usermod", usermod],
];
