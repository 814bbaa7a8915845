/**
 * `/var/lib/apt/extended_states`: apt's automatic-installation marks, so that `apt-mark showauto`
 * and `apt-get autoremove` inside the image behave as after an apt installation.
 *
 * apt marks a package automatic when it installed it only to satisfy another's dependency; what
 * the user named, and what the bootstrap installed without apt, carries no mark. The builder
 * says which packages are "manual" ({@link FixupOptions.manual}: the names the user and the
 * profile gave, and for minbase the Essential set with its dependencies, which debootstrap and
 * mmdebstrap install with dpkg alone); every other package of the image gets
 * `Auto-Installed: 1`. Stanzas are sorted by name (apt writes its hash table's order, which no
 * reader depends on); `Architecture` is the package's, the native one for `all`, as apt records.
 * Without apt in the image, or without a manual set, no file is written.
 */
import type { Fixup, FixupContext } from "../types.js";
import type { FixupOptions } from "./options.js";
import { compareBytes, EntrySet } from "./tree.js";

export function extendedStatesFixup(options: FixupOptions = {}): Fixup {
  return {
    name: "extended-states",
    replaces: "apt's automatic-installation marks (what apt-get install records for dependencies)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      const manual = options.manual;
      if (!manual || ctx.fs.stat("var/lib/apt")?.type !== "dir") return set.result();
      const auto = ctx.packages.filter((p) => !manual.has(p.pkg.name)).sort((a, b) => compareBytes(a.pkg.name, b.pkg.name));
      if (auto.length === 0) return set.result();
      const text = auto.map((p) => `Package: ${p.pkg.name}\nArchitecture: ${p.pkg.architecture === "all" ? ctx.arch : p.pkg.architecture}\nAuto-Installed: 1\n\n`).join("");
      set.file("var/lib/apt/extended_states", text);
      return set.result();
    },
  };
}
