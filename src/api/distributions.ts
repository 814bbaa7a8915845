/**
 * The distributions' routes (Kiln's configured distributions, their packages from the
 * repository index), plus the container target formats and platforms.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { CONTAINER_FORMATS, CONTAINER_PLATFORMS } from "../domain/formats.js";
import { fail } from "../domain/errors.js";
import type { CatalogEntry } from "../library/catalog.js";
import { pkgWire } from "../library/distributions.js";
import { distributionWire, imageFormatWire, targetFormatWire, targetPlatformWire } from "../library/representations.js";
import type { ApiContext, HandlerMap } from "../server/app.js";
import { pageOf, parseBooleanParam, parseCriteria, pathIds, readObject, sendList, sendObject, type Query } from "../server/http.js";

const DIST_SORT = ["id", "name", "version", "arch", "created"] as const;
const PKG_SORT = ["name", "version", "arch", "size"] as const;
const FORMAT_SORT = ["id", "name"] as const;

function distSortKey(e: CatalogEntry, field: string): string | number {
  switch (field) {
    case "name":
      return e.config.name;
    case "version":
      return e.config.version;
    case "arch":
      return e.config.arch;
    case "created":
      return e.row.created.getTime();
    default:
      return e.id;
  }
}

export function distributionHandlers(ctx: ApiContext): HandlerMap {
  const { distributions } = ctx.library;
  const listDistributions = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const c = parseCriteria(req.query as Query, DIST_SORT);
    const page = pageOf(distributions.list(), c, (e) => `${e.config.name} ${e.config.version} ${e.config.arch}`, distSortKey);
    return sendList(req, reply, "distributions", { total: page.total, distributions: page.items.map(distributionWire) });
  };
  return {
    global: {
      os_getAll: listDistributions,

      async os_get(req, reply) {
        const { value, lastModified } = distributions.get(pathIds(req, "id").id);
        return sendObject(req, reply, "distribution", value, { lastModified });
      },

      async os_update(req, reply) {
        const { id } = pathIds(req, "id");
        const { value } = await readObject(req, "distribution");
        return sendObject(req, reply, "distribution", await distributions.setActive(id, value.active));
      },

      async osPkg_getAll(req, reply) {
        const { id } = pathIds(req, "id");
        const q = req.query as Query;
        const c = parseCriteria(q, PKG_SORT);
        const pkgs = await distributions.packages(id, { latestOnly: parseBooleanParam(q, "latestOnly") === true });
        const page = pageOf(pkgs, c, (p) => p.name, (p, f) => (f === "size" ? (p.size ?? 0) : f === "arch" ? p.architecture : f === "version" ? p.version : p.name));
        // PkgList has no `total` element in the schema: the count travels in a header.
        reply.header("X-Total-Count", String(page.total));
        return sendList(req, reply, "packages", { pkgs: page.items.map((p) => pkgWire(id, p)) });
      },

      async osTemplate_getAll(req, reply) {
        const c = parseCriteria(req.query as Query, ["id", "name"]);
        const page = pageOf(distributions.profiles(pathIds(req, "id").id), c, (p) => p.name ?? "", (p, k) => (k === "name" ? (p.name ?? "") : (p.dbId ?? 0)));
        return sendList(req, reply, "distribProfiles", { total: page.total, distribProfiles: page.items });
      },

      async osPkg_get(req, reply) {
        const { id, pid } = pathIds(req, "id", "pid");
        const d = distributions.get(id);
        return sendObject(req, reply, "package", await distributions.package(id, pid), { lastModified: d.lastModified });
      },
    },
    user: {
      userOS_getAll: listDistributions,

      async userFormats_getAll(req, reply) {
        const c = parseCriteria(req.query as Query, FORMAT_SORT);
        const page = pageOf([...CONTAINER_FORMATS], c, (f) => f.imageFormat, (f, k) => (k === "name" ? f.imageFormat : f.id));
        return sendList(req, reply, "imageFormats", { total: page.total, imageFormats: page.items.map(imageFormatWire) });
      },

      async userTargetFormat_getAll(req, reply, { owner }) {
        const c = parseCriteria(req.query as Query, FORMAT_SORT);
        const page = pageOf([...CONTAINER_FORMATS], c, (f) => f.name, (f, k) => (k === "name" ? f.name : f.id));
        return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items.map((f) => targetFormatWire(owner.login, f)) });
      },

      async userTargetPlatforms_getAll(req, reply, { owner }) {
        const c = parseCriteria(req.query as Query, FORMAT_SORT);
        const page = pageOf([...CONTAINER_PLATFORMS], c, (p) => p.name, (p, k) => (k === "name" ? p.name : p.id));
        return sendList(req, reply, "targetPlatforms", { total: page.total, targetPlatforms: page.items.map((p) => targetPlatformWire(owner.login, p)) });
      },

      async userTargetPlatformFormat_getAll(req, reply, { owner }) {
        const { tpid } = pathIds(req, "tpid");
        const platform = CONTAINER_PLATFORMS.find((p) => p.id === tpid);
        if (!platform) fail("notFound", `no target platform ${tpid}`);
        const c = parseCriteria(req.query as Query, FORMAT_SORT);
        const formats = CONTAINER_FORMATS.filter((f) => platform.formatIds.includes(f.id));
        const page = pageOf(formats, c, (f) => f.name, (f, k) => (k === "name" ? f.name : f.id));
        return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items.map((f) => targetFormatWire(owner.login, f)) });
      },
    },
  };
}
