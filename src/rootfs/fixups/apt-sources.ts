/**
 * `/etc/apt/sources.list.d/debian.sources`, so that `apt update` inside the image knows where
 * packages come from. debootstrap writes `/etc/apt/sources.list` with the mirror it installed
 * from; Debian's own container images use this deb822 file instead (apt ≥ 1.1 reads both). The
 * builder decides what apt inside the image should see (the configured mirror, or a public one
 * when the build used a local mirror), so the sources come from {@link FixupOptions}; without
 * them no file is written.
 */
import { KilnError } from "../../domain/errors.js";
import { DEBIAN_ARCHIVE_KEYRING, type DistributionConfig } from "../../domain/distributions.js";
import type { Fixup, FixupContext } from "../types.js";
import type { AptSource, FixupOptions } from "./options.js";
import { EntrySet } from "./tree.js";

function checked(value: string, what: string): string {
  // One value per line: a newline would let a config value inject apt options.
  if (value === "" || /[\n\r]/.test(value) || /\s/.test(value)) throw new KilnError("badRequest", `apt source ${what} ${JSON.stringify(value)} is not a single word`);
  return value;
}

/** The deb822 text of the sources. */
export function formatAptSources(sources: readonly AptSource[]): string {
  return sources
    .map((s) => {
      if (s.suites.length === 0 || s.components.length === 0) throw new KilnError("badRequest", "an apt source needs at least one suite and one component");
      let text = "Types: deb\n";
      text += `URIs: ${checked(s.uri, "URI")}\n`;
      text += `Suites: ${s.suites.map((x) => checked(x, "suite")).join(" ")}\n`;
      text += `Components: ${s.components.map((x) => checked(x, "component")).join(" ")}\n`;
      if (s.signedBy !== undefined) text += `Signed-By: ${checked(s.signedBy, "keyring")}\n`;
      return text;
    })
    .join("\n");
}

/**
 * The source apt inside the image should use for a configured distribution: its mirror, suite and
 * components; Debian's archive keyring (which debian-archive-keyring installs at the same path in
 * the image) when the distribution is verified with it. `keyring: none` (an unsigned mirror)
 * gives no `Trusted: yes`: apt inside the image verifies that repository like any other.
 * A `file://` mirror means nothing inside a container: the builder should pass a public mirror
 * instead (or no sources) for those.
 */
export function aptSourceFor(dist: Pick<DistributionConfig, "mirror" | "suite" | "components" | "keyring">): AptSource {
  const source: AptSource = { uri: dist.mirror, suites: [dist.suite], components: [...dist.components] };
  if (dist.keyring === DEBIAN_ARCHIVE_KEYRING) source.signedBy = DEBIAN_ARCHIVE_KEYRING;
  return source;
}

/** The apt sources fix-up. */
export function aptSourcesFixup(options: FixupOptions = {}): Fixup {
  return {
    name: "apt-sources",
    replaces: "debootstrap's setup_apt_sources",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      if (options.aptSources && options.aptSources.length > 0 && ctx.fs.stat("etc/apt")?.type === "dir") {
        set.file("etc/apt/sources.list.d/debian.sources", formatAptSources(options.aptSources));
      }
      return set.result();
    },
  };
}
