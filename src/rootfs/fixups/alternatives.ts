/**
 * Replays the `update-alternatives` calls of maintainer scripts (mawk's `awk`, debianutils'
 * `which`, util-linux's `pager`, tar's `rmt`, bash's `builtins.7.gz`, the JRE's loops over its
 * tools, ...), which the maintainer-scripts fix-up recorded with their words expanded, in order.
 *
 * Why: many commands only exist as alternatives (`/usr/bin/awk` is a link to
 * `/etc/alternatives/awk`, itself a link to `/usr/bin/mawk`); without them `awk` is missing,
 * and without `/var/lib/dpkg/alternatives/<name>` a later `apt install gawk` or
 * `update-alternatives --display awk` inside the image would not know the group.
 *
 * What dpkg's update-alternatives (1.21) does at first install, replayed here: each `--install
 * <link> <name> <path> <priority> [--slave <link> <name> <path>]...` adds a choice to the group
 * `<name>` (a later call for the same path replaces it; a later call may rename the group's
 * link). A call whose `<path>` does not exist fails in dpkg and is skipped here. In auto mode each
 * call selects the best choice: the first with the highest priority in the list as dpkg holds it
 * during the call — the saved choices (sorted by path) followed by the new one — so a tie with an
 * already installed choice keeps the installed one, as it does in dpkg. Links:
 * `<link> -> /etc/alternatives/<name> -> <path>`, and the same for every slave whose file exists
 * in the chosen choice (others are left out, like dpkg's "skip creation of ..."). A link path that
 * already holds a real file is not replaced (dpkg: "not replacing ... with a link"). The admin
 * file lists slaves sorted by name and choices sorted by path.
 *
 * `--remove` takes a choice out of its group (a no-op for a group that does not exist, as at a
 * first installation), `--remove-all` drops the group, `--auto` is the mode groups already have.
 * Not replayed (reported through `warn`): `--set` and `--altdir`/`--admindir`/`--root`. Calls
 * whose words the scripts computed from what Kiln cannot know never reach this fix-up: the
 * interpreter reports them.
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import type { FixupOptions } from "./options.js";
import { compareBytes, EntrySet, treePath } from "./tree.js";

/** One `update-alternatives --install` call, parsed. */
export interface AlternativeInstall {
  link: string;
  name: string;
  path: string;
  priority: number;
  slaves: Array<{ link: string; name: string; path: string }>;
}

/** A link group as dpkg keeps it in `/var/lib/dpkg/alternatives/<name>`. */
export interface AlternativeGroup {
  name: string;
  link: string;
  /** Slave name → slave link, in the order they were first declared. */
  slaves: Map<string, string>;
  /** Choice path → priority and slave files. */
  choices: Map<string, { priority: number; slaves: Map<string, string> }>;
  /** The choice auto mode selected at the last `--install` of the group. */
  current: string;
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** Options that take no argument and change nothing we model. */
const FLAG_OPTIONS = new Set(["--quiet", "--verbose", "--debug", "--force", "--skip-auto"]);
/** Options whose argument changes where dpkg would write: not something an image build replays. */
const DIR_OPTIONS = new Set(["--altdir", "--admindir", "--instdir", "--root"]);

/**
 * Parses the words of one `update-alternatives` command (the program name first). Returns the
 * install it performs, `undefined` for other actions (`--display`, `--remove`, ...) together with
 * a reason, as update-alternatives' own argument checks would.
 */
export function parseAlternativesCall(words: readonly string[]): { install?: AlternativeInstall; remove?: { name: string; path?: string }; other?: string; error?: string } {
  let install: AlternativeInstall | undefined;
  let other: string | undefined;
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (FLAG_OPTIONS.has(w)) continue;
    if (w === "--log") {
      i++;
      continue;
    }
    if (DIR_OPTIONS.has(w)) return { error: `${w} is not supported` };
    if (w === "--install") {
      if (install || other) return { error: "two actions in one call" };
      const [link, name, path, prio] = words.slice(i + 1, i + 5);
      if (prio === undefined) return { error: "--install needs <link> <name> <path> <priority>" };
      const err = checkLink(link!, "alternative link") ?? checkName(name!) ?? checkLink(path!, "alternative path");
      if (err) return { error: err };
      if (!/^[+-]?[0-9]+$/.test(prio)) return { error: `priority must be an integer: ${prio}` };
      const priority = Number(prio);
      if (priority < INT_MIN || priority > INT_MAX) return { error: `priority is out of range: ${prio}` };
      if (link === path) return { error: `<link> and <path> can't be the same: ${link}` };
      install = { link: link!, name: name!, path: path!, priority, slaves: [] };
      i += 4;
      continue;
    }
    if (w === "--slave") {
      if (!install) return { error: "--slave only allowed with --install" };
      const [link, name, path] = words.slice(i + 1, i + 4);
      if (path === undefined) return { error: "--slave needs <link> <name> <path>" };
      const err = checkLink(link!, "alternative link") ?? checkName(name!) ?? checkLink(path!, "alternative path");
      if (err) return { error: err };
      if (name === install.name) return { error: `name ${name} is both primary and slave` };
      if (link === install.link) return { error: `link ${link} is both primary and slave` };
      if (install.slaves.some((s) => s.name === name)) return { error: `duplicate slave name ${name}` };
      if (install.slaves.some((s) => s.link === link)) return { error: `duplicate slave link ${link}` };
      install.slaves.push({ link: link!, name: name!, path: path! });
      i += 3;
      continue;
    }
    if ((w === "--remove" || w === "--remove-all") && !install && !other) {
      const [name, path] = words.slice(i + 1, i + 3);
      if (name === undefined || (w === "--remove" && path === undefined)) return { error: `${w} needs its arguments` };
      return { remove: w === "--remove" ? { name, path: path! } : { name } };
    }
    if (w.startsWith("--")) {
      other ??= w;
      continue;
    }
    if (!install && !other) return { error: `unexpected argument ${w}` };
  }
  if (install) return { install };
  return { other: other ?? "no action" };
}

function checkLink(p: string, what: string): string | undefined {
  if (!p.startsWith("/")) return `${what} is not absolute as it should be: ${p}`;
  try {
    treePath(p);
  } catch {
    return `${what} is not a safe path: ${p}`;
  }
  return undefined;
}

function checkName(n: string): string | undefined {
  if (n === "" || /[\s/]/.test(n) || n === "." || n === "..") return `alternative name (${n}) must not contain '/' and spaces`;
  return undefined;
}

/** Whether `path` exists in the tree (symlinks followed), as `stat(2)` would say. */
function exists(fs: RootfsView, path: string): boolean {
  const p = treePath(path);
  return p === "" || fs.stat(p) !== undefined;
}

/**
 * Folds the recorded calls (in the order the scripts made them) into link groups, applying
 * update-alternatives' rules. Calls that would fail in dpkg are reported and skipped.
 */
export function collectAlternatives(calls: ReadonlyArray<{ pkg: string; words: readonly string[] }>, fs: RootfsView, warn: (m: string) => void): AlternativeGroup[] {
  const groups = new Map<string, AlternativeGroup>();
  for (const c of calls) {
    const parsed = parseAlternativesCall(c.words);
    if (parsed.error) {
      warn(`${c.pkg}: update-alternatives call not replayed (${parsed.error})`);
      continue;
    }
    if (parsed.remove) {
      const g = groups.get(parsed.remove.name);
      if (!g) continue;
      if (parsed.remove.path === undefined) groups.delete(g.name);
      else if (g.choices.delete(parsed.remove.path)) {
        if (g.choices.size === 0) groups.delete(g.name);
        else g.current = bestOf([...g.choices.keys()].sort(compareBytes), g);
      }
      continue;
    }
    if (!parsed.install) {
      if (parsed.other !== "--auto") warn(`${c.pkg}: update-alternatives ${parsed.other} not replayed`);
      continue;
    }
    const ins = parsed.install;
    if (!exists(fs, ins.path)) {
      warn(`${c.pkg}: alternative path ${ins.path} doesn't exist; ${ins.name} not installed`);
      continue;
    }
    const clash = findClash(groups, ins);
    if (clash) {
      warn(`${c.pkg}: ${clash}; ${ins.name} not installed`);
      continue;
    }
    let g = groups.get(ins.name);
    if (!g) {
      g = { name: ins.name, link: ins.link, slaves: new Map(), choices: new Map(), current: ins.path };
      groups.set(ins.name, g);
    }
    g.link = ins.link;
    for (const s of ins.slaves) g.slaves.set(s.name, s.link);
    // dpkg loads the saved choices (sorted by path), replaces or appends this one, then picks.
    const order = [...g.choices.keys()].sort(compareBytes);
    if (!g.choices.has(ins.path)) order.push(ins.path);
    g.choices.set(ins.path, { priority: ins.priority, slaves: new Map(ins.slaves.map((s) => [s.name, s.path])) });
    g.current = bestOf(order, g);
  }
  // dpkg drops slaves no choice provides any more when it saves the group.
  for (const g of groups.values()) {
    for (const name of [...g.slaves.keys()]) {
      if (![...g.choices.values()].some((c) => c.slaves.has(name))) g.slaves.delete(name);
    }
  }
  return [...groups.values()];
}

/** update-alternatives refuses a link or name another group already uses. */
function findClash(groups: Map<string, AlternativeGroup>, ins: AlternativeInstall): string | undefined {
  for (const g of groups.values()) {
    if (g.name === ins.name) continue;
    if (g.link === ins.link) return `alternative link ${ins.link} is already managed by ${g.name}`;
    for (const [sn, sl] of g.slaves) {
      if (sn === ins.name) return `alternative ${ins.name} can't be master: it is a slave of ${g.name}`;
      if (sl === ins.link) return `alternative link ${ins.link} is already managed by ${g.name}`;
      for (const s of ins.slaves) {
        if (s.name === sn || s.link === sl) return `alternative ${s.name} (${s.link}) is already managed by ${g.name}`;
      }
    }
    for (const s of ins.slaves) if (s.name === g.name || s.link === g.link) return `alternative ${s.name} can't be slave of ${ins.name}: it is a master alternative`;
  }
  return undefined;
}

/** dpkg's `alternative_get_best`: the first choice of `order` with the highest priority. */
function bestOf(order: readonly string[], g: AlternativeGroup): string {
  let best = order[0]!;
  for (const path of order) if (g.choices.get(path)!.priority > g.choices.get(best)!.priority) best = path;
  return best;
}

/** `/var/lib/dpkg/alternatives/<name>` exactly as update-alternatives writes it. */
export function formatAlternativeGroup(g: AlternativeGroup): string {
  const slaveNames = [...g.slaves.keys()].sort(compareBytes);
  const lines = ["auto", g.link];
  for (const n of slaveNames) lines.push(n, g.slaves.get(n)!);
  lines.push("");
  for (const path of [...g.choices.keys()].sort(compareBytes)) {
    const c = g.choices.get(path)!;
    lines.push(path, String(c.priority));
    for (const n of slaveNames) lines.push(c.slaves.get(n) ?? "");
  }
  lines.push("");
  return `${lines.join("\n")}\n`;
}

/** Creates `link -> target` unless a real (non-symlink) file is already there, as dpkg does. */
function linkUnlessOccupied(set: EntrySet, fs: RootfsView, link: string, target: string, warn: (m: string) => void): void {
  const real = set.realTarget(link);
  const cur = fs.lstat(real);
  if (cur && cur.type !== "symlink") {
    warn(`update-alternatives: not replacing ${link} with a link`);
    return;
  }
  set.symlink(real, target);
}

/** The `update-alternatives` fix-up. */
export function alternativesFixup(options: FixupOptions = {}): Fixup {
  const warn = options.warn ?? (() => {});
  return {
    name: "alternatives",
    replaces: "update-alternatives calls in maintainer scripts (recorded by the maintainer-scripts fix-up)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      for (const g of collectAlternatives(options.calls?.alternatives ?? [], ctx.fs, warn)) {
        const best = g.current;
        const choice = g.choices.get(best)!;
        set.symlink(`etc/alternatives/${g.name}`, best);
        linkUnlessOccupied(set, ctx.fs, g.link, `/etc/alternatives/${g.name}`, warn);
        for (const [sn, sl] of g.slaves) {
          const file = choice.slaves.get(sn);
          if (file === undefined || !exists(ctx.fs, file)) continue;
          set.symlink(`etc/alternatives/${sn}`, file);
          linkUnlessOccupied(set, ctx.fs, sl, `/etc/alternatives/${sn}`, warn);
        }
        set.file(`var/lib/dpkg/alternatives/${g.name}`, formatAlternativeGroup(g));
      }
      return set.result();
    },
  };
}
