/**
 * What a software artifact may be tagged, and when a boot script runs: shared by the API, the
 * store and the bundle-file checks of the command line, so that they accept the same values.
 */

/** UForge's `tag` of an artifact: a plain file, a Debian package to install, or a boot script. */
export const ARTIFACT_TAGS = ["softwarefile", "ospkg", "bootscript"] as const;
export type ArtifactTag = (typeof ARTIFACT_TAGS)[number];

/** When a boot script runs (UForge's `BootScript.bootType`): once on the first start, or at every start. */
export const BOOT_TYPES = ["firstboot", "everyboot"] as const;
export type BootType = (typeof BOOT_TYPES)[number];

export function isArtifactTag(v: unknown): v is ArtifactTag {
  return (ARTIFACT_TAGS as readonly unknown[]).includes(v);
}

export function isBootType(v: unknown): v is BootType {
  return (BOOT_TYPES as readonly unknown[]).includes(v);
}
