/**
 * How packages are grouped into layers, and what a layer's cache key is made of.
 *
 * The rule is stable so that images which share packages share layers:
 * - three tiers — the packages the profile alone brings (the base system, identical for every
 *   image of that profile on that distribution), the other packages from the distribution, and
 *   the bundle's own `.deb` files;
 * - within a tier, a package always lands in the same bucket: `sha256(name) mod buckets`, so one
 *   package upgrade rebuilds one layer, not the tier;
 * - at most {@link MAX_PACKAGE_LAYERS} package layers (5 + 2 + 1), plus the fix-up layer; empty
 *   buckets make no layer.
 */
import { createHash } from "node:crypto";
import type { BinaryPackage } from "../debian/types.js";
import type { FsEntry } from "../rootfs/types.js";

export const TIER_BUCKETS = { base: 5, extra: 2, local: 1 } as const;
export type Tier = keyof typeof TIER_BUCKETS;
export const MAX_PACKAGE_LAYERS = TIER_BUCKETS.base + TIER_BUCKETS.extra + TIER_BUCKETS.local;

/** Bump when what goes into a layer changes for the same inputs: cached layers are then rebuilt. */
export const LAYER_RULES_VERSION = 1;

export interface PackageGroup {
  tier: Tier;
  bucket: number;
  /** Packages in install order. */
  packages: BinaryPackage[];
  names: Set<string>;
}

function bucketOf(name: string, buckets: number): number {
  return createHash("sha256").update(name).digest().readUInt32BE(0) % buckets;
}

/**
 * Splits the packages (in install order) into groups; `base` holds the names the profile alone
 * resolves to, `local` the names of local `.deb` files. Groups come out base first, then extra,
 * then local, each by bucket — the layer order of the image.
 */
export function groupPackages(packages: readonly BinaryPackage[], base: ReadonlySet<string>, local: ReadonlySet<string>): PackageGroup[] {
  const groups = new Map<string, PackageGroup>();
  for (const p of packages) {
    const tier: Tier = local.has(p.name) ? "local" : base.has(p.name) ? "base" : "extra";
    const bucket = bucketOf(p.name, TIER_BUCKETS[tier]);
    const key = `${tier}/${bucket}`;
    let g = groups.get(key);
    if (!g) {
      g = { tier, bucket, packages: [], names: new Set() };
      groups.set(key, g);
    }
    g.packages.push(p);
    g.names.add(p.name);
  }
  const order: Tier[] = ["base", "extra", "local"];
  return [...groups.values()].sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier) || a.bucket - b.bucket);
}

/** A one-line history entry for a group's layer. */
export function groupDescription(g: PackageGroup): string {
  const names = g.packages.map((p) => p.name).sort();
  const shown = names.slice(0, 12).join(", ");
  return `kiln: ${g.tier} packages ${shown}${names.length > 12 ? `, and ${names.length - 12} more` : ""}`;
}

/**
 * A layer's cache key: the rules, the layer format (tar and gzip settings), the clock, and the
 * exact content — every entry's metadata and, for files, the md5 and size recorded when the
 * package was unpacked — plus the sha256 of each package it comes from. Two builds agree on the key
 * exactly when they would write the same bytes.
 */
export function layerKey(parts: { kind: string; format: string; clock: Date; sources: string[]; entries: readonly FsEntry[]; extra?: string }): string {
  const h = createHash("sha256");
  h.update(`kiln-layer/${LAYER_RULES_VERSION}\n${parts.kind}\n${parts.format}\n${parts.clock.toISOString()}\n${parts.extra ?? ""}\n`);
  for (const s of parts.sources) h.update(`src ${s}\n`);
  for (const e of parts.entries) {
    const md5 = (e.content as { md5?: string } | undefined)?.md5;
    h.update(`${e.path}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.linkname ?? ""}\0${e.devmajor ?? ""}\0${e.devminor ?? ""}\0${e.content?.size ?? ""}\0${md5 ?? ""}\n`);
  }
  return h.digest("hex");
}
