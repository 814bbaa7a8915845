/**
 * `/etc/shells` and `/var/lib/shells.state`, as debianutils' `update-shells` leaves them.
 *
 * debianutils' postinst copies `/usr/share/debianutils/shells` to `/etc/shells` on first install
 * and runs `update-shells` (again whenever a package adds a file to
 * `/usr/share/debianutils/shells.d`, through a file trigger). `update-shells` collects the shells
 * of the template and of every `shells.d` file (in C order; text after `#` ignored), each also
 * under its canonical directory (`/bin/bash` gives `/usr/bin/bash` on merged /usr), keeps the
 * existing lines of `/etc/shells`, appends the new ones, and records them all in the state file.
 * Replayed once with every package present, which gives what the last trigger run leaves.
 *
 * Packages that still call `add-shell <shell>...` in their postinst get those lines appended
 * afterwards, each with its canonical-directory twin, as add-shell does (the maintainer-scripts
 * fix-up records the calls; one whose arguments Kiln cannot know is reported there).
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import type { FixupOptions } from "./options.js";
import { baseName, compareBytes, EntrySet, joinPath, parentOf, readText, regularFile, treePath } from "./tree.js";

const TEMPLATE = "usr/share/debianutils/shells";
const SHELLS_D = "usr/share/debianutils/shells.d";
const UPDATE_SHELLS = "usr/sbin/update-shells";

/** `dpkg-realpath --root ROOT $(dirname x)`/`basename x`: `/bin/bash` → `/usr/bin/bash`. */
function canonicalShell(fs: RootfsView, shell: string): string | undefined {
  if (!shell.startsWith("/")) return undefined;
  let dir: string;
  try {
    dir = treePath(parentOf(shell));
  } catch {
    return undefined;
  }
  const real = dir === "" ? "" : fs.realpath(dir);
  if (real === undefined) return undefined;
  return `/${joinPath(real, baseName(shell))}`;
}

/** The shells `update-shells` considers packaged, in its order (duplicates kept where it keeps them). */
export async function packagedShells(fs: RootfsView): Promise<string[]> {
  const files = [TEMPLATE];
  for (const name of fs.readdir(SHELLS_D).sort(compareBytes)) files.push(`${SHELLS_D}/${name}`);
  // bookworm's update-shells keeps a shell listed twice (`/bin/bash` and, from another file,
  // `/usr/bin/bash`); trixie's adds only what it does not have yet. The tree's own program says which.
  const once = ((await readText(fs, UPDATE_SHELLS)) ?? "").includes('hashset_contains "$PKG_SHELLS" "$line"');
  const out: string[] = [];
  const add = (shell: string): void => {
    if (!once || !out.includes(shell)) out.push(shell);
  };
  for (const f of files) {
    if (!regularFile(fs, f)) continue;
    const text = (await fs.readFile(f)).toString("utf8");
    for (const raw of text.split("\n")) {
      const line = raw.split("#")[0]!;
      if (line === "") continue;
      add(line);
      const real = canonicalShell(fs, line);
      if (real !== undefined && real !== line) add(real);
    }
  }
  return out;
}

/**
 * `update-shells` on a tree: `/etc/shells` (or the template) and the state file as input, the new
 * `/etc/shells` and state as output.
 */
export function updateShells(source: string, pkgShells: readonly string[], stateShells: readonly string[]): { shells: string; state: string } {
  const pkg = new Set(pkgShells);
  const state = new Set(stateShells);
  const etc = new Set<string>();
  const out: string[] = [];
  const lines = source.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (const line of lines) {
    const shell = line.split("#")[0]!;
    if (shell === "" || pkg.has(shell) || !state.has(shell)) {
      if (shell === "" || !etc.has(shell)) {
        out.push(line);
        etc.add(shell);
      }
    }
  }
  for (const shell of pkgShells) {
    if (!etc.has(shell) && !state.has(shell)) out.push(shell);
  }
  const text = (xs: readonly string[]): string => xs.map((x) => `${x}\n`).join("");
  return { shells: text(out), state: text(pkgShells) };
}

/** The /etc/shells fix-up. */
export function shellsFixup(options: FixupOptions = {}): Fixup {
  const warn = options.warn ?? (() => {});
  return {
    name: "shells",
    replaces: "debianutils postinst and trigger (update-shells), add-shell calls in postinst scripts",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      const template = regularFile(fs, TEMPLATE);
      const current = regularFile(fs, "etc/shells");
      let shells: string | undefined;
      let mode = 0o644;
      if (template) {
        const source = current ?? template;
        mode = source.mode;
        const stateText = (await readText(fs, "var/lib/shells.state")) ?? "";
        const state = stateText.split("\n").map((l) => l.split("#")[0]!).filter((l) => l !== "");
        const sourceText = (await fs.readFile(current ? "etc/shells" : TEMPLATE)).toString("utf8");
        const updated = updateShells(sourceText, await packagedShells(fs), state);
        shells = updated.shells;
        set.file("var/lib/shells.state", updated.state);
      } else if (current) {
        shells = (await fs.readFile("etc/shells")).toString("utf8");
        mode = current.mode;
      }
      let added = false;
      for (const c of options.calls?.shells ?? []) {
        {
          for (const sh of c.words.slice(1)) {
            shells ??= "";
            for (const j of [sh, canonicalShell(fs, sh) ?? sh]) {
              if (!shells.split("\n").includes(j)) {
                shells += `${j}\n`;
                added = true;
              }
            }
          }
        }
      }
      if (shells !== undefined && (template || added)) set.file("etc/shells", shells, mode);
      return set.result();
    },
  };
}
