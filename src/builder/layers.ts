/**
 * How packages are grouped into layers, and what a layer's cache key is made of.
 *
 * The rule is stable so that images which share packages share layers:
 * - three tiers — the packages the profile alone brings (the base system, identical for every
 *   image of that profile on that distribution), the other packages from the distribution, and
 *   the bundle's own `.deb` files;
 * - the base tier is cut, in the base system's own install order, into runs of decreasing
 *   installed size: every image of a profile and distribution gets the same base layers whatever
 *   else it holds, one package upgrade rebuilds one layer, and the first runs are complete early
 *   in an install, so their layers are written while later packages still unpack;
 * - the other tiers are split by `sha256(name) mod buckets`, which keeps a package in the same
 *   layer whatever else is asked for;
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
 * Where the base system's runs end, as fractions of its installed size. The runs shrink along
 * the install order: the last one is complete only when unpacking ends, and its layer is what a
 * build waits for after that — a small last run keeps that tail short.
 */
const BASE_CUTS = [0.3, 0.55, 0.75, 0.9, 1] as const;

/** Cuts the base system (in its install order) into runs (see {@link BASE_CUTS}); returns each name's run. */
function baseRuns(base: readonly BinaryPackage[]): Map<string, number> {
  const runs = new Map<string, number>();
  const weight = (p: BinaryPackage): number => Math.max(1, p.installedSizeKiB ?? 1);
  const total = base.reduce((n, p) => n + weight(p), 0);
  let seen = 0;
  for (const p of base) {
    // The run a package falls in is decided by where its middle lies in the cumulative size.
    const mid = (seen + weight(p) / 2) / total;
    const run = BASE_CUTS.findIndex((cut) => mid < cut);
    runs.set(p.name, run < 0 ? BASE_CUTS.length - 1 : run);
    seen += weight(p);
  }
  return runs;
}

/**
 * Splits the packages (in install order) into groups; `base` is the base system in its own
 * install order (what the profile alone resolves to), `local` the names of local `.deb` files.
 * Groups come out base first, then extra, then local, each by bucket — the layer order of the
 * image.
 */
export function groupPackages(packages: readonly BinaryPackage[], base: readonly BinaryPackage[], local: ReadonlySet<string>): PackageGroup[] {
  const runs = baseRuns(base);
  const groups = new Map<string, PackageGroup>();
  for (const p of packages) {
    const tier: Tier = local.has(p.name) ? "local" : runs.has(p.name) ? "base" : "extra";
    const bucket = tier === "base" ? runs.get(p.name)! : bucketOf(p.name, TIER_BUCKETS[tier]);
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
  // The text is hashed in pieces of about 64 KiB, not one update per entry (a warm build hashes
  // every entry of the image): the same bytes in the same order, so the same key.
  let text = `kiln-layer/${LAYER_RULES_VERSION}\n${parts.kind}\n${parts.format}\n${parts.clock.toISOString()}\n${parts.extra ?? ""}\n`;
  const add = (s: string): void => {
    text += s;
    if (text.length >= 1 << 16) {
      h.update(text);
      text = "";
    }
  };
  for (const s of parts.sources) add(`src ${s}\n`);
  for (const e of parts.entries) {
    const md5 = (e.content as { md5?: string } | undefined)?.md5;
    add(`${e.path}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.linkname ?? ""}\0${e.devmajor ?? ""}\0${e.devminor ?? ""}\0${e.content?.size ?? ""}\0${md5 ?? ""}\n`);
    if (e.xattrs) for (const k of Object.keys(e.xattrs).sort()) add(`xattr ${k}\0${e.xattrs[k]!.toString("hex")}\n`);
  }
  h.update(text);
  return h.digest("hex");
}
