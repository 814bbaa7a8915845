/**
 * The distributions Kiln offers (from kiln.yaml) and the packages of each (its repository
 * index), as UForge's `distribution` and `pkg` objects.
 */
import { createHash } from "node:crypto";
import type { BinaryPackage } from "../debian/types.js";
import { compareVersions } from "../debian/version.js";
import { debianRevision } from "../domain/distributions.js";
import { fail, KilnError } from "../domain/errors.js";
import { PROFILES } from "../debian/profiles.js";
import type { Distribution, LinuxProfile, Pkg } from "../wire/index.js";
import type { CatalogEntry } from "./catalog.js";
import type { LibraryDeps } from "./context.js";
import { distributionWire } from "./representations.js";

/** A package's id: stable across index refreshes (a 48-bit hash of name, version and arch). */
export function packageId(p: BinaryPackage): number {
  return createHash("sha256").update(`${p.name}\0${p.version}\0${p.architecture}`).digest().readUIntBE(0, 6) + 1;
}

export function pkgWire(distId: number, p: BinaryPackage, buildDate?: Date): Pkg {
  const id = packageId(p);
  const epoch = /^(\d+):/.exec(p.version)?.[1];
  return {
    dbId: id,
    sha256sum: p.sha256,
    size: p.size,
    arch: p.architecture,
    fullName: p.filename ? p.filename.split("/").pop() : undefined,
    name: p.name,
    release: debianRevision(p.version),
    repositoryName: p.filename ? p.filename.split("/").slice(0, -2).join("/") || undefined : undefined,
    type: "deb",
    uri: `distributions/${distId}/pkgs/${id}`,
    version: p.version,
    epoch: epoch === undefined ? undefined : Number(epoch),
    pkgBuildDate: buildDate,
  };
}

/**
 * The most packages of one answer whose build date is looked up on the mirror (a range request
 * each, 8 at a time), and how long that may take: a list longer than this, or a slow mirror,
 * gets the dates known so far rather than a stalled answer (the next asks learn more).
 */
const BUILD_DATE_LOOKUPS = 512;
const BUILD_DATE_BUDGET_MS = 15_000;

/**
 * A field of a package's wire form read straight from its index entry (searching 60,000
 * packages must not build 60,000 wire objects); fields without a shortcut go through the wire form.
 */
export function pkgField(distId: number, p: BinaryPackage, field: string): unknown {
  switch (field) {
    case "name":
      return p.name;
    case "version":
      return p.version;
    case "arch":
      return p.architecture;
    case "size":
      return p.size;
    default:
      return (pkgWire(distId, p) as Record<string, unknown>)[field];
  }
}

/** Of each package name and architecture, the highest version only. */
function latestOnly(pkgs: BinaryPackage[]): BinaryPackage[] {
  const best = new Map<string, BinaryPackage>();
  for (const p of pkgs) {
    const key = `${p.name}\0${p.architecture}`;
    const cur = best.get(key);
    if (!cur || compareVersions(p.version, cur.version) > 0) best.set(key, p);
  }
  return [...best.values()];
}

export function distributionOperations(deps: LibraryDeps) {
  const { catalog } = deps;

  function load(id: number): CatalogEntry {
    const d = catalog.get(id);
    if (!d) fail("notFound", `no distribution ${id}`);
    return d;
  }

  return {
    /** The active distributions. */
    list(): CatalogEntry[] {
      return catalog.list();
    },

    /** One distribution's catalog entry. */
    entry(id: number): CatalogEntry {
      return load(id);
    },

    get(id: number): { value: Distribution; lastModified: Date } {
      const d = load(id);
      return { value: distributionWire(d), lastModified: d.row.created };
    },

    /** An administrator (de)activates a distribution: inactive ones are neither listed nor usable in new templates. */
    async setActive(id: number, active: boolean | undefined): Promise<Distribution> {
      const d = load(id);
      if (active !== undefined && active !== d.row.active) {
        const row = await deps.store.distributions.setActive(d.id, active);
        if (row) catalog.update(row);
      }
      return distributionWire(catalog.get(d.id)!);
    },

    /** The packages of the distribution's repository, by name then version (only the latest of each when asked). */
    async packages(id: number, options: { latestOnly: boolean }): Promise<BinaryPackage[]> {
      const d = load(id);
      let pkgs: BinaryPackage[];
      try {
        pkgs = (await catalog.repository(d.id)).packages;
      } catch (err) {
        if (err instanceof KilnError && err.status < 500) throw err;
        throw new KilnError("repositoryFailed", `cannot read the package index of ${d.config.name} ${d.config.version}: ${(err as Error).message}`, { cause: err });
      }
      if (options.latestOnly) pkgs = latestOnly(pkgs);
      return [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version)));
    },

    /**
     * The OS profiles of the distribution: the base sets an image can start from, as `kiln build
     * --profile` names them (`minbase`: what debootstrap's minbase variant installs; `none`:
     * nothing but the packages asked for). Their ids are their place in that list.
     */
    profiles(id: number): LinuxProfile[] {
      const d = load(id);
      const what = { minbase: "every Priority: required package plus apt, as debootstrap --variant=minbase installs", none: "only the packages named, with their dependencies" };
      return PROFILES.map((name, i) => ({
        xsiType: "LinuxProfile",
        dbId: i + 1,
        name,
        description: what[name],
        active: true,
        arch: d.config.arch,
        version: d.config.version,
        distributionUri: `distributions/${d.id}`,
        uri: `distributions/${d.id}/profiles/${i + 1}`,
      }));
    },

    async package(id: number, pid: number): Promise<Pkg> {
      const d = load(id);
      const p = (await this.packages(id, { latestOnly: false })).find((x) => packageId(x) === pid);
      if (!p) fail("notFound", `no package ${pid} in distribution ${d.id}`);
      return (await this.wire(id, [p]))[0]!;
    },

    /** The wire form of packages of the distribution, with their build dates (see {@link BUILD_DATE_LOOKUPS}). */
    async wire(id: number, pkgs: readonly BinaryPackage[]): Promise<Pkg[]> {
      const d = load(id);
      const { buildDates } = await catalog.repository(d.id);
      await buildDates.learn(pkgs, { limit: BUILD_DATE_LOOKUPS, signal: AbortSignal.timeout(BUILD_DATE_BUDGET_MS) });
      return pkgs.map((p) => pkgWire(d.id, p, buildDates.known(p)));
    },
  };
}

export type DistributionOperations = ReturnType<typeof distributionOperations>;
