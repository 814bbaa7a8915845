/**
 * What the builder may tell the fix-ups beyond the {@link FixupContext}: where apt should look
 * for packages inside the image, and where to report script actions Kiln saw but did not replay.
 */
import type { InstalledPackage } from "../types.js";
import type { ScriptReportEntry } from "./maintainer-scripts.js";
import type { RecordedCalls } from "./script/dpkg-tools.js";

/** One apt source for `/etc/apt/sources.list.d/debian.sources` (deb822 format, apt ≥ 1.1). */
export interface AptSource {
  /** Repository base URL as apt inside the image should use it (`http://deb.debian.org/debian/`). */
  uri: string;
  /** `bookworm`, optionally more (`bookworm-updates`). */
  suites: string[];
  components: string[];
  /** Keyring path *inside the image* (`/usr/share/keyrings/debian-archive-keyring.gpg`). */
  signedBy?: string;
  // No `Trusted: yes`, ever: an image must not trust an unsigned repository for ever because
  // the build used one (kiln.yaml's `keyring: none`). apt inside the image then refuses that
  // repository until its user says otherwise, which is the safe default.
}

/** Options of {@link bookwormFixups}. */
export interface FixupOptions {
  /** Sources for apt inside the image; without it no sources file is written. */
  aptSources?: AptSource[];
  /**
   * Receives one sentence per problem a fix-up met that is not a script effect (a conffile
   * missing from the tree, an alternative whose path does not exist), so the build log can show
   * them. Never receives secrets: only package names, paths and script text.
   */
  warn?: (message: string) => void;
  /** Where the maintainer-scripts fix-up (and fix-ups that report script effects) add the report's entries. */
  report?: ScriptReportEntry[];
  /**
   * The `update-alternatives` and `add-shell` calls the maintainer scripts made, in order: the
   * alternatives and shells fix-ups replay them.
   */
  calls?: RecordedCalls;
  /**
   * The packages apt should not consider automatically installed: the names the user and the
   * profile gave (and what a bootstrap installs without apt). Every other package is marked
   * automatic in `/var/lib/apt/extended_states`; without this set no marks are written.
   */
  manual?: ReadonlySet<string>;
}

/** The text of a control member (`postinst`, ...), if the package has one. */
export function controlText(p: InstalledPackage, member: string): string | undefined {
  return p.controlFiles.get(member)?.toString("utf8");
}
