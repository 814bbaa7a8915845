/**
 * Container templates: a software bundle on a distribution, from which images are generated;
 * the container formats a template may produce (its bundle's restriction rule decides).
 */
import { distributionFacts, distributionLabel } from "../domain/distributions.js";
import { fail } from "../domain/errors.js";
import { CONTAINER_FORMATS, formatFacts, type ContainerFormat } from "../domain/formats.js";
import { allowsDistribution, evaluateRule, parseRestrictionRule } from "../domain/restriction.js";
import type { BundleRow, ListCriteria, Page, UserRow } from "../store/types.js";
import type { ContainerTemplate, TargetFormat } from "../wire/index.js";
import { resolveDistribution, type CatalogEntry } from "./catalog.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import { removeImages, templateImages } from "./images.js";
import { loadBundle, loadTemplate, type BundleRef, type TemplateRef } from "./load.js";
import { targetFormatWire, templateWire } from "./representations.js";

/** The container formats the bundle's restriction rule allows on this distribution. */
export function allowedFormats(bundle: BundleRow, dist: CatalogEntry): ContainerFormat[] {
  const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
  return CONTAINER_FORMATS.filter((f) => evaluateRule(rule, { Distribution: distributionFacts(dist.config), TargetFormat: formatFacts(f) }));
}

export function templateOperations(deps: LibraryDeps) {
  const { store } = deps;

  return {
    async list(owner: UserRow, ref: BundleRef, criteria: ListCriteria): Promise<Page<ContainerTemplate>> {
      const bundle = await loadBundle(store, owner, ref.msid);
      const page = await store.templates.list(owner.id, bundle.id, criteria);
      const items: ContainerTemplate[] = [];
      for (const t of page.items) {
        const dist = deps.catalog.get(t.distributionId);
        if (dist) items.push(templateWire(owner.login, t, bundle, dist, await templateImages(deps, owner, t)));
      }
      return { total: page.total, items };
    },

    async create(owner: UserRow, ref: BundleRef, value: ContainerTemplate): Promise<ContainerTemplate> {
      const bundle = await loadBundle(store, owner, ref.msid);
      const dist = resolveDistribution(deps.catalog, value.distribution);
      const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
      if (!allowsDistribution(rule, distributionFacts(dist.config), CONTAINER_FORMATS.map(formatFacts))) {
        fail("restrictionExcluded", `the restriction rule of software bundle ${bundle.name} ("${bundle.restrictionRule}") excludes ${distributionLabel(dist.config)} for every container format`);
      }
      const t = await store.templates.create({ userId: owner.id, bundleId: bundle.id, distributionId: dist.id });
      return templateWire(owner.login, t, bundle, dist);
    },

    /** The template with its images; `lastModified` is the latest change of any of them. */
    async get(owner: UserRow, ref: TemplateRef): Promise<{ value: ContainerTemplate; lastModified: Date }> {
      const { bundle, template, dist } = await loadTemplate(deps, owner, ref);
      const images = await templateImages(deps, owner, template);
      let last = template.lastModified > bundle.lastModified ? template.lastModified : bundle.lastModified;
      for (const i of images) if (i.lastModified && i.lastModified > last) last = i.lastModified;
      return { value: templateWire(owner.login, template, bundle, dist, images), lastModified: last };
    },

    /** Deletes the template and its images (their work stopped, their files collected, their registry tags deleted). */
    async delete(owner: UserRow, ref: TemplateRef, log: OperationLog): Promise<void> {
      const { bundle, template } = await loadTemplate(deps, owner, ref);
      const images = await store.images.listByTemplate(owner.id, template.id);
      await removeImages(deps, images, log, async (tx) => {
        await tx.templates.delete(owner.id, bundle.id, template.id);
      });
    },

    async formats(owner: UserRow, ref: TemplateRef): Promise<TargetFormat[]> {
      const { bundle, dist } = await loadTemplate(deps, owner, ref);
      return allowedFormats(bundle, dist).map((f) => targetFormatWire(owner.login, f));
    },
  };
}

export type TemplateOperations = ReturnType<typeof templateOperations>;
