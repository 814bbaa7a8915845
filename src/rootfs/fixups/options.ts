/**
 * What the builder may tell the fix-ups beyond the {@link FixupContext}: where apt should look
 * for packages inside the image, and where to report script actions Kiln saw but did not replay.
 */
import type { InstalledPackage } from "../types.js";

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
   * Receives one sentence per maintainer-script action Kiln found but could not replay (an
   * `update-alternatives` call with a loop variable, a `useradd` for an account base-passwd
   * does not have, ...), so the build log can show them. Never receives secrets: only package
   * names, paths and script text.
   */
  warn?: (message: string) => void;
}

/** The environment dpkg gives a maintainer script at first configuration (`postinst configure`). */
export function postinstEnv(p: InstalledPackage): Record<string, string> {
  return {
    "0": "postinst",
    "1": "configure",
    "2": "",
    DPKG_MAINTSCRIPT_NAME: "postinst",
    DPKG_MAINTSCRIPT_PACKAGE: p.pkg.name,
    DPKG_MAINTSCRIPT_ARCH: p.pkg.architecture,
    DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT: "1",
    DPKG_ROOT: "",
    DPKG_ADMINDIR: "/var/lib/dpkg",
  };
}

/** The text of a control member (`postinst`, ...), if the package has one. */
export function controlText(p: InstalledPackage, member: string): string | undefined {
  return p.controlFiles.get(member)?.toString("utf8");
}
