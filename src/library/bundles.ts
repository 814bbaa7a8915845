/**
 * Software bundles (`mySoftware`): create, read, change, clone and delete them; their
 * restriction rule and the distributions it allows.
 */
import { distributionFacts } from "../domain/distributions.js";
import { fail } from "../domain/errors.js";
import { CONTAINER_FORMATS, formatFacts } from "../domain/formats.js";
import { allowsDistribution, parseRestrictionRule } from "../domain/restriction.js";
import type { BundleRow, ListCriteria, NewBundle, Page, UserRow } from "../store/types.js";
import type { BundleRestriction, Distribution, MySoftware } from "../wire/index.js";
import { collectBlobs } from "../store/blob-gc.js";
import type { CatalogEntry } from "./catalog.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import { optionalInstallPath, optionalString, requiredString } from "./fields.js";
import { removeImages } from "./images.js";
import { loadBundle, type BundleRef } from "./load.js";
import { bundleWire, distributionWire, restrictionWire, uris } from "./representations.js";

/** The bundle fields a client may set (create, update, clone). */
function bundleFields(value: MySoftware, requireName: boolean): Partial<NewBundle> {
  const out: Partial<NewBundle> = {};
  const name = requireName ? requiredString(value, "mySoftware", "name", 255) : optionalString(value, "mySoftware", "name", 255);
  if (name !== undefined) {
    if (name.trim() === "") fail("invalidField", "mySoftware.name must not be empty");
    out.name = name.trim();
  }
  for (const f of ["version", "description", "release", "tag"] as const) {
    const v = optionalString(value, "mySoftware", f);
    if (v !== undefined) out[f] = v;
  }
  const loc = optionalInstallPath(value, "mySoftware", "defaultInstallLocation");
  if (loc !== undefined) out.defaultInstallLocation = loc;
  if (value.license) {
    const n = optionalString(value.license, "mySoftware.license", "name", 255);
    if (n !== undefined) out.license = n;
  }
  if (value.bundleRestriction) {
    const rule = optionalString(value.bundleRestriction, "mySoftware.bundleRestriction", "restrictionRule");
    if (rule !== undefined) out.restrictionRule = checkedRule(rule);
  }
  return out;
}

/** A restriction rule, parsed to be sure it is one (`400` pointing at the error); blank means none. */
function checkedRule(rule: string): string | null {
  parseRestrictionRule(rule);
  return rule.trim() === "" ? null : rule;
}

/** The distributions a rule allows for at least one container format (or, `allowed` false, excludes). */
function distributionsFor(deps: LibraryDeps, rule: string | null, allowed: boolean): CatalogEntry[] {
  const parsed = parseRestrictionRule(rule ?? "");
  const formats = CONTAINER_FORMATS.map(formatFacts);
  return deps.catalog.list().filter((d) => allowsDistribution(parsed, distributionFacts(d.config), formats) === allowed);
}

/** The row of a new bundle made from `value` (its name required), imported or created. */
export function newBundle(owner: UserRow, value: MySoftware, imported: boolean): NewBundle {
  const f = bundleFields(value, true);
  return {
    userId: owner.id,
    name: f.name!,
    version: f.version ?? null,
    description: f.description ?? null,
    release: f.release ?? null,
    tag: f.tag ?? null,
    license: f.license ?? null,
    defaultInstallLocation: f.defaultInstallLocation ?? null,
    restrictionRule: f.restrictionRule ?? null,
    imported,
  };
}

export function bundleOperations(deps: LibraryDeps) {
  const { store } = deps;

  async function answer(owner: UserRow, b: BundleRow): Promise<MySoftware> {
    const rows = await store.artifacts.listAll(b.id);
    return bundleWire(owner.login, b, rows, await store.bundleFiles.list(b.id));
  }

  return {
    /** The user's bundles; only those whose rule allows distribution `distribId` when given. */
    async list(owner: UserRow, criteria: ListCriteria, distribId?: number): Promise<Page<MySoftware>> {
      let page = await store.bundles.list(owner.id, criteria);
      if (distribId !== undefined) {
        const dist = deps.catalog.get(distribId);
        if (!dist) fail("notFound", `no distribution ${distribId}`);
        const all = await store.bundles.list(owner.id, { ...criteria, count: undefined, offset: undefined });
        const formats = CONTAINER_FORMATS.map(formatFacts);
        const allowed = all.items.filter((b) => allowsDistribution(parseRestrictionRule(b.restrictionRule ?? ""), distributionFacts(dist.config), formats));
        const offset = criteria.offset ?? 0;
        page = { total: allowed.length, items: allowed.slice(offset, criteria.count === undefined ? undefined : offset + criteria.count) };
      }
      // Two queries for the whole page, not two per bundle.
      const ids = page.items.map((b) => b.id);
      const [rows, files] = await Promise.all([store.artifacts.listAllOf(ids), store.bundleFiles.listOf(ids)]);
      return { total: page.total, items: page.items.map((b) => bundleWire(owner.login, b, rows.filter((r) => r.bundleId === b.id), files.filter((f) => f.bundleId === b.id))) };
    },

    async create(owner: UserRow, value: MySoftware): Promise<MySoftware> {
      return answer(owner, await store.bundles.create(newBundle(owner, value, false)));
    },

    async get(owner: UserRow, ref: BundleRef): Promise<MySoftware> {
      return answer(owner, await loadBundle(store, owner, ref.msid));
    },

    async update(owner: UserRow, ref: BundleRef, value: MySoftware): Promise<MySoftware> {
      const b = await loadBundle(store, owner, ref.msid);
      const updated = await store.bundles.update(owner.id, b.id, bundleFields(value, false));
      if (!updated) fail("notFound", `no software bundle ${b.id}`);
      return answer(owner, updated);
    },

    /** A copy of the bundle, its rule and its artifacts (the bytes are shared); `value` overrides fields. */
    async clone(owner: UserRow, ref: BundleRef, value: MySoftware): Promise<MySoftware> {
      const b = await loadBundle(store, owner, ref.msid);
      const overrides = bundleFields(value, false);
      if (overrides.name === undefined) overrides.name = `${b.name} (copy)`;
      const clone = await store.bundles.clone(owner.id, b.id, overrides);
      if (!clone) fail("notFound", `no software bundle ${b.id}`);
      return answer(owner, clone);
    },

    /**
     * Deletes the bundle with everything that hangs from it: its templates' images (their work
     * stopped), templates, artifacts and their download keys in one transaction, then the bytes
     * nothing else uses.
     */
    async delete(owner: UserRow, ref: BundleRef, log: OperationLog): Promise<void> {
      const b = await loadBundle(store, owner, ref.msid);
      const rows = await store.artifacts.listAll(b.id);
      const files = await store.bundleFiles.list(b.id);
      const images = [];
      for (const t of (await store.templates.list(owner.id, b.id, {})).items) images.push(...(await store.images.listByTemplate(owner.id, t.id)));
      await removeImages(deps, images, log, async (tx) => {
        await tx.bundles.delete(owner.id, b.id);
        for (const r of rows) await tx.downloadKeys.deleteForTarget(`artifact:${r.id}`);
      });
      await collectBlobs(store, deps.blobs, [...rows.map((r) => r.blobDigest), ...files.map((f) => f.blobDigest)], log);
    },

    async updateRestriction(owner: UserRow, ref: BundleRef & { brid: number }, value: BundleRestriction): Promise<BundleRestriction> {
      const b = await loadBundle(store, owner, ref.msid);
      const rule = checkedRule(optionalString(value, "bundleRestriction", "restrictionRule") ?? "");
      const updated = await store.bundles.setRestriction(owner.id, b.id, ref.brid, rule);
      if (!updated) fail("notFound", `no restriction ${ref.brid} on software bundle ${b.id}`);
      return restrictionWire(owner.login, updated);
    },

    /** The distributions the bundle's rule allows (or, `compatible` false, excludes). */
    async restrictionDistributions(owner: UserRow, ref: BundleRef & { brid: number }, compatible: boolean): Promise<Distribution[]> {
      const b = await loadBundle(store, owner, ref.msid);
      if (ref.brid !== b.restrictionId) fail("notFound", `no restriction ${ref.brid} on software bundle ${b.id}`);
      return distributionsFor(deps, b.restrictionRule, compatible).map(distributionWire);
    },

    /** The distributions a candidate rule would allow (nothing is changed). */
    async evaluateRestriction(owner: UserRow, ref: BundleRef & { brid: number }, value: BundleRestriction): Promise<Distribution[]> {
      const b = await loadBundle(store, owner, ref.msid);
      if (ref.brid !== b.restrictionId) fail("notFound", `no restriction ${ref.brid} on software bundle ${b.id}`);
      const rule = checkedRule(optionalString(value, "bundleRestriction", "restrictionRule") ?? "");
      return distributionsFor(deps, rule, true).map(distributionWire);
    },
  };
}

export type BundleOperations = ReturnType<typeof bundleOperations>;
