/**
 * Distributions and architectures: what a distribution Kiln builds on is (a Debian-style
 * repository and how to trust it), the names UForge, Debian and OCI give one architecture, and
 * the facts a restriction rule sees. Shared by the builder, the repository client, the
 * configuration and the API, so it lives below all of them.
 */
import { KilnError } from "./errors.js";

/** One distribution Kiln can build on: a Debian-style repository and how to trust it. */
export interface DistributionConfig {
  /** UForge's name (an enumeration value of uforge.xsd's Distribution `name`), e.g. `Debian`. */
  name: string;
  version: string;
  /** UForge's architecture name (`x86_64`); see {@link debianArch} for Debian's (`amd64`). */
  arch: string;
  /** `http(s)://` or `file://` base URL of the repository (the directory holding `dists/`). */
  mirror: string;
  suite: string;
  components: string[];
  /** Path to an OpenPGP keyring (binary or armored), or `"none"` for an unsigned mirror. */
  keyring: string;
}

/** Debian's archive keyring as installed by `debian-archive-keyring` on Debian machines. */
export const DEBIAN_ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

const ARCH_MAP: Record<string, string> = {
  x86_64: "amd64",
  amd64: "amd64",
  aarch64: "arm64",
  arm64: "arm64",
  i386: "i386",
  i686: "i386",
  armhf: "armhf",
  ppc64le: "ppc64el",
  s390x: "s390x",
};

/** Debian's name for a UForge architecture (`x86_64` → `amd64`). */
export function debianArch(uforgeArch: string): string {
  const a = ARCH_MAP[uforgeArch];
  if (!a) throw new KilnError("badRequest", `unsupported architecture "${uforgeArch}"`);
  return a;
}

/** The OCI/Go name of an architecture (`x86_64` → `amd64`, `aarch64` → `arm64`). */
export function ociArch(uforgeArch: string): string {
  const a = debianArch(uforgeArch);
  return a === "ppc64el" ? "ppc64le" : a === "armhf" ? "arm" : a;
}

/** The OCI architecture variant, where the image-spec's platform names one (`aarch64` → `v8`, `armhf` → `v7`). */
export function ociVariant(uforgeArch: string): string | undefined {
  const a = debianArch(uforgeArch);
  return a === "arm64" ? "v8" : a === "armhf" ? "v7" : undefined;
}

/** `"Debian 12 x86_64"`: how commands and messages name a distribution. */
export function distributionLabel(d: Pick<DistributionConfig, "name" | "version" | "arch">): string {
  return `${d.name} ${d.version} ${d.arch}`;
}

/** The facts a restriction rule sees about a distribution (`Distribution#name`, ...). */
export function distributionFacts(d: Pick<DistributionConfig, "name" | "version" | "arch">): Record<string, string> {
  return { family: "linux", pkgType: "deb", name: d.name, version: d.version, arch: d.arch };
}

/** When each Debian release came out (debian.org/releases): UForge's distribution `releaseDate`. */
const DEBIAN_RELEASE_DATES: Readonly<Record<string, string>> = { "10": "2019-07-06", "11": "2021-08-14", "12": "2023-06-10", "13": "2025-08-09" };

/** The release date of a distribution Kiln knows of, else `undefined`. */
export function releaseDate(d: Pick<DistributionConfig, "name" | "version">): Date | undefined {
  const day = d.name === "Debian" ? DEBIAN_RELEASE_DATES[d.version] : undefined;
  return day === undefined ? undefined : new Date(`${day}T00:00:00Z`);
}

/** The Debian revision of a version (`1.2-3+deb12u1` → `3+deb12u1`), UForge's package `release`; none for a native package. */
export function debianRevision(version: string): string | undefined {
  const dash = version.lastIndexOf("-");
  return dash < 0 ? undefined : version.slice(dash + 1);
}
