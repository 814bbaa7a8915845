/**
 * Install profiles: the base set of packages an image starts from before the user's own.
 * `minbase` is what `debootstrap --variant=minbase` installs (its `work_out_debs`: every
 * `Priority: required` package, plus `apt`, plus `usr-is-merged` where the archive has it);
 * the resolver then adds their dependencies.
 * `none` starts from nothing: only the named packages and their dependencies.
 */
import type { BinaryPackage } from "./types.js";
import { compareVersions } from "./version.js";

/** The base set an image starts from (`--profile`). */
export type Profile = "minbase" | "none";

/** Every profile, `minbase` (the default) first. */
export const PROFILES: readonly Profile[] = ["minbase", "none"];

/** Whether a string names a profile (for validating user input). */
export function isProfile(s: string): s is Profile {
  return (PROFILES as readonly string[]).includes(s);
}

/**
 * The package names a profile starts from, sorted. For `minbase`, a name counts as required
 * when its highest version (among packages of `arch` or `all`, when `arch` is given) says
 * `Priority: required`, as the index a debootstrap run reads would show it.
 */
export function selectProfile(profile: Profile, universe: readonly BinaryPackage[], arch?: string): string[] {
  if (profile === "none") return [];
  const newest = new Map<string, BinaryPackage>();
  for (const p of universe) {
    if (arch !== undefined && p.architecture !== arch && p.architecture !== "all") continue;
    const seen = newest.get(p.name);
    if (!seen || compareVersions(p.version, seen.version) > 0) newest.set(p.name, p);
  }
  const names = new Set<string>();
  for (const p of newest.values()) if (p.priority === "required") names.add(p.name);
  names.add("apt");
  // debootstrap adds the empty usr-is-merged metapackage on bookworm so that
  // init-system-helpers' "usrmerge | usr-is-merged" does not pull usrmerge and perl in: the
  // image is built merged-/usr from the start. Later suites have neither package.
  if (newest.has("usr-is-merged")) names.add("usr-is-merged");
  return [...names].sort();
}

/**
 * The names of the `Essential: yes` packages (their highest version among `arch` and `all`): what
 * debootstrap and mmdebstrap install with dpkg alone, before apt runs.
 */
export function essentialNames(universe: readonly BinaryPackage[], arch?: string): string[] {
  const newest = new Map<string, BinaryPackage>();
  for (const p of universe) {
    if (arch !== undefined && p.architecture !== arch && p.architecture !== "all") continue;
    const seen = newest.get(p.name);
    if (!seen || compareVersions(p.version, seen.version) > 0) newest.set(p.name, p);
  }
  return [...newest.values()].filter((p) => p.essential).map((p) => p.name).sort();
}
