/**
 * Container templates: a software bundle on a distribution, from which images are generated.
 */
import { fail } from "../domain/errors.js";
import { CONTAINER_FORMATS, formatFacts } from "../domain/formats.js";
import { allowsDistribution, evaluateRule, parseRestrictionRule } from "../domain/restriction.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import type { CatalogEntry } from "../server/distributions.js";
import { parseCriteria, parseId, readObject, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";
import type { BundleRow, TemplateRow, UserRow } from "../store/types.js";
import { deleteImagesOf, templateImages } from "./images.js";
import { loadBundle } from "./library.js";
import { distributionFacts, targetFormatWire, templateWire, uris, type Wire } from "./representations.js";

function ownerOf(call: Call): UserRow {
  if (!call.owner) fail("unauthorized", "authentication required");
  return call.owner;
}

/** The distribution a template names: by `uri` (`distributions/1`), or by arch, name and version. */
export function resolveDistribution(ctx: ApiContext, value: Wire | undefined): CatalogEntry {
  if (!value || typeof value !== "object") fail("invalidField", "containerTemplate.distribution is required (its uri, or its arch, name and version)");
  if (typeof value.uri === "string" && value.uri !== "") {
    const m = /^\/?(?:api\/)?distributions\/(\d+)\/?$/.exec(value.uri);
    if (!m) fail("unknownDistribution", `"${value.uri}" is not a distribution URI (distributions/<id>)`);
    const d = ctx.catalog.get(Number(m[1]));
    if (!d || !d.row.active) fail("unknownDistribution", `no distribution ${m[1]}`);
    return d;
  }
  if (typeof value.dbId === "number") {
    const d = ctx.catalog.get(value.dbId);
    if (!d || !d.row.active) fail("unknownDistribution", `no distribution ${value.dbId}`);
    return d;
  }
  const name = typeof value.name === "string" ? value.name : undefined;
  const version = typeof value.version === "string" ? value.version : undefined;
  if (!name || !version) fail("invalidField", "containerTemplate.distribution needs its uri, or its name and version (and arch)");
  const arch = typeof value.arch === "string" ? value.arch : undefined;
  const d = ctx.catalog.find(name, version, arch);
  if (!d) {
    const offered = ctx.catalog.list().map((e) => `${e.config.name} ${e.config.version} ${e.config.arch}`).join(", ");
    fail("unknownDistribution", `no distribution ${name} ${version}${arch ? ` ${arch}` : ""}; Kiln offers: ${offered || "none"}`);
  }
  return d;
}

/** The container formats the bundle's restriction rule allows on this distribution. */
export function allowedFormats(bundle: BundleRow, dist: CatalogEntry): typeof CONTAINER_FORMATS[number][] {
  const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
  return CONTAINER_FORMATS.filter((f) => evaluateRule(rule, { Distribution: distributionFacts(dist), TargetFormat: formatFacts(f) }));
}

export function templateHandlers(ctx: ApiContext): HandlerMap {
  async function load(user: UserRow, bundle: BundleRow, raw: string | undefined): Promise<{ t: TemplateRow; dist: CatalogEntry }> {
    const id = parseId(raw, "tid");
    const t = await ctx.store.templates.get(user.id, bundle.id, id);
    if (!t) fail("notFound", `no container template ${id} in software bundle ${bundle.id}`);
    const dist = ctx.catalog.get(t.distributionId);
    if (!dist) fail("notFound", `the distribution of container template ${id} is no longer offered`);
    return { t, dist };
  }
  const imagesOf = (u: UserRow, _bundle: BundleRow, t: TemplateRow): Promise<Wire[]> => templateImages(ctx, u, t);
  const lastModifiedOf = (t: TemplateRow, bundle: BundleRow, images: Wire[]): Date => {
    let last = t.lastModified > bundle.lastModified ? t.lastModified : bundle.lastModified;
    for (const i of images) if (i.lastModified instanceof Date && i.lastModified > last) last = i.lastModified;
    return last;
  };

  return {
    async containerTemplate_getAll(req, reply, call) {
      const u = ownerOf(call);
      const bundle = await loadBundle(ctx, u, req);
      const page = await ctx.store.templates.list(u.id, bundle.id, parseCriteria(req.query as Record<string, string>, SORTABLE_FIELDS.templates));
      const items: Wire[] = [];
      for (const t of page.items) {
        const dist = ctx.catalog.get(t.distributionId);
        if (dist) items.push(templateWire(u.login, t, bundle, dist, await imagesOf(u, bundle, t)));
      }
      return sendList(req, reply, "containerTemplates", { total: page.total, containerTemplates: items });
    },

    async containerTemplate_create(req, reply, call) {
      const u = ownerOf(call);
      const bundle = await loadBundle(ctx, u, req);
      const { value } = await readObject(req, "containerTemplate");
      const dist = resolveDistribution(ctx, value.distribution as Wire | undefined);
      const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
      if (!allowsDistribution(rule, distributionFacts(dist), CONTAINER_FORMATS.map(formatFacts))) {
        fail("restrictionExcluded", `the restriction rule of software bundle ${bundle.name} ("${bundle.restrictionRule}") excludes ${dist.config.name} ${dist.config.version} ${dist.config.arch} for every container format`);
      }
      const t = await ctx.store.templates.create({ userId: u.id, bundleId: bundle.id, distributionId: dist.id });
      return sendCreated(req, reply, "containerTemplate", templateWire(u.login, t, bundle, dist), uris.template(u.login, bundle.id, t.id));
    },

    async containerTemplate_get(req, reply, call) {
      const u = ownerOf(call);
      const bundle = await loadBundle(ctx, u, req);
      const { t, dist } = await load(u, bundle, (req.params as Record<string, string>).tid);
      const images = await imagesOf(u, bundle, t);
      return sendObject(req, reply, "containerTemplate", templateWire(u.login, t, bundle, dist, images), { lastModified: lastModifiedOf(t, bundle, images) });
    },

    async containerTemplate_delete(req, reply, call) {
      const u = ownerOf(call);
      const bundle = await loadBundle(ctx, u, req);
      const { t } = await load(u, bundle, (req.params as Record<string, string>).tid);
      await deleteImagesOf(ctx, u, [t]);
      await ctx.store.templates.delete(u.id, bundle.id, t.id);
      return sendNoContent(reply);
    },

    async containerTemplateTargetFormat_getAll(req, reply, call) {
      const u = ownerOf(call);
      const bundle = await loadBundle(ctx, u, req);
      const { dist } = await load(u, bundle, (req.params as Record<string, string>).tid);
      const formats = allowedFormats(bundle, dist);
      return sendList(req, reply, "targetFormats", { total: formats.length, targetFormats: formats.map((f) => targetFormatWire(u.login, f)) });
    },
  };
}
